//! Text <-> token ids for the supported models (tokenizer.json or GGUF
//! metadata), the grammar [`Vocabulary`](crate::grammar::Vocabulary) of a
//! tokenizer, and chat templates.
