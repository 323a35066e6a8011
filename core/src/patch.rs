//! RFC 6902 patches against the original object (docs/behaviour.md §8), as json-patch types.
//!
//! Paths are built from unescaped tokens, so every key is escaped per RFC 6901 (`~` → `~0`,
//! `/` → `~1`), and values are `serde_json::Value`s, so they are always valid JSON — upstream
//! splices unescaped text into a template (docs/differences.md ).

use json_patch::{AddOperation, PatchOperation};
use jsonptr::PointerBuf;
use serde_json::Value;

/// Collects `add` operations under a fixed prefix (the pod template's location).
pub struct PatchBuilder {
    prefix: Vec<String>,
    ops: Vec<PatchOperation>,
}

impl PatchBuilder {
    pub fn new(prefix: &[&str]) -> Self {
        PatchBuilder {
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            ops: Vec::new(),
        }
    }

    /// `add` at `prefix/tokens…`.
    pub fn add(&mut self, tokens: &[&str], value: Value) {
        let path = PointerBuf::from_tokens(
            self.prefix
                .iter()
                .map(String::as_str)
                .chain(tokens.iter().copied()),
        );
        self.ops
            .push(PatchOperation::Add(AddOperation { path, value }));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn finish(self) -> Vec<PatchOperation> {
        self.ops
    }
}
