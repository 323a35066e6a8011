//! Properties that hold over every CLI fixture case:
//!
//! - injecting an injected manifest changes nothing (byte for byte);
//! - `uninject(inject(x)) == x` when `x` has no Linkerd metadata of its own and no flag added
//!   override annotations;
//! - the core's patch, applied by an independent RFC 6902 implementation (Python `jsonpatch`),
//!   gives exactly the CLI's `--manual` output;
//! - fields unknown to Kubernetes' types survive;
//! - injected output validates against Kubernetes' strict schemas (1.33 and 1.37).

mod common;

use std::path::PathBuf;

use clap::Parser;
use common::{cases, read_tree, run_cli, yaml_docs, Case};
use proxy_injector::cli::{Cli, Command as CliCommand, InjectPlan};
use serde_json::{json, Value};

fn ok_manual_cases() -> Vec<Case> {
    cases()
        .into_iter()
        .filter(|c| c.is_manual_inject())
        .filter(|c| std::fs::read_to_string(c.dir.join("exit")).is_ok_and(|e| e.trim() == "0"))
        .collect()
}

/// The case's arguments with its inputs replaced by `input`.
fn args_with_input(case: &Case, input: &str) -> Vec<String> {
    let inputs: Vec<PathBuf> = case.inputs();
    let mut args: Vec<String> = case
        .args
        .iter()
        .filter(|a| *a != "-" && !inputs.contains(&case.dir.join(a)))
        .cloned()
        .collect();
    args.push(input.to_string());
    args
}

#[test]
fn injecting_twice_equals_injecting_once() {
    for case in ok_manual_cases() {
        let golden = std::fs::read(case.stdout_golden()).expect("golden");
        let again = run_cli(&case.dir, &args_with_input(&case, "stdout.golden"), b"");
        assert_eq!(
            again.code,
            0,
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&again.stderr)
        );
        assert!(
            again.stdout == golden,
            "{}: a second inject changed the output:\n{}",
            case.name,
            String::from_utf8_lossy(&again.stdout)
        );
    }
}

/// Flags that add override annotations, which uninject keeps by design.
const OVERRIDE_FREE: &[&str] = &["inject", "--values", "--manual", "-o", "json", "--verbose"];

#[test]
fn uninject_undoes_inject() {
    let mut checked = 0;
    for case in ok_manual_cases() {
        let inputs = case.inputs();
        let flags_ok = case.args.iter().all(|a| {
            OVERRIDE_FREE.contains(&a.as_str())
                || inputs.contains(&case.dir.join(a))
                || a.ends_with(".yaml") && case.dir.join(a).is_file()
        });
        let originals: Vec<Value> = inputs
            .iter()
            .flat_map(|p| read_tree(p))
            .flat_map(|text| yaml_docs(&text))
            .collect();
        let has_linkerd_meta = serde_json::to_string(&originals)
            .unwrap()
            .contains("\"linkerd.io/");
        if !flags_ok || has_linkerd_meta {
            continue;
        }
        let run = run_cli(&case.dir, &["uninject".into(), "stdout.golden".into()], b"");
        assert_eq!(run.code, 0, "{}", case.name);
        let back = yaml_docs(&String::from_utf8(run.stdout).unwrap());
        let originals: Vec<Value> = originals.into_iter().map(stringify_metadata_maps).collect();
        assert_eq!(back, originals, "{}: uninject(inject(x)) != x", case.name);
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} cases checked");
}

/// D-1 (docs/behaviour.md): injection writes annotation and label values as strings (the API server
/// refuses others), so `true` in an input annotation comes back as `"true"`.
fn stringify_metadata_maps(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if k == "annotations" || k == "labels" {
                        if let Value::Object(map) = child {
                            for val in map.values_mut() {
                                if !val.is_string() {
                                    let text = if val.is_null() {
                                        String::new()
                                    } else {
                                        val.to_string()
                                    };
                                    *val = Value::String(text);
                                }
                            }
                            continue;
                        }
                    }
                    walk(child);
                }
            }
            Value::Array(l) => l.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// The case's arguments with every path made absolute, parsed as the CLI parses them.
