//! Property tests (proptest) of splicing over generated YAML text: Deployments written with a
//! random indentation step, list style, quoting, flow or block maps and lists, and comments
//! (full-line and trailing) scattered through them. For each, through the CLI in-process, in
//! annotate-only and `--manual` mode: the output reads as the patched document (what `-o json`
//! writes, from the value), it only adds lines (beyond flow nodes that
//! injection extends), every comment survives, injecting again changes nothing byte for byte,
//! and `uninject` gives the text back byte for byte when no flow node was touched.

use std::fmt::Write as _;

use clap::Parser;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use proxy_injector::cli::{self, Cli};

const VALUES: &str = "identityTrustAnchorsPEM: |\n  -----BEGIN CERTIFICATE-----\n  MIIB\n  -----END CERTIFICATE-----\n";

/// How one generated document is written.
#[derive(Clone, Debug)]
struct Style {
    step: usize,
    indented_lists: bool,
    /// Quote character for string values: none, `'` or `"`.
    quote: &'static str,
    flow_labels: bool,
    flow_ports: bool,
    template_metadata: bool,
    /// Lines (by index) after which a full-line comment goes, and whether trailing comments
    /// go on scalar lines.
    comments_after: Vec<usize>,
    trailing: bool,
    containers: Vec<(String, u16)>,
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop_oneof![Just(2usize), Just(4)],
        any::<bool>(),
        prop_oneof![Just(""), Just("'"), Just("\"")],
        (any::<bool>(), any::<bool>(), any::<bool>()),
        proptest::collection::vec(0usize..40, 0..6),
        any::<bool>(),
        proptest::collection::vec(("[a-z][a-z0-9]{0,6}", 1u16..60000), 1..3),
    )
        .prop_map(
            |(step, indented_lists, quote, (fl, fp, tm), comments_after, trailing, cs)| Style {
                step,
                indented_lists,
                quote,
                flow_labels: fl,
                flow_ports: fp,
                template_metadata: tm,
                comments_after,
                trailing,
                containers: cs,
            },
        )
}

/// The document's text, line by line, in `s`'s style.
fn render(s: &Style) -> String {
    let q = |v: &str| format!("{}{v}{}", s.quote, s.quote);
    let ind = |level: usize| " ".repeat(level * s.step);
    let dash = |level: usize| {
        if s.indented_lists {
            format!("{}- ", ind(level + 1))
        } else {
            format!("{}- ", ind(level))
        }
    };
    let item = |level: usize| {
        let extra = if s.indented_lists { s.step } else { 0 };
        " ".repeat(level * s.step + extra + 2)
    };
    let trail = |n: usize| {
        if s.trailing && n % 3 == 0 {
            format!("  # note {n}")
        } else {
            String::new()
        }
    };
    let mut lines: Vec<String> = vec![
        "apiVersion: apps/v1".into(),
        "kind: Deployment".into(),
        "metadata:".into(),
        format!("{}name: {}{}", ind(1), q("shop"), trail(1)),
        format!("{}namespace: demo", ind(1)),
        "spec:".into(),
        format!("{}template:", ind(1)),
    ];
    if s.template_metadata {
        lines.push(format!("{}metadata:", ind(2)));
        if s.flow_labels {
            lines.push(format!(
                "{}labels: {{app: shop, tier: {}}}",
                ind(3),
                q("web")
            ));
        } else {
            lines.push(format!("{}labels:", ind(3)));
            lines.push(format!("{}app: shop{}", ind(4), trail(2)));
        }
    }
    lines.push(format!("{}spec:", ind(2)));
    lines.push(format!("{}containers:", ind(3)));
    for (i, (name, port)) in s.containers.iter().enumerate() {
        lines.push(format!("{}name: {}{}", dash(3), q(name), trail(3 + i)));
        lines.push(format!(
            "{}image: {}",
            item(3),
            q(&format!("example/{name}:1"))
        ));
        if s.flow_ports {
            lines.push(format!("{}ports: [{{containerPort: {port}}}]", item(3)));
        } else {
            let base = item(3).len() / s.step;
            let _ = base;
            lines.push(format!("{}ports:", item(3)));
            let list = if s.indented_lists {
                format!("{}{}- ", item(3), " ".repeat(s.step))
            } else {
                format!("{}- ", item(3))
            };
            lines.push(format!("{list}containerPort: {port}"));
        }
    }
    let mut text = String::from("# generated\n");
    for (n, line) in lines.iter().enumerate() {
        let _ = writeln!(text, "{line}");
        if s.comments_after.contains(&n) {
            // At the next line's indentation, so that it reads as a comment about it.
            let next = lines.get(n + 1).map_or("", String::as_str);
            let indent = next.len() - next.trim_start().len();
            let _ = writeln!(text, "{}# comment after line {n}", " ".repeat(indent));
        }
    }
    text.push_str("# end\n");
    text
}

fn run(args: &[&str], stdin: &str) -> String {
    let mut argv = vec!["proxy-injector"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("arguments parse");
    let out = cli::run(cli, &mut stdin.as_bytes());
    assert_eq!(out.code, 0, "{}\n{stdin}", out.stderr);
    out.stdout.to_string()
}

fn inject(text: &str, values: &str, manual: bool) -> String {
    let mut args = vec!["inject", "--values", values];
    if manual {
        args.push("--manual");
    }
    args.push("-");
    run(&args, text)
}

/// The documents of an output stream: YAML (spliced into the input's text) or JSON (the
/// patched values serialised, one per line).
fn documents(out: &str, json: bool) -> Vec<serde_json::Value> {
    if json {
        return out
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON document per line"))
            .collect();
    }
    proxy_injector::manifest::split(out)
        .expect("the output splits")
        .iter()
        .map(|d| proxy_injector::manifest::parse(d).expect("the output parses"))
        .collect()
}

/// Whether every line of `a` appears in `b`, in order.
fn lines_kept(a: &str, b: &str) -> bool {
    let mut rest = b.lines();
    a.lines().all(|l| rest.by_ref().any(|m| m == l))
}

#[test]
fn spliced_output_keeps_the_text() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, VALUES).expect("values written");
    let values = values.to_str().expect("a UTF-8 path");
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    runner
        .run(&style(), |s| {
            let text = render(&s);
            let touches_flow = s.flow_labels && s.template_metadata;
            for manual in [false, true] {
                let out = inject(&text, values, manual);
                let mut args = vec!["inject", "--values", values, "-o", "json", "-"];
                if manual {
                    args.push("--manual");
                }
                let json = run(&args, &text);
                prop_assert_eq!(
                    documents(&out, false),
                    documents(&json, true),
                    "the spliced output does not hold the patched document:\n{}",
                    out
                );
                let body = out.strip_suffix("---\n").unwrap_or(&out);
                if !touches_flow {
                    prop_assert!(lines_kept(&text, body), "lines lost:\n{text}\n=>\n{out}");
                }
                for comment in text.lines().filter(|l| l.trim_start().starts_with('#')) {
                    prop_assert!(out.contains(comment), "{comment:?} lost:\n{out}");
                }
                prop_assert_eq!(inject(&out, values, manual), out.clone(), "not idempotent");
                if !touches_flow {
                    let back = run(&["uninject", "-"], &out);
                    let back = back.strip_suffix("---\n").unwrap_or(&back);
                    prop_assert_eq!(back, text.as_str(), "uninject(inject(x)) != x");
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
