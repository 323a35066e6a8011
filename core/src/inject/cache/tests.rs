//! Rendering once per config gives what rendering afresh gives, for pods that differ in every
//! way a rendering depends on; and it does render once.

use serde_json::{json, Value};
use std::sync::Arc;

use super::super::{inject, Request};
use super::*;
use crate::config;

fn values(version: &str, extra: &str) -> Values {
    let text = format!("identityTrustAnchorsPEM: anchors\nlinkerdVersion: {version}\n{extra}");
    config::load([("values.yaml", text.as_str())]).expect("test values")
}

fn pod(name: &str, mut annotations: Value, first: Value) -> Value {
    annotations["linkerd.io/inject"] = json!("enabled");
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations,
                     "labels": {"app.kubernetes.io/name": name}},
        "spec": {"containers": [first, {"name": "side", "image": "s"}]}
    })
}

/// Pods that differ in each input of a rendering: ports (named, too), capabilities, the
/// service-account mount, override annotations (one bad), the debug sidecar, trace labels.
fn pods() -> Vec<Value> {
    let app = |port: i64| {
        json!({"name": "app", "image": "a",
        "ports": [{"name": "mysql", "containerPort": port}, {"containerPort": 8080}]})
    };
    let mut caps = app(3306);
    caps["securityContext"] = json!({"capabilities": {"add": ["NET_BIND"], "drop": ["ALL"]}});
    let mut mount = app(3306);
    mount["volumeMounts"] = json!([{"name": "tok",
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]);
    let opaque = json!({"config.linkerd.io/opaque-ports": "mysql"});
    vec![
        pod("a", json!({}), app(3306)),
        pod("b", json!({}), app(4000)),
        // c and d share a namespace (even index) and annotations, not their named port.
        pod("c", opaque.clone(), app(3306)),
        pod("e", opaque.clone(), app(3306)),
        pod("d", opaque, app(3307)),
        pod("f", json!({}), caps),
        pod("g", json!({}), mount),
        pod(
            "h",
            json!({"config.linkerd.io/proxy-cpu-request": "100m"}),
            app(1),
        ),
        pod(
            "i",
            json!({"config.linkerd.io/proxy-cpu-request": "bad"}),
            app(1),
        ),
        pod(
            "j",
            json!({"config.linkerd.io/enable-debug-sidecar": "true"}),
            app(1),
        ),
        pod("k", json!({"resource.opentelemetry.io/team": "x"}), app(1)),
        pod("a2", json!({}), app(3306)),
    ]
}

/// The patch's operations (checking first that its JSON text, written from the shared
/// renderings, is what serialising the operations gives) and the warnings.
fn outcome(obj: &Value, req: &Request<'_>) -> (Vec<json_patch::PatchOperation>, Vec<String>) {
    let out = inject(obj, req).expect("injects");
    let warnings = out.warnings.iter().map(ToString::to_string).collect();
    let ops = out.patch.operations();
    let serialised = serde_json::to_vec(&ops).expect("serialises");
    assert_eq!(
        String::from_utf8_lossy(&out.patch.to_json()),
        String::from_utf8_lossy(&serialised)
    );
    (ops, warnings)
}

#[test]
fn a_cached_rendering_is_a_fresh_one() {
    let ns = Annotations::from([(
        "config.linkerd.io/proxy-additional-env".to_string(),
        r#"[{"name": "NS", "value": "1"}]"#.to_string(),
    )]);
    let empty = Annotations::new();
    let tracing = "proxy:\n  tracing:\n    enabled: true\n    collector:\n      endpoint: c:1\n      meshIdentity: {serviceAccountName: c, namespace: t}\n";
    let cache = RenderCache::default();
    // Two rounds over the pods, under three configs in turn (the cache starts over for
    // each): the second round is answered from memory.
    for base in [values("v1", ""), values("v2", tracing), values("v1", "")].map(Arc::new) {
        for _ in 0..2 {
            for (i, obj) in pods().iter().enumerate() {
                let namespace = if i % 2 == 0 { &ns } else { &empty };
                let req = Request::webhook(&base, "linkerd", "t", "default", namespace, None);
                let fresh = outcome(obj, &req);
                let cached = outcome(obj, &req.clone().cached(&cache, &base));
                assert_eq!(cached, fresh, "pod {i}");
            }
        }
    }
    assert!(cache.counts().reused > 0);
}

#[test]
fn pods_of_one_config_render_once() {
    let base = Arc::new(values("v1", ""));
    let empty = Annotations::new();
    let cache = RenderCache::default();
    let app = |port: i64| json!({"name": "app", "image": "a", "ports": [{"containerPort": port}]});
    for i in 0..50 {
        let obj = pod(&format!("p{i}"), json!({}), app(1000 + i));
        let req =
            Request::webhook(&base, "linkerd", "t", "default", &empty, None).cached(&cache, &base);
        let (patch, _) = outcome(&obj, &req);
        let proxy = patch.last().expect("the proxy op");
        let json_patch::PatchOperation::Add(add) = proxy else {
            panic!("the proxy is added");
        };
        let ports = add.value["env"].as_array().and_then(|env| {
            env.iter()
                .find(|v| v["name"] == "LINKERD2_PROXY_INBOUND_PORTS")
        });
        assert_eq!(
            ports.map(|v| &v["value"]),
            Some(&json!((1000 + i).to_string()))
        );
    }
    assert_eq!(cache.counts().configs, 1);
    assert_eq!(cache.counts().renders, 1);
    let other = pod(
        "q",
        json!({"config.linkerd.io/proxy-cpu-request": "1"}),
        app(1),
    );
    let req =
        Request::webhook(&base, "linkerd", "t", "default", &empty, None).cached(&cache, &base);
    outcome(&other, &req);
    assert_eq!((cache.counts().configs, cache.counts().renders), (2, 2));
}

#[test]
fn the_memory_follows_the_values_not_their_address() {
    let empty = Annotations::new();
    let cache = RenderCache::default();
    let obj = pod("p", json!({}), json!({"name": "app", "image": "a"}));
    let run = |base: &Arc<Values>| {
        let req = Request::webhook(base, "linkerd", "t", "default", &empty, None);
        outcome(&obj, &req.cached(&cache, base));
        (cache.counts().configs, cache.counts().renders)
    };
    let first = Arc::new(values("v1", ""));
    assert_eq!(run(&first), (1, 1));
    assert_eq!(run(&first), (1, 1), "the same Arc");
    // The same config loaded again: equal Values in another Arc keep what was rendered.
    let reloaded = Arc::new(values("v1", ""));
    assert_eq!(run(&reloaded), (1, 1));
    assert_eq!(run(&first), (1, 1));
    // Other Values start over, whatever Arc they come in.
    let other = Arc::new(values("v2", ""));
    assert_eq!(run(&other), (2, 2));
    drop(first);
    assert_eq!(run(&Arc::new(values("v2", ""))), (2, 2));
    assert_eq!(run(&reloaded), (3, 3));
}
