//! RFC 6902 patches against the original object (docs/behaviour.md §8).
//!
//! Paths are built from unescaped tokens, so every key is escaped per RFC 6901 (`~` → `~0`,
//! `/` → `~1`), and values are `serde_json::Value`s, so they are always valid JSON — upstream
//! splices unescaped text into a template (docs/differences.md Q-3, Q-5).
//!
//! What injection adds for every pod of one config (the proxy, the init container, the debug
//! container) is rendered once (`inject/cache.rs`) as a [`Shared`] value that the patches
//! point to instead of holding a copy: [`Patch::to_json`] writes its JSON text, serialised
//! once, which is what the webhook sends; [`Patch::operations`] and [`Patch::apply`] copy it
//! where a value is needed (the CLI edits the document itself).

use std::sync::Arc;

use json_patch::{AddOperation, PatchOperation};
use jsonptr::PointerBuf;
use serde_json::Value;

/// `add` operations, in order.
#[derive(Clone, Debug, Default)]
pub struct Patch {
    ops: Vec<Op>,
}

#[derive(Clone, Debug)]
struct Op {
    path: PointerBuf,
    value: Added,
}

/// The value of one `add`.
#[derive(Clone, Debug)]
pub enum Added {
    /// Built for this object.
    Value(Value),
    /// Rendered once and shared, with this object's text in its hole, if it has one.
    Shared(Arc<Shared>, String),
}

impl From<Value> for Added {
    fn from(v: Value) -> Added {
        Added::Value(v)
    }
}

impl Added {
    /// The value itself (a copy of a shared one, its hole filled).
    pub fn to_value(&self) -> Value {
        match self {
            Added::Value(v) => v.clone(),
            Added::Shared(shared, fill) => shared.filled(fill),
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Added::Value(v) => write_json(out, v),
            Added::Shared(shared, fill) => shared.write_json(out, fill),
        }
    }
}

/// A value rendered once and added to many objects, with its JSON text serialised once.
/// It may have one *hole*: a string that differs per object (the proxy's inbound ports),
/// set by `fill` on a copy of the value, and written into the text where the hole is.
#[derive(Debug)]
pub struct Shared {
    value: Value,
    /// The text before and after the hole's string (its quotes included in neither); the
    /// whole text in `before` when there is no hole.
    before: String,
    after: Option<String>,
    fill: Option<fn(&mut Value, &str)>,
}

/// What a hole holds while its value is serialised: a string no rendering produces, so its
/// one occurrence in the text is the hole.
const HOLE: &str = "\u{1}proxy-injector-hole\u{1}";

impl Shared {
    /// A value with no hole.
    pub fn new(value: Value) -> Shared {
        let mut before = Vec::new();
        write_json(&mut before, &value);
        Shared {
            before: String::from_utf8(before).unwrap_or_default(),
            value,
            after: None,
            fill: None,
        }
    }

    /// `value` with a hole that `fill` sets.
    pub fn with_hole(mut value: Value, fill: fn(&mut Value, &str)) -> Shared {
        fill(&mut value, HOLE);
        let mut text = Vec::new();
        write_json(&mut text, &value);
        let text = String::from_utf8(text).unwrap_or_default();
        let quoted = serde_json::to_string(HOLE).unwrap_or_default();
        let (before, after) = match text.split_once(&quoted) {
            Some((b, a)) if !a.contains(&quoted) => (b.to_string(), Some(a.to_string())),
            // `fill` set no string, or more than one: the text is written per object.
            _ => (String::new(), None),
        };
        Shared {
            value,
            before,
            after,
            fill: Some(fill),
        }
    }

    /// Whether the value has a hole, which [`Shared::filled`] sets.
    pub fn has_hole(&self) -> bool {
        self.fill.is_some()
    }

    /// A copy of the value with `s` in its hole.
    pub fn filled(&self, s: &str) -> Value {
        let mut v = self.value.clone();
        if let Some(fill) = self.fill {
            fill(&mut v, s);
        }
        v
    }

    fn write_json(&self, out: &mut Vec<u8>, s: &str) {
        match (&self.after, self.fill) {
            (_, None) => out.extend_from_slice(self.before.as_bytes()),
            (Some(after), Some(_)) => {
                out.extend_from_slice(self.before.as_bytes());
                write_json(out, &s);
                out.extend_from_slice(after.as_bytes());
            }
            (None, Some(_)) => write_json(out, &self.filled(s)),
        }
    }
}

/// Serialising a `Value` or a `&str` into memory does not fail.
fn write_json(out: &mut Vec<u8>, v: &impl serde::Serialize) {
    let _ = serde_json::to_writer(out, v);
}

