//! CEL text for the policy: JSON values written as CEL literals, with holes where CEL computes
//! a pod's own part.
//!
//! The containers are rendered by the same code as the webhook's (`render/`), with a *hole*
//! string in each place that depends on the pod. [`literal`] writes the value as CEL and each
//! hole as the policy variable that computes it:
//!
//! - [`value`] (a whole string or value): `variables.<name>`;
//! - [`splice`] (a list element): the list `variables.<name>` concatenated in its place;
//! - [`optional`] (a map entry's value): the entry is there when the list `variables.<name>`
//!   has an element (its value), absent when it is empty. (A list rather than an optional
//!   value: a variable's type is inferred by Kubernetes, but a checker that takes variables as
//!   `dyn` refuses a `dyn` where an optional entry needs an optional.)
//!
//! Kubernetes type-checks list and map literals as homogeneous (its CEL environment sets
//! `HomogeneousAggregateLiterals`): `{"name": "x", "readOnly": true}` is refused. A literal
//! whose elements are not all of one type therefore has each element wrapped in `dyn()`.

use serde_json::Value;

/// Starts every hole; never in a rendered value (it is a control character).
const HOLE: char = '\u{1}';

/// A value computed by `variables.<name>`.
pub fn value(name: &str) -> String {
    format!("{HOLE}={name}")
}

/// A list element that stands for the list `variables.<name>` (zero or more elements).
pub fn splice(name: &str) -> String {
    format!("{HOLE}+{name}")
}

/// A map entry present only when the list `variables.<name>` has an element (its value).
pub fn optional(name: &str) -> String {
    format!("{HOLE}?{name}")
}

enum Hole<'a> {
    Value(&'a str),
    Splice(&'a str),
    Optional(&'a str),
}

fn hole(v: &Value) -> Option<Hole<'_>> {
    let rest = v.as_str()?.strip_prefix(HOLE)?;
    let name = rest.get(1..)?;
    match rest.as_bytes().first()? {
        b'=' => Some(Hole::Value(name)),
        b'+' => Some(Hole::Splice(name)),
        b'?' => Some(Hole::Optional(name)),
        _ => None,
    }
}

/// `v` as a CEL expression.
pub fn literal(v: &Value) -> String {
    typed(v).0
}

/// The CEL text of `v` and its type, as far as the homogeneity check needs it ("dyn" for
/// anything computed).
fn typed(v: &Value) -> (String, String) {
    if let Some(h) = hole(v) {
        let name = match h {
            Hole::Value(n) | Hole::Splice(n) | Hole::Optional(n) => n,
        };
        return (format!("variables.{name}"), "dyn".into());
    }
    match v {
        Value::Null => ("null".into(), "null".into()),
        Value::Bool(b) => (b.to_string(), "bool".into()),
        Value::Number(n) if n.is_f64() => {
            (format!("{:?}", n.as_f64().unwrap_or(0.0)), "double".into())
        }
        Value::Number(n) => (n.to_string(), "int".into()),
        Value::String(s) => (string(s), "string".into()),
        Value::Array(items) => list(items),
        Value::Object(m) => map(m),
    }
}

fn list(items: &[Value]) -> (String, String) {
    let spliced = items
        .iter()
        .any(|i| matches!(hole(i), Some(Hole::Splice(_))));
    let plain: Vec<(String, String)> = items
        .iter()
        .filter(|i| !matches!(hole(i), Some(Hole::Splice(_))))
        .map(typed)
        .collect();
    let (wrap, elem) = uniform(plain.iter().map(|(_, t)| t.as_str()), spliced);
    let mut parts: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    let mut plain = plain.into_iter();
    for item in items {
        if let Some(Hole::Splice(name)) = hole(item) {
            if !run.is_empty() {
                parts.push(format!("[{}]", run.join(", ")));
                run.clear();
            }
            parts.push(format!("variables.{name}"));
        } else if let Some((text, _)) = plain.next() {
            run.push(if wrap { format!("dyn({text})") } else { text });
        }
    }
    if !run.is_empty() || parts.is_empty() {
        parts.push(format!("[{}]", run.join(", ")));
    }
    (parts.join(" + "), format!("list({elem})"))
}

fn map(m: &serde_json::Map<String, Value>) -> (String, String) {
    let optional = m
        .values()
        .any(|v| matches!(hole(v), Some(Hole::Optional(_))));
    let entries: Vec<(&String, (String, String), bool)> = m
        .iter()
        .map(|(k, v)| {
            let opt = matches!(hole(v), Some(Hole::Optional(_)));
            (k, typed(v), opt)
        })
        .collect();
    let (wrap, elem) = uniform(
        entries.iter().filter(|e| !e.2).map(|e| e.1 .1.as_str()),
        optional,
    );
    let body: Vec<String> = entries
        .into_iter()
        .map(|(k, (text, _), opt)| match (opt, wrap) {
            (true, _) => format!(
                "?{}: size({text}) > 0 ? optional.of({text}[0]) : optional.none()",
                string(k)
            ),
            (false, true) => format!("{}: dyn({text})", string(k)),
            (false, false) => format!("{}: {text}", string(k)),
        })
        .collect();
    (format!("{{{}}}", body.join(", ")), format!("map({elem})"))
}

/// Whether the elements of a literal must be wrapped in `dyn()`, and the element type: they
/// must unless all have one type and no computed part joins them.
fn uniform<'a>(mut types: impl Iterator<Item = &'a str>, computed: bool) -> (bool, String) {
    let Some(first) = types.next() else {
        return (false, "dyn".into());
    };
    if computed || first == "dyn" || types.any(|t| t != first) {
        return (true, "dyn".into());
    }
    (false, first.to_string())
}

