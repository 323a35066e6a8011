//! `proxy-injector check`: the webhook's verdict on every workload of a manifest stream, for
//! CI. Exit codes: 0 all good, 1 an input or usage error, 2 a policy failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::io::{IsTerminal, Read};

use serde_json::{json, Value};

use super::args::{CheckArgs, CheckFormat, FailOn};
use super::input;
use super::sarif::{self, Place};
use super::{Output, UsageError};
use crate::check::{self, Level, Meshed, Options, Row};
use crate::config::overrides::Annotations;
use crate::manifest;

pub fn run(args: &CheckArgs, stdin: &mut dyn Read) -> Result<Output, UsageError> {
    let ns = super::pipeline::control_plane_ns(&args.control_plane)?;
    let values = super::pipeline::load_values(&args.values)?;
    let namespaces = namespace_annotations(&args.namespace_annotation)?;
    let streams = input::read_all(&args.inputs, stdin)?;
    let sarif = args.output == CheckFormat::Sarif;
    let Input { docs, places } = match Input::read(&streams, sarif) {
        Ok(input) => input,
        Err(errors) => {
            return Ok(Output {
                stdout: if sarif {
                    sarif::failed(&errors).into()
                } else {
                    Default::default()
                },
                stderr: format!("Error: {}\n", errors.join("\n")),
                code: 1,
            })
        }
    };
    let opts = Options {
        values: &values,
        control_plane_ns: ns,
        namespaces: &namespaces,
        default_namespace: &args.namespace,
    };
    let rows = check::check(&docs, &opts);
    let verdict = Verdict::of(&rows, args);
    let stdout = match args.output {
        CheckFormat::Table => table(&rows, &verdict, color()),
        CheckFormat::Json => json_report(&rows, &verdict),
        CheckFormat::Junit => junit(&rows, &verdict),
        CheckFormat::Sarif => sarif::report(&rows, &verdict, &places),
    };
    let mut stderr = String::new();
    for f in &verdict.failures {
        let _ = writeln!(stderr, "check failed: {f}");
    }
    Ok(Output {
        stdout: stdout.into(),
        stderr,
        code: if verdict.failures.is_empty() { 0 } else { 2 },
    })
}

/// The objects of every input stream, in order.
struct Input {
    docs: Vec<Value>,
    /// Where each of `docs` is: only for the SARIF report (it reads each document again).
    places: Vec<Place>,
}

impl Input {
    /// Every document that is an object; the errors name each one that is not.
    fn read(streams: &[input::Stream], with_places: bool) -> Result<Input, Vec<String>> {
        let mut docs = Vec::new();
        let mut places = Vec::new();
        let mut errors = Vec::new();
        for stream in streams {
            let split = match manifest::split_numbered(&stream.text) {
                Ok(d) => d,
                Err(e) => {
                    errors.push(format!("{}: {e}", stream.name));
                    continue;
                }
            };
            for (i, doc) in split.iter().enumerate() {
                match manifest::parse(&doc.text) {
                    Ok(Value::Null) => {}
                    Ok(v @ Value::Object(_)) => {
                        docs.push(v);
                        if with_places {
                            places.push(Place::new(&stream.name, doc.first_line, &doc.text));
                        }
                    }
                    Ok(other) => errors.push(format!(
                        "{}: document {}: expected a Kubernetes object (a mapping), found {}",
                        stream.name,
                        i + 1,
                        crate::config::json_type(&other)
                    )),
                    Err(e) => errors.push(format!("{}: document {}: {e}", stream.name, i + 1)),
                }
            }
        }
        if errors.is_empty() {
            Ok(Input { docs, places })
        } else {
            Err(errors)
        }
    }
}

/// `NS:KEY=VALUE` flags, grouped by namespace.
fn namespace_annotations(flags: &[String]) -> Result<BTreeMap<String, Annotations>, UsageError> {
    let mut out: BTreeMap<String, Annotations> = BTreeMap::new();
    for f in flags {
        let parsed = f
            .split_once(':')
            .and_then(|(ns, kv)| kv.split_once('=').map(|(k, v)| (ns, k, v)));
        match parsed {
            Some((ns, k, v)) if !ns.is_empty() && !k.is_empty() => {
                out.entry(ns.to_string()).or_default().insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(UsageError::Flag(format!(
                    "--namespace-annotation {f:?}: expected NAMESPACE:KEY=VALUE, e.g. shop:linkerd.io/inject=enabled"
                )))
            }
        }
    }
    Ok(out)
}

/// Which workloads fail the run, and why.
pub struct Verdict {
    /// Per row: the reasons it fails the policy (empty: it passes).
    row_failures: Vec<Vec<String>>,
    /// Per row: it is not meshed while `--require-meshed` asks that it be.
    pub unmeshed_required: Vec<bool>,
    failures: Vec<String>,
}

