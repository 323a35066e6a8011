//! The invariants the fuzz targets check, shared with the regression tests
//! (`tests/fuzz_regressions.rs`), which run them on every input a fuzzer once crashed.
//!
//! `manifest`: the offline CLI on arbitrary bytes, `inject --manual` and `uninject`, as a
//! user runs them. Every document reads with the one-pass reader (`manifest::read`) as with
//! serde_yaml (`manifest::parse`): the same value, or the same error. No panic; an error
//! leaves stdout empty; inject is idempotent (byte for byte); uninject(inject(x)) has the
//! same values as uninject(x) (but for control-plane components, whose metadata uninject
//! leaves alone).
//!
//! `admission`: AdmissionReview handling on arbitrary bytes, the webhook's decoding, the core
//! with the webhook's origin, and the response encoding, as `POST /` runs them. No panic; a
//! decoded pod either gets a patch that applies to it (with an independent RFC 6902
//! implementation) and a response that encodes, or none; the patched pod is not injected
//! again.

#![allow(dead_code)]

use std::sync::OnceLock;

use clap::Parser;
use kube::core::admission::AdmissionResponse;
use proxy_injector::cli::{self, Cli};
use proxy_injector::config::{self, overrides::Annotations, Values};
use proxy_injector::inject::{self, Request};
use proxy_injector::manifest;
use proxy_injector::webhook::admission;

const EXAMPLE_VALUES: &str = include_str!("../../manifests/examples/values.yaml");

/// The example values (they carry trust anchors, so that workloads inject).
fn values_file() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("pi-fuzz-values-{}.yaml", std::process::id()));
        std::fs::write(&path, EXAMPLE_VALUES).expect("writing the fuzz values file");
        path.display().to_string()
    })
}

/// What one run of the CLI wrote, stdout as one string.
struct Output {
    stdout: String,
    stderr: String,
    code: i32,
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let cli = Cli::try_parse_from(args).expect("the fuzz target's own flags parse");
    let out = cli::run(cli, &mut &stdin[..]);
    Output {
        stdout: out.stdout.to_string(),
        stderr: out.stderr,
        code: out.code,
    }
}

/// `inject --manual` with the example values, and `extra` flags.
fn inject_with(stdin: &[u8], extra: &[&str]) -> Output {
    let mut args = vec![
        "proxy-injector",
        "inject",
        "--manual",
        "--values",
        values_file(),
    ];
    args.extend_from_slice(extra);
    args.push("-");
    run(&args, stdin)
}

fn inject(stdin: &[u8]) -> Output {
    inject_with(stdin, &[])
}

fn uninject(stdin: &[u8]) -> Output {
    run(&["proxy-injector", "uninject", "-"], stdin)
}

/// The values of a stream's documents, with annotation and label values as strings
/// (null as ""; inject writes the metadata it touches as Kubernetes types it, strings,
/// docs/behaviour.md D-1, and uninject leaves an untouched `admin-port: 5191` a number), and
/// without null or empty `spec`, `metadata`, annotation and label maps.
fn documents(stream: &str) -> Vec<serde_json::Value> {
    let docs = manifest::split(stream).expect("our own output splits");
    docs.iter()
        .map(|d| {
            let mut v = manifest::parse(d).expect("our own output parses");
            normalise(&mut v);
            v
        })
        .collect()
}