/// A CEL string literal: double-quoted, with `\`, `"` and control characters escaped.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A CEL list of string literals.
pub fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(string).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_and_escapes() {
        assert_eq!(literal(&json!("a\"b\\c\nd\u{2}")), r#""a\"b\\c\nd\u0002""#);
        assert_eq!(literal(&json!(null)), "null");
        assert_eq!(literal(&json!(-3)), "-3");
        assert_eq!(literal(&json!(true)), "true");
    }

    #[test]
    fn one_type_is_left_alone_and_mixed_types_are_wrapped() {
        assert_eq!(literal(&json!(["a", "b"])), r#"["a", "b"]"#);
        assert_eq!(literal(&json!({"a": 1, "b": 2})), r#"{"a": 1, "b": 2}"#);
        assert_eq!(
            literal(&json!({"name": "x", "readOnly": true})),
            r#"{"name": dyn("x"), "readOnly": dyn(true)}"#
        );
        // Two maps of different shapes are two types.
        assert_eq!(
            literal(&json!([{"a": 1}, {"a": "b"}])),
            r#"[dyn({"a": 1}), dyn({"a": "b"})]"#
        );
        assert_eq!(literal(&json!([])), "[]");
        assert_eq!(literal(&json!({})), "{}");
    }

    #[test]
    fn holes_become_variables() {
        let v = json!({
            "env": [{"name": "P", "value": value("ports")}],
            "mounts": [{"name": "a"}, splice("extra"), {"name": "b"}],
            "caps": optional("caps"),
        });
        assert_eq!(
            literal(&v),
            concat!(
                r#"{"env": dyn([{"name": dyn("P"), "value": dyn(variables.ports)}]), "#,
                r#""mounts": dyn([dyn({"name": "a"})] + variables.extra + [dyn({"name": "b"})]), "#,
                r#"?"caps": size(variables.caps) > 0 ? optional.of(variables.caps[0]) : optional.none()}"#
            )
        );
        assert_eq!(literal(&json!([splice("only")])), "variables.only");
    }
}
