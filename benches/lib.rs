//! Nothing: the package exists for its benches (`supervision.rs`,
//! `peers.rs`); see `Cargo.toml` beside this file.
