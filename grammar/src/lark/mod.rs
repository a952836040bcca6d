//! A Lark-like grammar format. (Being written.)
