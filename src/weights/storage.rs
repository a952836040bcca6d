//! [`WeightFile`]: a GGUF header together with the bytes it describes, owned.

use crate::error::Error;

use super::Gguf;

/// A parsed GGUF file and its bytes, owned together so that tensor data can
/// be borrowed from it for as long as it lives.
///
/// On native targets the bytes are usually a read-only memory map
/// ([`WeightFile::open`]); in wasm32 (or for a file already in memory) they
/// are a `Vec<u8>` ([`WeightFile::from_bytes`]). Either way nothing is copied
/// after loading: a model's quantized matrices are views into these bytes.
///
/// ```
/// # fn main() -> Result<(), formwork::Error> {
/// // The smallest valid GGUF v3 file: no metadata, no tensors.
/// let mut bytes = b"GGUF".to_vec();
/// bytes.extend_from_slice(&3u32.to_le_bytes()); // version
/// bytes.extend_from_slice(&0u64.to_le_bytes()); // tensor count
/// bytes.extend_from_slice(&0u64.to_le_bytes()); // metadata count
/// let file = formwork::weights::WeightFile::from_bytes(bytes)?;
/// assert_eq!(file.gguf().tensors().len(), 0);
/// assert_eq!(file.bytes().len(), 24);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct WeightFile {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    #[cfg(not(target_arch = "wasm32"))]
    Mapped(super::MappedGguf),
    Owned {
        gguf: Gguf,
        bytes: Vec<u8>,
    },
}

impl WeightFile {
    /// Memory-maps and parses the GGUF file at `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or mapped, or is not a valid GGUF file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<WeightFile, Error> {
        Ok(WeightFile { inner: Inner::Mapped(Gguf::open(path)?) })
    }

    /// Parses a GGUF file held in memory and keeps its bytes.
    ///
    /// # Errors
    ///
    /// When the bytes are not a valid GGUF file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<WeightFile, Error> {
        let gguf = Gguf::parse(&bytes)?;
        Ok(WeightFile { inner: Inner::Owned { gguf, bytes } })
    }

    /// The parsed header.
    pub fn gguf(&self) -> &Gguf {
        match &self.inner {
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Mapped(m) => m.gguf(),
            Inner::Owned { gguf, .. } => gguf,
        }
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        match &self.inner {
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Mapped(m) => m.bytes(),
            Inner::Owned { bytes, .. } => bytes,
        }
    }

    /// Whether the bytes are a memory map (they count against the page
    /// cache, shared with other processes reading the same file) rather than
    /// heap memory.
    pub fn is_mapped(&self) -> bool {
        match &self.inner {
            #[cfg(not(target_arch = "wasm32"))]
            Inner::Mapped(_) => true,
            Inner::Owned { .. } => false,
        }
    }

    /// The bytes of the tensor called `name`.
    ///
    /// # Errors
    ///
    /// When there is no such tensor.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], Error> {
        self.gguf().tensor_bytes(self.bytes(), name)
    }
}
