//! GBNF, llama.cpp's grammar format. (Being written.)