impl Verdict {
    fn of(rows: &[Row], args: &CheckArgs) -> Verdict {
        let threshold = match args.fail_on {
            FailOn::Warning => Level::Warning,
            FailOn::Error => Level::Error,
        };
        let allowed: BTreeSet<String> = args
            .allow_unmeshed
            .iter()
            .map(|s| s.to_lowercase())
            .collect();
        let mut row_failures = Vec::new();
        let mut unmeshed_required = Vec::new();
        let mut failures = Vec::new();
        for r in rows {
            let mut mine = Vec::new();
            for m in r.messages.iter().filter(|m| m.level >= threshold) {
                mine.push(format!("{}: {}", level_name(m.level), m.text));
            }
            let unmeshed = args.require_meshed
                && r.meshed == Meshed::No
                && !allowed.contains(&r.workload.to_lowercase());
            if unmeshed {
                mine.push(NOT_MESHED_TEXT.to_string());
            }
            for f in &mine {
                failures.push(format!("{} ({}): {f}", r.workload, r.namespace));
            }
            row_failures.push(mine);
            unmeshed_required.push(unmeshed);
        }
        Verdict {
            row_failures,
            unmeshed_required,
            failures,
        }
    }
}

/// The failure of a workload that `--require-meshed` wants meshed (rule `check::NOT_MESHED`).
pub const NOT_MESHED_TEXT: &str = "not meshed (--require-meshed)";

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Error => "error",
    }
}

fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
        && std::io::stdout().is_terminal()
}

/// An aligned table like `kubectl get` / `linkerd edges`; the MSG column may hold several
/// findings, separated by `; `.
fn table(rows: &[Row], verdict: &Verdict, color: bool) -> String {
    let header = [
        "WORKLOAD",
        "NAMESPACE",
        "MESHED",
        "IDENTITY",
        "DEBUG",
        "POLICY",
        "MSG",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let msg = r
                .messages
                .iter()
                .map(|m| format!("{}: {}", level_name(m.level), m.text))
                .collect::<Vec<_>>()
                .join("; ");
            [
                r.workload.clone(),
                r.namespace.clone(),
                r.meshed.as_str().to_string(),
                r.identity.clone().unwrap_or_else(|| "-".into()),
                if r.debug { "yes" } else { "no" }.to_string(),
                r.policy.summary(),
                if msg.is_empty() { "-".into() } else { msg },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, v) in widths.iter_mut().zip(c.iter()) {
            *w = (*w).max(v.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, vals: &[String; 7], paint: Option<&str>| {
        let mut l = String::new();
        for (i, v) in vals.iter().enumerate() {
            if i == 6 {
                l.push_str(v);
            } else {
                let _ = write!(l, "{v:<w$}   ", w = widths[i]);
            }
        }
        match paint {
            Some(code) => {
                let _ = writeln!(out, "\x1b[{code}m{}\x1b[0m", l.trim_end());
            }
            None => {
                let _ = writeln!(out, "{}", l.trim_end());
            }
        }
    };
    line(&mut out, &header.map(String::from), None);
    for (i, c) in cells.iter().enumerate() {
        let paint = color.then(|| {
            if !verdict.row_failures[i].is_empty() {
                "31"
            } else if rows[i].meshed == Meshed::No {
                "33"
            } else {
                "32"
            }
        });
        line(&mut out, c, paint);
    }
    out
}

fn summary(rows: &[Row], verdict: &Verdict) -> Value {
    let count = |m: Meshed| rows.iter().filter(|r| r.meshed == m).count();
    let level = |l: Level| {
        rows.iter()
            .flat_map(|r| &r.messages)
            .filter(|m| m.level == l)
            .count()
    };
    json!({
        "workloads": rows.len(),
        "meshed": count(Meshed::Yes),
        "already": count(Meshed::Already),
        "unmeshed": count(Meshed::No),
        "warnings": level(Level::Warning),
        "errors": level(Level::Error),
        "passed": verdict.failures.is_empty(),
        "failures": verdict.failures,
    })
}

/// The JSON report (schema version 1, documented in the README).
fn json_report(rows: &[Row], verdict: &Verdict) -> String {
    let report = json!({"apiVersion": "proxy-injector/check/v1", "workloads": rows, "summary": summary(rows, verdict)});
    let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
    s.push('\n');
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one testcase per workload, failing with the reasons it fails the policy.
fn junit(rows: &[Row], verdict: &Verdict) -> String {
    let failed = verdict
        .row_failures
        .iter()
        .filter(|f| !f.is_empty())
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"proxy-injector check\" tests=\"{}\" failures=\"{failed}\">",
        rows.len()
    );
    let _ = writeln!(out, "  <testsuite name=\"proxy-injector check\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\">", rows.len());
    for (r, fails) in rows.iter().zip(&verdict.row_failures) {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(&r.namespace),
            xml_escape(&r.workload)
        );
        let details = r
            .messages
            .iter()
            .map(|m| {
                format!(
                    "{}: {}{}",
                    level_name(m.level),
                    m.text,
                    m.hint
                        .as_ref()
                        .map(|h| format!(" (fix: {h})"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        if fails.is_empty() {
            if details.is_empty() {
                out.push_str("/>\n");
            } else {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml_escape(&details)
                );
            }
        } else {
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"policy\">{}</failure>\n    </testcase>",
                xml_escape(&fails.join("; ")),
                xml_escape(&details)
            );
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
