//! `check` beyond its golden tables: the JSON report is consistent and the JUnit report is
//! well-formed XML (parsed here) with one testcase per workload and the policy's failures.

mod common;

use common::{cases, run_cli};
use serde_json::Value;

fn case(name: &str) -> common::Case {
    cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("case {name}"))
}

#[test]
fn json_report_is_consistent() {
    let c = case("check-json");
    let run = run_cli(&c.dir, &c.args, b"");
    let report: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    assert_eq!(report["apiVersion"], "proxy-injector/check/v1");
    let rows = report["workloads"].as_array().unwrap();
    let s = &report["summary"];
    assert_eq!(s["workloads"].as_u64().unwrap() as usize, rows.len());
    let count = |m: &str| rows.iter().filter(|r| r["meshed"] == m).count() as u64;
    assert_eq!(s["meshed"], count("yes"));
    assert_eq!(s["already"], count("already"));
    assert_eq!(s["unmeshed"], count("no"));
    for r in rows {
        assert_eq!(r["identity"].is_null(), r["meshed"] == "no", "{r}");
        for m in r["messages"].as_array().unwrap() {
            assert!(["info", "warning", "error"].contains(&m["level"].as_str().unwrap()));
            assert!(!m["code"].as_str().unwrap().is_empty() || m["level"] == "info");
        }
    }
    assert_eq!(s["passed"], run.code == 0);
    assert_eq!(
        run.code, 2,
        "an invalid linkerd.io/inject value is an error"
    );
}

#[test]
fn junit_report_is_well_formed() {
    let c = case("check-junit");
    let run = run_cli(&c.dir, &c.args, b"");
    let text = String::from_utf8(run.stdout).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(
        suite.attribute("tests").unwrap().parse::<usize>().unwrap(),
        cases.len()
    );
    let failed = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .count();
    assert_eq!(
        suite
            .attribute("failures")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        failed
    );
    assert!(failed > 0 && failed < cases.len());
    let legacy = cases
        .iter()
        .find(|c| c.attribute("name") == Some("deployment/legacy"))
        .unwrap();
    assert!(
        !legacy.children().any(|n| n.has_tag_name("failure")),
        "--allow-unmeshed exempts it"
    );
    let bare = cases
        .iter()
        .find(|c| c.attribute("name") == Some("pod/bare"))
        .unwrap();
    let failure = bare.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("not meshed (--require-meshed)")
    );
    assert_eq!(run.code, 2);
}

#[test]
fn policy_flags_set_the_exit_code() {
    for (name, code) in [
        ("check-clean", 0),
        ("check-clean-require", 0),
        ("check-require-meshed", 2),
        ("check-allow-unmeshed", 0),
        ("check-fail-on-warning", 2),
        ("check-warning-passes-by-default", 0),
        ("check-bad-input", 1),
        ("check-bad-flag", 1),
    ] {
        let c = case(name);
        assert_eq!(run_cli(&c.dir, &c.args, b"").code, code, "{name}");
    }
}
