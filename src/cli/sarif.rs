//! `check -o sarif`: the findings as a SARIF 2.1.0 log, the format GitHub and GitLab code
//! scanning read. One rule per finding code (`check::rules`), one result per finding, located
//! at the workload's lines in the input file (the YAML reader's marks, `manifest/lines.rs`).

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{json, Value};

use super::check::Verdict;
use crate::check::{self, Level, Message, Row, Rule};
use crate::manifest::lines::{Objects, Region};

/// Where a document came from: the input it was read from and where its objects are.
pub struct Place {
    /// The input's URI (`None` for standard input, which has no file to point at).
    pub uri: Option<String>,
    /// The input's line that is the document's first line.
    pub first_line: usize,
    pub objects: Objects,
}

impl Place {
    pub fn new(input: &str, first_line: usize, text: &str) -> Place {
        Place {
            uri: uri(input),
            first_line,
            objects: crate::manifest::lines::objects(text),
        }
    }
}

/// What a relative URI reference cannot hold as is (RFC 3986): controls, space and the
/// delimiters that are not path characters. `/` stays, so a path keeps its segments.
const NOT_IN_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// An input's name as a URI: a URL as it is; a relative path as a relative reference (code
/// scanning resolves it against the repository's root); an absolute path as a `file:` URI.
fn uri(input: &str) -> Option<String> {
    if input == super::input::STDIN_NAME {
        return None;
    }
    if super::input::url_scheme(input).is_some() {
        return Some(input.to_string());
    }
    let path = input.strip_prefix("./").unwrap_or(input);
    let encoded = utf8_percent_encode(path, NOT_IN_PATH).to_string();
    Some(if path.starts_with('/') {
        format!("file://{encoded}")
    } else {
        encoded
    })
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Info => "note",
        Level::Warning => "warning",
        Level::Error => "error",
    }
}

fn rule(r: &Rule) -> Value {
    let help = r.hint.unwrap_or(r.summary);
    json!({
        "id": r.code,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.summary},
        "help": {"text": help, "markdown": help},
        "defaultConfiguration": {"level": level(r.level)},
        "properties": {"tags": ["linkerd", "kubernetes"]},
    })
}

/// The SARIF log of a `check` run; `places[d]` is where document `d` of the input came from.
pub fn report(rows: &[Row], verdict: &Verdict, places: &[Place]) -> String {
    let rules = check::rules();
    let mut results = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let location = location(row, places.get(row.source.document));
        let not_meshed = verdict.unmeshed_required[i]
            .then(|| check::NOT_MESHED.message(super::check::NOT_MESHED_TEXT));
        for m in row.messages.iter().chain(&not_meshed) {
            let index = rules.iter().position(|r| r.code == m.code);
            results.push(result(row, m, index, &location));
        }
    }
    log(&rules, json!({"executionSuccessful": true}), results)
}

/// The SARIF log of a run that could not read its input (exit code 1): no results, and each
/// error as a notification of a failed invocation, so that code scanning shows the failure
/// instead of an empty or missing file.
pub fn failed(errors: &[String]) -> String {
    let notifications: Vec<Value> = errors
        .iter()
        .map(|e| json!({"level": "error", "message": {"text": e}}))
        .collect();
    let invocation = json!({
        "executionSuccessful": false,
        "exitCode": 1,
        "toolExecutionNotifications": notifications,
    });
    log(&check::rules(), invocation, Vec::new())
}

fn log(rules: &[Rule], invocation: Value, results: Vec<Value>) -> String {
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "proxy-injector",
                "fullName": "proxy-injector check",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(rule).collect::<Vec<_>>(),
            }},
            "invocations": [invocation],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&log).unwrap_or_default();
    out.push('\n');
    out
}

fn result(row: &Row, m: &Message, index: Option<usize>, location: &Value) -> Value {
    let mut r = json!({
        "ruleId": m.code,
        "level": level(m.level),
        "message": {"text": format!("{} ({}): {}", row.workload, row.namespace, m.text)},
        "locations": [location],
    });
    if let (Some(i), Some(obj)) = (index, r.as_object_mut()) {
        obj.insert("ruleIndex".into(), i.into());
    }
    r
}

/// The workload's place: its lines in its input when the input is a file or a URL, and always
/// its name (`namespace/kind/name`).
fn location(row: &Row, place: Option<&Place>) -> Value {
    let logical = json!([{
        "name": row.workload,
        "fullyQualifiedName": format!("{}/{}", row.namespace, row.workload),
        "kind": "resource",
    }]);
    let physical = place.and_then(|p| {
        let uri = p.uri.as_ref()?;
        let region = match row.source.item {
            Some(i) => p.objects.items.get(i).copied(),
            None => p.objects.root,
        };
        let mut physical = json!({"artifactLocation": {"uri": uri}});
        if let (Some(r), Some(obj)) = (region, physical.as_object_mut()) {
            obj.insert("region".into(), shifted(r, p.first_line));
        }
        Some(physical)
    });
    match physical {
        Some(p) => json!({"physicalLocation": p, "logicalLocations": logical}),
        None => json!({"logicalLocations": logical}),
    }
}

/// A region of a document as lines of its input.
fn shifted(r: Region, first_line: usize) -> Value {
    let offset = first_line.saturating_sub(1);
    json!({
        "startLine": r.start_line + offset,
        "startColumn": r.start_column,
        "endLine": r.end_line + offset,
        "endColumn": r.end_column,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_names_become_uri_references() {
        assert_eq!(uri("k8s/app.yaml").as_deref(), Some("k8s/app.yaml"));
        assert_eq!(
            uri("./k8s/my app#1.yaml").as_deref(),
            Some("k8s/my%20app%231.yaml")
        );
        assert_eq!(
            uri("/srv/a b.yaml").as_deref(),
            Some("file:///srv/a%20b.yaml")
        );
        assert_eq!(
            uri("https://example.com/a.yaml").as_deref(),
            Some("https://example.com/a.yaml")
        );
        assert_eq!(uri(crate::cli::input::STDIN_NAME), None);
    }

    #[test]
    fn regions_are_shifted_to_the_inputs_lines() {
        let r = Region {
            start_line: 2,
            start_column: 3,
            end_line: 4,
            end_column: 1,
        };
        assert_eq!(
            shifted(r, 10),
            json!({"startLine": 11, "startColumn": 3, "endLine": 13, "endColumn": 1})
        );
    }
}