impl Patch {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Each operation's path, as written.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.ops.iter().map(|o| o.path.as_str())
    }

    /// Each operation's path and value, in order: for a writer that places the additions into
    /// a document's text itself (`manifest/splice/patch.rs`).
    pub fn adds(&self) -> impl Iterator<Item = (&jsonptr::Pointer, &Added)> {
        self.ops.iter().map(|o| (o.path.as_ref(), &o.value))
    }

    /// The operations as json-patch values, shared values copied.
    pub fn operations(&self) -> Vec<PatchOperation> {
        self.ops
            .iter()
            .map(|o| {
                PatchOperation::Add(AddOperation {
                    path: o.path.clone(),
                    value: o.value.to_value(),
                })
            })
            .collect()
    }

    /// Applies the patch to `doc`.
    pub fn apply(&self, doc: &mut Value) -> Result<(), json_patch::PatchError> {
        json_patch::patch(doc, &self.operations())
    }

    /// The patch as JSON, byte for byte what serialising [`Patch::operations`] gives, with
    /// each shared value's text written from memory.
    pub fn to_json(&self) -> Vec<u8> {
        let shared: usize = self
            .ops
            .iter()
            .map(|o| match &o.value {
                Added::Shared(s, fill) => {
                    s.before.len() + s.after.as_ref().map_or(0, String::len) + fill.len()
                }
                Added::Value(_) => 0,
            })
            .sum();
        let mut out = Vec::with_capacity(shared + self.ops.len() * 128);
        out.push(b'[');
        for (i, op) in self.ops.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"op":"add","path":"#);
            write_json(&mut out, &op.path.as_str());
            out.extend_from_slice(br#","value":"#);
            op.value.write_json(&mut out);
            out.push(b'}');
        }
        out.push(b']');
        out
    }
}

impl serde::Serialize for Patch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.operations().serialize(s)
    }
}

/// Collects `add` operations under a fixed prefix (the pod template's location).
pub struct PatchBuilder {
    prefix: Vec<String>,
    patch: Patch,
}

impl PatchBuilder {
    pub fn new(prefix: &[&str]) -> Self {
        PatchBuilder {
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            patch: Patch::default(),
        }
    }

    /// `add` at `prefix/tokens…`.
    pub fn add(&mut self, tokens: &[&str], value: impl Into<Added>) {
        let path = PointerBuf::from_tokens(
            self.prefix
                .iter()
                .map(String::as_str)
                .chain(tokens.iter().copied()),
        );
        self.patch.ops.push(Op {
            path,
            value: value.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.patch.is_empty()
    }

    pub fn finish(self) -> Patch {
        self.patch
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set_name(v: &mut Value, s: &str) {
        v["name"] = Value::String(s.to_string());
    }

    #[test]
    fn json_text_is_that_of_the_operations() {
        let hole = Arc::new(Shared::with_hole(json!({"name": "", "n": 1}), set_name));
        let plain = Arc::new(Shared::new(json!({"a": ["é", "\"q\""]})));
        let mut b = PatchBuilder::new(&["spec", "template"]);
        b.add(&["metadata", "a/b~c"], json!("v"));
        b.add(
            &["x", "-"],
            Added::Shared(hole.clone(), "8080,\"9090\"\n".into()),
        );
        b.add(&["y"], Added::Shared(plain, String::new()));
        b.add(&["z"], Added::Shared(hole, String::new()));
        let patch = b.finish();
        let expected = serde_json::to_vec(&patch.operations()).unwrap();
        assert_eq!(
            String::from_utf8(patch.to_json()).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        assert_eq!(
            patch.operations()[1],
            PatchOperation::Add(AddOperation {
                path: PointerBuf::parse("/spec/template/x/-").unwrap(),
                value: json!({"name": "8080,\"9090\"\n", "n": 1}),
            })
        );
        assert_eq!(PatchBuilder::new(&[]).finish().to_json(), b"[]");
    }

    #[test]
    fn a_fill_that_sets_no_string_is_written_per_object() {
        fn set_number(v: &mut Value, s: &str) {
            v["n"] = json!(s.len());
        }
        let shared = Arc::new(Shared::with_hole(json!({"n": 0}), set_number));
        let mut b = PatchBuilder::new(&[]);
        b.add(&["a"], Added::Shared(shared, "abc".into()));
        let patch = b.finish();
        assert_eq!(
            patch.to_json(),
            br#"[{"op":"add","path":"/a","value":{"n":3}}]"#
        );
    }
}
