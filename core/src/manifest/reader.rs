//! One reading of a document for both its value and where its nodes are.
//!
//! The CLI needs a document's value (to decide and patch) and, for a changed document, where
//! each node is in the text (to splice). Reading the text twice, once with serde_yaml and
//! once with a second parser for positions, took a quarter of `inject --manual`'s time
//! (BENCHMARKS.md §2d). Here libyaml's events (`libyaml.rs`, the parser serde_yaml runs) give
//! both in one pass: the value exactly as [`super::parse`] builds it, and the tree of spans
//! the splicer works on ([`Node`]).
//!
//! serde_yaml's part is reproduced for what a manifest holds: plain scalars resolved as its
//! `visit_untagged_scalar` does (null, booleans, integers, floats; the functions below follow
//! `serde_yaml/src/de.rs` 0.9.34), keys taken as written, mappings in order. Whatever else
//! serde_yaml would decide — anchors, aliases, tags, a key that is not a scalar, a duplicate
//! key, an integer beyond 64 bits, deep nesting, anything but one document, an error — is
//! *declined*: the document is then parsed by serde_yaml itself ([`super::parse`]) and has no
//! spans, so the splicer re-serialises it if it changes, as it always did for these. The two
//! readers are compared by the tests here (every kind of plain scalar, each declined case, a
//! proptest) and by the `manifest` fuzz check, on every document of its input (the regression
//! tests run it on every CLI fixture).

use serde_json::{Map, Number, Value};

use super::libyaml::{Events, Kind, Style};
use super::splice::{unspliceable as declined, Entry, Node, Spans, Unspliceable};
use super::{parse, ParseError};

/// A document as read: its value, and where its nodes are in its text (or why the splicer
/// cannot use them).
pub struct Parsed {
    pub value: Value,
    pub spans: Spans,
}

/// Collections nested deeper than this are left to serde_yaml, whose limit (128) then
/// decides.
const DEPTH: usize = 100;

/// Reads one document (as `split` gives it) for its value and its spans.
pub fn read(text: &str) -> Result<Parsed, ParseError> {
    super::check_flow_depth(text)?;
    match one_pass(text) {
        Ok((value, root)) => Ok(Parsed {
            value,
            spans: Spans(Ok(root)),
        }),
        Err(declined) => Ok(Parsed {
            value: parse(text)?,
            spans: Spans(Err(declined)),
        }),
    }
}

/// The spans of a document alone, for a text the caller has no [`Parsed`] of.
pub(super) fn spans(text: &str) -> Result<Node, Unspliceable> {
    one_pass(text).map(|(_, root)| root)
}

/// A collection being read: its node, its value so far, and for a mapping the key awaiting
/// its value (the key, and where its text starts and ends).
struct Open {
    node: Node,
    value: Value,
    key: Option<(String, usize, usize)>,
}

fn one_pass(text: &str) -> Result<(Value, Node), Unspliceable> {
    // serde_yaml applies merge keys (`<<: *base`) on its own value (`super::parse`).
    if text.contains("<<") {
        return declined("it uses merge keys");
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    for event in Events::new(text) {
        let event = event.map_err(|_| Unspliceable("unreadable".into()))?;
        let (start, end) = (event.start, event.end);
        let (node, value) = match event.kind {
            Kind::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return declined("it holds more than one document");
                }
                continue;
            }
            Kind::DocumentEnd => continue,
            Kind::Alias => return declined("it uses an alias"),
            Kind::Scalar { marked: true, .. }
            | Kind::SequenceStart { marked: true, .. }
            | Kind::MappingStart { marked: true, .. } => {
                return declined("it uses an anchor or a tag")
            }
            Kind::Scalar { value, style, .. } => {
                let span = scalar_span(text, start, end, style, &value);
                if let Some(Open {
                    node: Node::Map { .. },
                    key: key @ None,
                    ..
                }) = stack.last_mut()
                {
                    *key = Some((value, span.0, span.1));
                    continue;
                }
                let value = match style {
                    Style::Plain => resolve(value)?,
                    Style::Quoted | Style::Block => Value::String(value),
                };
                let block = style == Style::Block;
                let (start, end) = span;
                (Node::Scalar { start, end, block }, value)
            }
            Kind::SequenceStart { flow, .. } | Kind::MappingStart { flow, .. } => {
                if let Some(Open {
                    node: Node::Map { .. },
                    key: None,
                    ..
                }) = stack.last()
                {
                    return declined("it has a complex mapping key");
                }
                if stack.len() >= DEPTH {
                    return declined("it nests collections too deeply");
                }
                stack.push(open(&event.kind, flow, start));
                continue;
            }
            Kind::SequenceEnd | Kind::MappingEnd => {
                let Some(Open {
                    mut node, value, ..
                }) = stack.pop()
                else {
                    return declined("unbalanced collections");
                };
                if let Node::Map {
                    flow: true, end: e, ..
                }
                | Node::Seq {
                    flow: true, end: e, ..
                } = &mut node
                {
                    *e = end;
                }
                (node, value)
            }
        };
        match stack.last_mut() {
            None => root = Some((value, node)),
            Some(parent) => attach(parent, node, value)?,
        }
    }
    if documents != 1 {
        return declined("it holds no document");
    }
    root.ok_or_else(|| Unspliceable("the document is empty".into()))
}

