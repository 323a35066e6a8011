//! `check` beyond its golden tables: the JSON report is consistent and the JUnit report is
//! well-formed XML (parsed here) with one testcase per workload and the policy's failures; the
//! SARIF report passes the SARIF SDK's validator and the SARIF schema, and points at each
//! workload's lines.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// The SARIF validator of Microsoft's SARIF SDK, installed by scripts/test.sh from the npm
/// registry, and the SARIF 2.1.0 schema its package ships.
fn sarif_sdk() -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/node_modules/@microsoft/sarif-multitool-linux");
    let tool = dir.join("Sarif.Multitool");
    assert!(
        tool.is_file(),
        "{} is missing: run scripts/test.sh (npm ci --prefix tests/support)",
        tool.display()
    );
    (tool, dir.join("sarif-2.1.0.json"))
}

/// The problems the SARIF SDK's validator finds in `log` (its JSON-schema, SARIF and GitHub
/// code-scanning rules), as `(level, rule, message)`.
fn sarif_sdk_findings(log: &Path) -> Vec<(String, String, String)> {
    let (tool, _) = sarif_sdk();
    let out_file = log.with_extension("validation.sarif");
    let out = Command::new(tool)
        .arg("validate")
        .arg(log)
        .arg("-o")
        .arg(&out_file)
        .args(["--log", "ForceOverwrite", "--rule-kind", "Sarif;Gh;Ghas"])
        .output()
        .expect("the SARIF multitool runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    report["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["level"].as_str().unwrap_or("warning").to_string(),
                r["ruleId"].as_str().unwrap_or("").to_string(),
                r["message"].to_string(),
            )
        })
        .collect()
}

/// The SARIF log at `path` (parsed: `log`) passes the SARIF SDK's validator and the schema.
fn assert_valid_sarif(path: &Path, log: &Value) {
    // The validator finds no error, and warns only that the tool has no web page (which also
    // shows it read the log: on a log it cannot load, it reports nothing at all).
    let findings = sarif_sdk_findings(path);
    let found: Vec<(&str, &str)> = findings
        .iter()
        .map(|(level, rule, _)| (level.as_str(), rule.as_str()))
        .collect();
    assert_eq!(found, [("warning", "SARIF2005")], "{findings:#?}");
    // And the schema the SDK ships, read by an independent JSON-schema implementation.
    let (_, schema) = sarif_sdk();
    let verdict = common::support_script(
        "validate_schema.py",
        &serde_json::json!({"schema": schema, "document": log}),
        "validate the SARIF log",
    );
    assert_eq!(verdict["draft"], "Draft202012Validator");
    assert_eq!(verdict["errors"], serde_json::json!([]));
}

