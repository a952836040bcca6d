//! The crate's error: raised only where shapes come from outside (a matrix
//! view over bytes read from a file). Kernels called with inconsistent slice
//! lengths panic instead, like slice indexing: that is a bug in the caller,
//! not a property of the input.

use core::fmt;

/// Why a [`QuantMatrix`](crate::QuantMatrix) could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ErrorKind {
    ColsNotBlockMultiple { cols: usize, block: usize },
    SizeOverflow { rows: usize, cols: usize },
    WrongByteLength { expected: usize, actual: usize },
}

impl Error {
    pub(crate) fn cols_not_block_multiple(cols: usize, block: usize) -> Error {
        Error { kind: ErrorKind::ColsNotBlockMultiple { cols, block } }
    }

    pub(crate) fn size_overflow(rows: usize, cols: usize) -> Error {
        Error { kind: ErrorKind::SizeOverflow { rows, cols } }
    }

    pub(crate) fn wrong_byte_length(expected: usize, actual: usize) -> Error {
        Error { kind: ErrorKind::WrongByteLength { expected, actual } }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::ColsNotBlockMultiple { cols, block } => {
                write!(f, "row length {cols} is not a multiple of the block size {block}")
            }
            ErrorKind::SizeOverflow { rows, cols } => {
                write!(f, "a {rows}x{cols} matrix does not fit in the address space")
            }
            ErrorKind::WrongByteLength { expected, actual } => {
                write!(f, "matrix data is {actual} bytes (or blocks), expected {expected}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