fn open(kind: &Kind, flow: bool, start: usize) -> Open {
    let (node, value) = if matches!(kind, Kind::MappingStart { .. }) {
        let node = Node::Map {
            flow,
            start,
            end: start,
            entries: Vec::new(),
        };
        (node, Value::Object(Map::new()))
    } else {
        let node = Node::Seq {
            flow,
            start,
            end: start,
            items: Vec::new(),
        };
        (node, Value::Array(Vec::new()))
    };
    Open {
        node,
        value,
        key: None,
    }
}

/// Where a scalar's text is. A block scalar's token runs on over the blank lines after it to
/// the next token's indentation: they are its content only when it keeps its final line ends
/// (`|+`); otherwise it ends with its last content line, so that removing it leaves the blank
/// lines (found by fuzzing the splicer).
fn scalar_span(text: &str, start: usize, end: usize, style: Style, value: &str) -> (usize, usize) {
    let span = &text[start..end];
    let keeps = value.len() - value.trim_end_matches('\n').len() > 1;
    let end = if style == Style::Block && !keeps {
        start + span.trim_end_matches([' ', '\t', '\r', '\n']).len()
    } else {
        start + span.trim_end_matches(' ').len()
    };
    (start, end)
}

/// Adds a finished node and its value to their parent collection.
fn attach(parent: &mut Open, node: Node, value: Value) -> Result<(), Unspliceable> {
    // An empty value has no text; its position may be the next token's.
    let node_end = match node {
        Node::Scalar { start, end, .. } if start == end => 0,
        ref n => n.end(),
    };
    match (&mut parent.node, &mut parent.value) {
        (Node::Map { entries, end, .. }, Value::Object(map)) => {
            let Some((key, key_start, key_end)) = parent.key.take() else {
                return declined("it has a complex mapping key");
            };
            if map.contains_key(&key) {
                return declined("it has a duplicate key");
            }
            *end = (*end).max(node_end).max(key_end);
            map.insert(key.clone(), value);
            entries.push(Entry {
                key,
                key_start,
                key_end,
                value: node,
            });
        }
        (Node::Seq { items, end, .. }, Value::Array(values)) => {
            *end = (*end).max(node_end);
            items.push(node);
            values.push(value);
        }
        _ => return declined("a scalar cannot hold a node"),
    }
    Ok(())
}

/// A plain scalar's value, as serde_yaml resolves it (`visit_untagged_scalar`); an integer
/// that needs more than 64 bits is declined (serde_yaml refuses it for a JSON value).
fn resolve(v: String) -> Result<Value, Unspliceable> {
    if v.is_empty() || is_null(&v) {
        return Ok(Value::Null);
    }
    if let Some(b) = parse_bool(&v) {
        return Ok(Value::Bool(b));
    }
    if let Some(n) = parse_unsigned_int(&v, u64::from_str_radix) {
        return Ok(Value::Number(n.into()));
    }
    if let Some(n) = parse_negative_int(&v, i64::from_str_radix) {
        return Ok(Value::Number(n.into()));
    }
    if parse_unsigned_int(&v, u128::from_str_radix).is_some()
        || parse_negative_int(&v, i128::from_str_radix).is_some()
    {
        return declined("it has an integer beyond 64 bits");
    }
    if !digits_but_not_number(&v) {
        if let Some(f) = parse_f64(&v) {
            return Ok(Number::from_f64(f).map_or(Value::Null, Value::Number));
        }
    }
    Ok(Value::String(v))
}

fn is_null(v: &str) -> bool {
    matches!(v, "null" | "Null" | "NULL" | "~")
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

type Radix<T> = fn(&str, u32) -> Result<T, std::num::ParseIntError>;

/// `0x`, `0o`, `0b` after an optional `+`, or decimal; never a sign after the prefix.
fn parse_unsigned_int<T>(v: &str, from_str_radix: Radix<T>) -> Option<T> {
    let unpositive = v.strip_prefix('+').unwrap_or(v);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(n) = from_str_radix(rest, radix) {
                return Some(n);
            }
        }
    }
    if unpositive.starts_with(['+', '-']) || digits_but_not_number(v) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

/// `-0x`, `-0o`, `-0b`, or decimal with its sign.
fn parse_negative_int<T>(v: &str, from_str_radix: Radix<T>) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = v.strip_prefix(prefix) {
            if let Ok(n) = from_str_radix(&format!("-{rest}"), radix) {
                return Some(n);
            }
        }
    }
    if digits_but_not_number(v) {
        return None;
    }
    from_str_radix(v, 10).ok()
}

fn parse_f64(v: &str) -> Option<f64> {
    let unpositive = match v.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => return None,
        Some(u) => u,
        None => v,
    };
    if let ".inf" | ".Inf" | ".INF" = unpositive {
        return Some(f64::INFINITY);
    }
    if let "-.inf" | "-.Inf" | "-.INF" = v {
        return Some(f64::NEG_INFINITY);
    }
    if let ".nan" | ".NaN" | ".NAN" = v {
        return Some(f64::NAN.copysign(1.0));
    }
    unpositive.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Leading zeros followed by digits: a string in YAML 1.2 (`0755`, `-012`).
fn digits_but_not_number(v: &str) -> bool {
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    v.len() > 1 && v.starts_with('0') && v[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests;