fn normalise(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "annotations" || k == "labels" {
                    if let Value::Object(m) = child {
                        for value in m.values_mut() {
                            if !value.is_string() {
                                let text = proxy_injector::workload::scalar_text(value);
                                *value = Value::String(text);
                            }
                        }
                    }
                } else {
                    normalise(child);
                }
            }
            // Bottom-up: `labels: null`, `labels: {}` and no labels are the same to
            // Kubernetes, and so are empty `metadata` and `spec`. Inject fills a null or
            // missing map, and uninject cannot tell the `{}` it leaves, or drops, from one the
            // input had.
            for key in ["spec", "metadata", "annotations", "labels"] {
                if map
                    .get(key)
                    .is_some_and(|m| m.is_null() || m.as_object().is_some_and(|o| o.is_empty()))
                {
                    map.remove(key);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

pub fn manifest(data: &[u8]) {
    let docs = std::str::from_utf8(data)
        .ok()
        .and_then(|text| manifest::split(text).ok());
    for d in docs.iter().flatten() {
        assert_eq!(
            manifest::read(d).map(|p| p.value),
            manifest::parse(d),
            "the one-pass reader and serde_yaml read differently:\n{d}"
        );
    }
    let once = inject(data);
    let plain = uninject(data);
    for out in [&once, &plain] {
        if out.code != 0 {
            assert!(out.stdout.is_empty(), "stdout must stay empty on error");
        }
    }
    if once.code != 0 {
        return;
    }
    // The YAML output, written into each document's text, holds what the JSON output holds,
    // which is the patched value serialised.
    let json = inject_with(data, &["-o", "json"]);
    assert_eq!(json.code, 0, "inject -o json failed: {}", json.stderr);
    let as_json: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON document per line"))
        .collect();
    let as_yaml: Vec<serde_json::Value> = manifest::split(&once.stdout)
        .expect("our own output splits")
        .iter()
        .map(|d| manifest::parse(d).expect("our own output parses"))
        .collect();
    assert_eq!(
        as_yaml, as_json,
        "the YAML output does not hold the patched documents"
    );
    let twice = inject(once.stdout.as_bytes());
    assert_eq!(
        twice.code, 0,
        "re-injecting our output failed: {}",
        twice.stderr
    );
    assert_eq!(once.stdout, twice.stdout, "inject is not idempotent");
    let back = uninject(once.stdout.as_bytes());
    assert_eq!(
        back.code, 0,
        "uninjecting our output failed: {}",
        back.stderr
    );
    // Uninject leaves the metadata of control-plane components alone (docs/behaviour.md §9.10), so
    // what inject added to their metadata stays: the round trip holds for everything else.
    let control_plane = once
        .stdout
        .contains(proxy_injector::annotations::CONTROL_PLANE_COMPONENT_LABEL);
    if plain.code == 0 && !control_plane {
        assert_eq!(
            documents(&back.stdout),
            documents(&plain.stdout),
            "uninject(inject(x)) != uninject(x)"
        );
    }
}

fn example_values() -> &'static Values {
    static VALUES: OnceLock<Values> = OnceLock::new();
    VALUES.get_or_init(|| {
        config::load([("values.yaml", EXAMPLE_VALUES)]).expect("the example values load")
    })
}

fn request<'a>(ns_annotations: &'a Annotations, namespace: &'a str) -> Request<'a> {
    Request::webhook(
        example_values(),
        "linkerd",
        "proxy-injector/fuzz",
        namespace,
        ns_annotations,
        Some(("deployment", "web")),
    )
}

pub fn admission(data: &[u8]) {
    let Ok(admission::Decoded { req, object }) = admission::decode_request(data) else {
        return;
    };
    let Some(object) = object else {
        return;
    };
    let obj = admission::object_value(object, &req.kind.kind);
    let namespace = req.namespace.clone().unwrap_or_default();
    let mut ns_annotations = Annotations::new();
    ns_annotations.insert("linkerd.io/inject".into(), "enabled".into());
    let Ok(outcome) = inject::inject(&obj, &request(&ns_annotations, &namespace)) else {
        return;
    };
    if outcome.patch.is_empty() {
        return;
    }
    let mut patched = obj.clone();
    outcome
        .patch
        .apply(&mut patched)
        .expect("our patch applies to the pod");
    let response = admission::with_patch(AdmissionResponse::from(&req), &outcome.patch)
        .expect("the patch serialises");
    let body = admission::encode_review(response).expect("the response encodes");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("the response is JSON");
    assert!(v.pointer("/response/patch").is_some_and(|p| p.is_string()));
    if outcome.report.injectable() {
        let again = inject::inject(&patched, &request(&ns_annotations, &namespace))
            .expect("an injected pod is handled again");
        assert!(
            !again.report.injectable(),
            "an injected pod was injected twice"
        );
    }
}

/// `splice`: the splicer on arbitrary text, with a change the first bytes choose (a key added
/// to a mapping, an item added to a list at its end or front, an empty value given content).
/// No panic; a splice either falls back or gives text that reads back as the new value,
/// whatever the skeleton check let through; a splicer that remembers inserted texts writes
/// what a fresh one writes; when the splice only added lines, splicing the old value back
/// gives the text back (with a final line end, if it lacked one and lines were added at its
/// end), or falls back.
pub fn splice(data: &[u8]) {
    let (choice, text) = data.split_at(data.len().min(3));
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(old) = manifest::parse(text) else {
        return;
    };
    let mut new = old.clone();
    let Some(change) = change(&mut new, choice) else {
        return;
    };
    let mut splicer = manifest::Splicer::default();
    let Ok(out) = splicer.splice(text, &old, &new) else {
        return;
    };
    assert_eq!(
        manifest::parse(&out).ok().as_ref(),
        Some(&new),
        "the spliced text does not read back as the new value:\n{out}"
    );
    let again = splicer.splice(text, &old, &new).expect("it spliced once");
    assert_eq!(again, out, "a remembering splicer wrote something else");
    // A flow node that changed was rewritten in our flow style, which the reverse cannot
    // undo: the round trip is for splices that only added lines. And an empty value that was
    // given content goes back to null, which is written `null` (the text's empty value and
    // `null` read alike; found by fuzzing).
    if !only_added(text, &out) || change == Change::FilledEmpty {
        return;
    }
    if let Ok(back) = manifest::Splicer::default().splice(&out, &new, &old) {
        // Lines added after a last line without a line end gave it one, which stays (found
        // by fuzzing; the CLI's splitter ends every document's lines anyway).
        let ended = back
            .strip_suffix("\r\n")
            .or_else(|| back.strip_suffix('\n'));
        let terminated = !text.ends_with('\n') && ended == Some(text);
        assert!(
            back == text || terminated,
            "the reverse splice does not give the text back:\n{back:?}\n{text:?}"
        );
    }
}

/// Whether every line of `text` is in `out`, in order (a final line without its line end
/// counts as the same line with it).
fn only_added(text: &str, out: &str) -> bool {
    let mut lines = out.lines();
    text.lines().all(|l| lines.any(|o| o == l))
}

#[derive(PartialEq)]
enum Change {
    Added,
    FilledEmpty,
}

/// Applies the change `choice` selects to one of the value's mappings or lists (or empty
/// values); `None` when there is none.
fn change(v: &mut serde_json::Value, choice: &[u8]) -> Option<Change> {
    use serde_json::{json, Value};
    fn targets(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                out.push(at.clone());
                for (k, c) in m {
                    let k = k.replace('~', "~0").replace('/', "~1");
                    targets(c, format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                out.push(at.clone());
                for (i, c) in a.iter().enumerate() {
                    targets(c, format!("{at}/{i}"), out);
                }
            }
            Value::Null => out.push(at),
            _ => {}
        }
    }
    let mut found = Vec::new();
    targets(v, String::new(), &mut found);
    let kind = choice.first().copied().unwrap_or(0);
    let pick = usize::from(choice.get(1).copied().unwrap_or(0));
    let at = found.get(pick % found.len().max(1))?;
    let added = match kind % 4 {
        0 => json!("enabled"),
        1 => {
            json!({"name": "linkerd-proxy", "args": ["--a", "b: c"], "env": [{"name": "X", "value": "1\n2\n"}]})
        }
        2 => json!(["x", {"y": null}]),
        _ => json!(3),
    };
    let target = v.pointer_mut(at)?;
    match target {
        Value::Object(m) => {
            m.insert(
                format!("linkerd.io/added-{}", choice.get(2).unwrap_or(&0)),
                added,
            );
        }
        Value::Array(a) if kind & 4 == 0 => a.push(added),
        Value::Array(a) => a.insert(0, added),
        Value::Null => {
            *target = json!({"k": added});
            return Some(Change::FilledEmpty);
        }
        _ => return None,
    }
    Some(Change::Added)
}

/// `splice_patch`: the direct splicer (`Splicer::splice_patches`) on arbitrary text, with a
/// patch the first bytes choose among what injection adds: a key or an item, a mapping or list
/// created and then filled, items inserted at the front, a shared value with a hole (filled
/// with text that may need quoting). No panic; a splice either falls back or gives text that
/// reads back as the patched value (nothing checks it before it is used); a splicer that
/// remembers shared texts writes what a fresh one writes. Says whether it spliced.
pub fn splice_patch(data: &[u8]) -> bool {
    let (choice, text) = data.split_at(data.len().min(4));
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let Ok(old) = manifest::parse(text) else {
        return false;
    };
    let Some(patch) = patch_for(&old, choice) else {
        return false;
    };
    let mut want = old.clone();
    if patch.apply(&mut want).is_err() {
        return false;
    }
    let patches = [(None, patch)];
    let mut splicer = manifest::Splicer::default();
    let Ok(out) = splicer.splice_patches(text, &old, &patches) else {
        return false;
    };
    assert_eq!(
        manifest::parse(&out).ok().as_ref(),
        Some(&want),
        "the spliced text does not read back as the patched value:\n{text}\n=>\n{out}"
    );
    let again = splicer
        .splice_patches(text, &old, &patches)
        .expect("it spliced once");
    assert_eq!(again, out, "a remembering splicer wrote something else");
    true
}

/// Fills the `env[0].value` hole of [`patch_for`]'s shared container.
fn fill_env(v: &mut serde_json::Value, s: &str) {
    v["env"][0]["value"] = serde_json::Value::String(s.to_string());
}

/// A patch of up to two adds at one of the value's mappings or lists (or a list in a key
/// the add creates), or `None` when it has none.
fn patch_for(v: &serde_json::Value, choice: &[u8]) -> Option<proxy_injector::patch::Patch> {
    use std::sync::{Arc, OnceLock};

    use proxy_injector::patch::{Added, PatchBuilder, Shared};
    use serde_json::{json, Value};

    fn targets(v: &Value, at: &mut Vec<String>, out: &mut Vec<(Vec<String>, bool)>) {
        match v {
            Value::Object(m) => {
                out.push((at.clone(), true));
                for (k, c) in m {
                    at.push(k.clone());
                    targets(c, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                out.push((at.clone(), false));
                for (i, c) in a.iter().enumerate() {
                    at.push(i.to_string());
                    targets(c, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let proxy = json!({
            "name": "linkerd-proxy",
            "env": [{"name": "LINKERD2_PROXY_INBOUND_PORTS", "value": ""}],
            "args": ["--a", "b: c"],
            "volumeMounts": [{"mountPath": "/var/run/linkerd/identity/end-entity", "name": "e"}],
        });
        Arc::new(Shared::with_hole(proxy, fill_env))
    });
    let mut found = Vec::new();
    targets(v, &mut Vec::new(), &mut found);
    let byte = |i: usize| choice.get(i).copied().unwrap_or(0);
    let (at, is_map) = found
        .get(usize::from(byte(1)) % found.len().max(1))?
        .clone();
    let fills = [
        "8080,9090",
        "",
        "a: b",
        "#x",
        "'q'",
        "two\nlines",
        "true",
        "- 1",
    ];
    let fill = fills[usize::from(byte(3)) % fills.len()].to_string();
    let scalar = Added::Value(json!("enabled"));
    let multi = Added::Value(json!({"name": "x", "args": ["--a"], "env": [{"value": "1\n2\n"}]}));
    let with_hole = Added::Shared(shared.clone(), fill);
    let mut b = PatchBuilder::new(&[]);
    let tokens = |extra: &[&str]| -> Vec<String> {
        at.iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let add = |b: &mut PatchBuilder, path: Vec<String>, value: Added| {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        b.add(&path, value);
    };
    let key = format!("linkerd.io/added-{}", byte(2));
    match (byte(0) % 4, is_map) {
        (0, true) => add(&mut b, tokens(&[&key]), scalar),
        (1, true) => add(&mut b, tokens(&[&key]), multi),
        (2, true) => {
            add(&mut b, tokens(&[&key]), Added::Value(json!([])));
            add(&mut b, tokens(&[&key, "-"]), with_hole);
            add(&mut b, tokens(&[&key, "0"]), scalar);
        }
        (_, true) => {
            add(&mut b, tokens(&[&key]), Added::Value(json!({})));
            add(&mut b, tokens(&[&key, "inner"]), with_hole);
        }
        (0, false) => add(&mut b, tokens(&["-"]), scalar),
        (1, false) => add(&mut b, tokens(&["0"]), multi),
        (2, false) => {
            add(&mut b, tokens(&["0"]), with_hole);
            add(&mut b, tokens(&["1"]), multi);
        }
        (_, false) => add(&mut b, tokens(&["-"]), with_hole),
    }
    Some(b.finish())
}