fn plan_for(case: &Case) -> InjectPlan {
    let mut argv = vec!["proxy-injector".to_string()];
    for a in &case.args {
        let p = case.dir.join(a);
        argv.push(if !a.starts_with('-') && p.exists() {
            p.display().to_string()
        } else {
            a.clone()
        });
    }
    let cli = Cli::try_parse_from(argv).expect("fixture args parse");
    let CliCommand::Inject(args) = cli.command else {
        panic!("not an inject case")
    };
    InjectPlan::from_args(&args).expect("plan")
}

#[test]
fn core_patch_applied_independently_gives_cli_output() {
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for case in ok_manual_cases() {
        if case.has("json") {
            continue;
        }
        let plan = plan_for(&case);
        let req = plan.request();
        let outputs = yaml_docs(&std::fs::read_to_string(case.stdout_golden()).unwrap());
        let inputs: Vec<Value> = case
            .inputs()
            .iter()
            .flat_map(|p| read_tree(p))
            .flat_map(|text| yaml_docs(&text))
            .collect();
        assert_eq!(inputs.len(), outputs.len(), "{}: document count", case.name);
        for (input, output) in inputs.into_iter().zip(outputs) {
            let pairs: Vec<(Value, Value)> = if input.get("kind") == Some(&json!("List")) {
                let items = input["items"].as_array().unwrap().clone();
                let outs = output["items"].as_array().unwrap().clone();
                items
                    .into_iter()
                    .zip(outs)
                    .filter(|(i, _)| !i.is_null())
                    .collect()
            } else {
                vec![(input, output)]
            };
            for (mut doc, out) in pairs {
                proxy_injector::uninject::uninject(&mut doc).expect("uninject");
                let outcome = proxy_injector::inject::inject(&doc, &req).expect("inject");
                batch.push(json!({"doc": doc, "patch": outcome.patch}));
                expected.push((case.name.clone(), out));
            }
        }
    }
    assert!(batch.len() >= 20, "only {} documents", batch.len());
    let patched = common::apply_patches_independently(&batch);
    assert_eq!(patched.len(), expected.len());
    for (got, (name, want)) in patched.iter().zip(&expected) {
        assert_eq!(
            got, want,
            "{name}: jsonpatch result differs from the CLI output"
        );
    }
}

#[test]
fn unknown_fields_survive() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "unknown-fields")
        .expect("case");
    let out = &yaml_docs(&std::fs::read_to_string(case.stdout_golden()).unwrap())[0];
    assert_eq!(out["metadata"]["x-team-owner"], json!("shelves"));
    assert_eq!(out["spec"]["futureRolloutKnob"], json!({"maxWarp": 9}));
    let pod = &out["spec"]["template"]["spec"];
    assert_eq!(pod["podFutureField"], json!([1, 2, 3]));
    assert_eq!(pod["hostNetwork"], json!(false));
    assert_eq!(
        pod["containers"][0]["containerFutureField"],
        json!("keep me")
    );
    assert_eq!(
        pod["containers"][0]["ports"][0]["futurePortField"],
        json!(true)
    );
    assert!(
        pod["initContainers"]
            .as_array()
            .is_some_and(|l| l.len() == 2),
        "injected"
    );
}

#[test]
fn injected_output_passes_strict_kubernetes_schemas() {
    let files: Vec<PathBuf> = ok_manual_cases()
        .into_iter()
        .filter(|c| c.name != "unknown-fields" && !c.has("json"))
        .map(|c| c.stdout_golden())
        .collect();
    assert!(files.len() >= 10);
    common::kubernetes_validate(&files, &["1.33.0", "1.37.0"]);
}