/// The text of `region` in `text`, its first line blanked up to the start column, so that a
/// List item (`- kind: …`) reads as the mapping it is.
fn region_text(text: &str, region: &Value) -> String {
    let line = |k: &str| region[k].as_u64().unwrap() as usize;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (n, l) in lines[line("startLine") - 1..line("endLine")]
        .iter()
        .enumerate()
    {
        if n == 0 {
            let skip = line("startColumn") - 1;
            out.push_str(&" ".repeat(skip));
            out.extend(l.chars().skip(skip));
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

#[test]
fn sarif_report_is_valid_and_points_at_each_workload() {
    let dir = tempfile::tempdir().unwrap();
    let k8s = dir.path().join("k8s");
    std::fs::create_dir(&k8s).unwrap();
    let check_yaml = std::fs::read_to_string(common::fixtures().join("inputs/check.yaml")).unwrap();
    std::fs::write(k8s.join("check.yaml"), &check_yaml).unwrap();
    // A second file, with CRLF line ends, a leading comment, a space in its name and a List
    // whose items are indented under `items:`.
    let second = "# shop\r\n---\r\n\r\napiVersion: v1\r\nkind: List\r\nitems:\r\n  - kind: Deployment\r\n    apiVersion: apps/v1\r\n    metadata: {name: cart}\r\n    spec:\r\n      template:\r\n        metadata:\r\n          annotations: {linkerd.io/inject: enabeld}\r\n        spec:\r\n          containers: [{name: app, image: example/app:1}]\r\n";
    std::fs::write(k8s.join("shop apps.yaml"), second).unwrap();
    let values = common::fixtures().join("values.yaml");
    let args = |format: &str| -> Vec<String> {
        [
            "check",
            "--values",
            values.to_str().unwrap(),
            "--require-meshed",
            "--allow-unmeshed",
            "deployment/legacy",
            "--namespace-annotation",
            "cluster-ns:linkerd.io/inject=enabled",
            "-o",
            format,
            "k8s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = run_cli(dir.path(), &args("sarif"), b"");
    let json_run = run_cli(dir.path(), &args("json"), b"");
    assert_eq!(
        run.code, json_run.code,
        "the verdict is the format's business"
    );
    assert_eq!(run.code, 2);
    let log: Value = serde_json::from_slice(&run.stdout).expect("JSON");
    let path = dir.path().join("check.sarif");
    std::fs::write(&path, &run.stdout).unwrap();

    assert_valid_sarif(&path, &log);

    let run0 = &log["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    let report: Value = serde_json::from_slice(&json_run.stdout).unwrap();
    let workloads = report["workloads"].as_array().unwrap();
    let results = run0["results"].as_array().unwrap();
    // One result per finding, and one per workload that fails --require-meshed.
    let not_meshed = report["summary"]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f.as_str()
                .unwrap()
                .ends_with("not meshed (--require-meshed)")
        })
        .count();
    let findings: usize = workloads
        .iter()
        .map(|w| w["messages"].as_array().unwrap().len())
        .sum();
    assert_eq!(results.len(), findings + not_meshed);
    assert!(not_meshed > 0);
    for w in workloads {
        let fqn = format!(
            "{}/{}",
            w["namespace"].as_str().unwrap(),
            w["workload"].as_str().unwrap()
        );
        let mine: Vec<&Value> = results
            .iter()
            .filter(|r| {
                r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == fqn.as_str()
            })
            .collect();
        let codes: Vec<&str> = w["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["code"].as_str().unwrap())
            .collect();
        let result_codes: Vec<&str> = mine
            .iter()
            .map(|r| r["ruleId"].as_str().unwrap())
            .filter(|c| *c != "not_meshed")
            .collect();
        assert_eq!(result_codes, codes, "{fqn}");
        for r in &mine {
            // The rule it names, by id and index, with the level of its findings.
            let rule = &rules[r["ruleIndex"].as_u64().unwrap() as usize];
            assert_eq!(rule["id"], r["ruleId"]);
            assert_eq!(rule["defaultConfiguration"]["level"], r["level"]);
            assert!(!rule["help"]["text"].as_str().unwrap().is_empty());
            // Its region is the workload's text in its file.
            let physical = &r["locations"][0]["physicalLocation"];
            let uri = physical["artifactLocation"]["uri"].as_str().unwrap();
            let file = match uri {
                "k8s/check.yaml" => check_yaml.as_str(),
                "k8s/shop%20apps.yaml" => second,
                other => panic!("unexpected URI {other}"),
            };
            let object: Value = serde_yaml::from_str(&region_text(file, &physical["region"]))
                .unwrap_or_else(|e| panic!("{fqn}: the region is not one object: {e}"));
            assert_eq!(
                format!(
                    "{}/{}",
                    object["kind"].as_str().unwrap().to_lowercase(),
                    object["metadata"]["name"].as_str().unwrap()
                ),
                w["workload"].as_str().unwrap()
            );
        }
    }
    assert!(results.iter().any(
        |r| r["locations"][0]["physicalLocation"]["region"]["startLine"] == 7
            && r["ruleId"] == "invalid_inject_annotation_at_workload"
    ));

    // From standard input there is no file to point at: the workload's name only.
    let stdin_args: Vec<String> = ["check", "-o", "sarif", "-"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let run = run_cli(dir.path(), &stdin_args, check_yaml.as_bytes());
    let log: Value = serde_json::from_slice(&run.stdout).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert!(r["locations"][0].get("physicalLocation").is_none(), "{r}");
        assert!(r["locations"][0]["logicalLocations"][0]["name"].is_string());
    }
}

#[test]
fn a_sarif_run_that_cannot_read_its_input_says_so_in_the_log() {
    let c = case("check-bad-input");
    let mut args = c.args.clone();
    args.splice(1..1, ["-o".to_string(), "sarif".to_string()]);
    let run = run_cli(&c.dir, &args, b"");
    assert_eq!(run.code, 1);
    let log: Value = serde_json::from_slice(&run.stdout).expect("a SARIF log on stdout");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failed.sarif");
    std::fs::write(&path, &run.stdout).unwrap();
    assert_valid_sarif(&path, &log);
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let notice = invocation["toolExecutionNotifications"][0]["message"]["text"]
        .as_str()
        .unwrap();
    assert!(
        notice.contains("document 2") && stderr.contains(notice),
        "{notice} / {stderr}"
    );
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
}
