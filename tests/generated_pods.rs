//! Property tests (proptest) over generated pods and workloads: injecting twice equals
//! injecting once; uninject(inject(x)) == x; fields unknown to Kubernetes survive; and the
//! core's patch applies cleanly with an independent RFC 6902 implementation (Python's
//! `jsonpatch`, one batch for all generated cases).

mod common;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use proxy_injector::config::{self, overrides::Annotations, Values};
use proxy_injector::inject::{inject, Mode, Request};
use proxy_injector::uninject::uninject;
use serde_json::{json, Map, Value};

fn values() -> Values {
    let mut v = config::load([]).unwrap();
    v.identity_trust_anchors_pem =
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into();
    v
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]"
}

fn port() -> impl Strategy<Value = Value> {
    (
        1u16..65535,
        prop_oneof![Just("TCP"), Just("UDP")],
        proptest::option::of(name()),
    )
        .prop_map(|(p, proto, n)| {
            let mut m = json!({"containerPort": p, "protocol": proto});
            if let Some(n) = n {
                m["name"] = json!(n);
            }
            m
        })
}

fn container() -> impl Strategy<Value = Value> {
    (
        name(),
        proptest::collection::vec(port(), 0..4),
        proptest::collection::vec((name(), ".{0,12}"), 0..5),
        any::<bool>(),
    )
        .prop_map(|(n, ports, env, unknown)| {
            let env: Vec<Value> = env
                .into_iter()
                .map(|(k, v)| json!({"name": k.to_uppercase(), "value": v}))
                .collect();
            let mut c =
                json!({"name": n, "image": format!("example/{n}:1"), "ports": ports, "env": env});
            if unknown {
                c["futureField"] = json!({"keep": [1, "two", null]});
            }
            c
        })
}

/// Annotation values that are valid, invalid, or odd (quotes, newlines, unicode).
fn annotations() -> impl Strategy<Value = Map<String, Value>> {
    let keys = prop_oneof![
        Just("config.linkerd.io/proxy-cpu-request"),
        Just("config.linkerd.io/proxy-memory-limit"),
        Just("config.linkerd.io/opaque-ports"),
        Just("config.linkerd.io/skip-inbound-ports"),
        Just("config.linkerd.io/proxy-log-level"),
        Just("config.linkerd.io/admin-port"),
        Just("config.linkerd.io/proxy-await"),
        Just("config.linkerd.io/default-inbound-policy"),
        Just("config.linkerd.io/enable-debug-sidecar"),
        Just("config.linkerd.io/proxy-enable-native-sidecar"),
        Just("example.com/team"),
    ];
    let vals = prop_oneof![
        Just("100m".to_string()),
        Just("64Mi".to_string()),
        Just("true".to_string()),
        Just("8080,9000-9010".to_string()),
        Just("deny".to_string()),
        "[ -~]{0,16}",
        ".{0,8}",
        Just("a\"b\\c\nd".to_string())
    ];
    proptest::collection::btree_map(keys, vals, 0..6).prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .collect()
    })
}

fn workload() -> impl Strategy<Value = Value> {
    let kinds = prop_oneof![
        Just("Pod"),
        Just("Deployment"),
        Just("StatefulSet"),
        Just("Job"),
        Just("CronJob"),
        Just("DaemonSet")
    ];
    (kinds, name(), proptest::collection::vec(container(), 1..4), proptest::collection::vec(container(), 0..2), annotations(), any::<bool>(), any::<bool>())
        .prop_map(|(kind, n, containers, inits, ann, with_meta, with_volumes)| {
            let mut spec = json!({"containers": containers});
            if !inits.is_empty() {
                spec["initContainers"] = json!(inits);
            }
            if with_volumes {
                spec["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
            }
            spec["podFutureField"] = json!("kept");
            let mut template = json!({"spec": spec});
            if with_meta || !ann.is_empty() {
                template["metadata"] = json!({"labels": {"app": n}});
                if !ann.is_empty() {
                    template["metadata"]["annotations"] = Value::Object(ann);
                }
            }
            let meta = json!({"name": n, "namespace": "ns"});
            match kind {
                "Pod" => {
                    let mut p = template;
                    p["apiVersion"] = json!("v1");
                    p["kind"] = json!("Pod");
                    let m = p.get("metadata").cloned().unwrap_or(json!({}));
                    let mut merged = meta;
                    for (k, v) in m.as_object().unwrap() {
                        merged[k] = v.clone();
                    }
                    p["metadata"] = merged;
                    p
                }
                "CronJob" => json!({"apiVersion": "batch/v1", "kind": kind, "metadata": meta,
                                    "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
                _ => json!({"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": {"template": template}}),
            }
        })
}

fn request<'a>(v: &'a Values, empty: &'a Annotations) -> Request<'a> {
    Request::cli(v, "linkerd", "proptest", Mode::Full, empty, empty)
}

/// The CLI's pipeline on one object: uninject, inject, apply.
fn cli_inject(obj: &Value, req: &Request<'_>) -> Result<Value, String> {
    let mut v = obj.clone();
    uninject(&mut v).map_err(|e| e.to_string())?;
    let out = inject(&v, req).map_err(|e| e.to_string())?;
    out.patch
        .apply(&mut v)
        .map_err(|e| format!("patch does not apply: {e}"))?;
    Ok(v)
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn injecting_twice_equals_injecting_once(w in workload()) {
        let (v, empty) = (values(), Annotations::new());
        let req = request(&v, &empty);
        if let Ok(once) = cli_inject(&w, &req) {
            let twice = cli_inject(&once, &req).expect("an injected object injects again");
            prop_assert_eq!(once, twice);
        }
    }

    #[test]
    fn uninject_undoes_inject_and_unknown_fields_survive(w in workload()) {
        let (v, empty) = (values(), Annotations::new());
        let req = request(&v, &empty);
        let Ok(injected) = cli_inject(&w, &req) else { return Ok(()) };
        let text = serde_json::to_string(&injected).unwrap();
        prop_assert!(text.contains("\"podFutureField\":\"kept\""));
        if serde_json::to_string(&w).unwrap().contains("futureField\":{") {
            let kept = text.contains(r#""futureField":{"keep":[1,"two",null]}"#);
            prop_assert!(kept, "a container's unknown field was lost");
        }
        let mut back = injected.clone();
        uninject(&mut back).unwrap();
        prop_assert_eq!(back, w);
    }
}

#[test]
fn generated_patches_apply_with_an_independent_implementation() {
    let (v, empty) = (values(), Annotations::new());
    let req = request(&v, &empty);
    let mut runner = TestRunner::deterministic();
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for _ in 0..200 {
        let w = workload().new_tree(&mut runner).unwrap().current();
        let mut doc = w.clone();
        uninject(&mut doc).unwrap();
        let Ok(out) = inject(&doc, &req) else {
            continue;
        };
        let mut applied = doc.clone();
        out.patch.apply(&mut applied).unwrap();
        batch.push(json!({"doc": doc, "patch": out.patch}));
        expected.push(applied);
    }
    assert!(batch.len() > 150, "most generated workloads inject");
    let patched = common::apply_patches_independently(&batch);
    assert_eq!(patched, expected);
}
