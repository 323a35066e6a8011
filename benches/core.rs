//! Criterion benches of the pure core: `inject` (decide, render, build the patch) on a typical
//! pod and on a pod with 2,000 env vars, and the same followed by applying the patch, as the
//! CLI does; and the webhook's review path without the network (decode the AdmissionReview,
//! inject, encode the response). Run with `cargo bench --bench core`.

use criterion::{criterion_group, criterion_main, Criterion};
use proxy_injector::config::{self, overrides::Annotations};
use proxy_injector::inject::{inject, Mode, RenderCache, Request};
use serde_json::{json, Value};

fn typical_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-7d9f", "namespace": "shop", "labels": {"app": "web"},
                     "annotations": {"linkerd.io/inject": "enabled"}},
        "spec": {"containers": [
            {"name": "web", "image": "ghcr.io/example/web:1.0",
             "ports": [{"name": "http", "containerPort": 8080}],
             "env": [{"name": "PORT", "value": "8080"}, {"name": "LOG", "value": "info"}],
             "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
             "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}}},
            {"name": "metrics", "image": "ghcr.io/example/exporter:1.0",
             "ports": [{"name": "metrics", "containerPort": 9100}]}
        ]}
    })
}

fn env_heavy_pod() -> Value {
    let mut pod = typical_pod();
    let env: Vec<Value> = (0..2000)
        .map(|i| json!({"name": format!("VAR_{i}"), "value": format!("value-{i}")}))
        .collect();
    pod["spec"]["containers"][0]["env"] = Value::Array(env);
    pod
}

fn bench(c: &mut Criterion) {
    let mut values = config::load([]).expect("defaults");
    values.identity_trust_anchors_pem =
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into();
    let empty = Annotations::new();
    let req = Request::cli(&values, "linkerd", "bench", Mode::Full, &empty, &empty);
    // Rendered once per config, as the CLI and the webhook do (`inject/cache.rs`).
    let cache = RenderCache::default();
    let shared = std::sync::Arc::new(values.clone());
    let cached = req.clone().cached(&cache, &shared);
    for (name, pod) in [("typical", typical_pod()), ("2000-env", env_heavy_pod())] {
        c.bench_function(&format!("inject/{name}"), |b| {
            b.iter(|| inject(std::hint::black_box(&pod), &req).expect("injects"))
        });
        c.bench_function(&format!("inject-cached/{name}"), |b| {
            b.iter(|| inject(std::hint::black_box(&pod), &cached).expect("injects"))
        });
        c.bench_function(&format!("inject+apply/{name}"), |b| {
            b.iter(|| {
                let out = inject(&pod, &req).expect("injects");
                let mut doc = pod.clone();
                out.patch.apply(&mut doc).expect("applies");
                doc
            })
        });
    }
}

/// The webhook's work on one review, minus HTTP and TLS: the same functions `POST /` runs.
fn review(c: &mut Criterion) {
    use kube::core::admission::AdmissionResponse;
    use proxy_injector::webhook::admission::{
        decode_request, encode_review, object_value, with_patch,
    };
    let values = {
        let mut v = config::load([]).expect("defaults");
        v.identity_trust_anchors_pem =
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into();
        v
    };
    let mut pod = typical_pod();
    pod["metadata"]["annotations"] = json!({});
    let body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "7f0e", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "namespace": "shop", "operation": "CREATE",
                    "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                    "object": pod, "dryRun": false}
    }))
    .expect("a review");
    let ns: Annotations = [("linkerd.io/inject".to_string(), "enabled".to_string())].into();
    let req = Request::webhook(
        &values,
        "linkerd",
        "bench",
        "shop",
        &ns,
        Some(("deployment", "web")),
    );
    let cache = RenderCache::default();
    let shared = std::sync::Arc::new(values.clone());
    let cached = req.clone().cached(&cache, &shared);
    c.bench_function("review/decode", |b| {
        b.iter(|| decode_request(std::hint::black_box(&body)).expect("decodes"))
    });
    // Fresh, and rendered once per config as the webhook does (`inject/cache.rs`).
    for (name, req) in [("inject", &req), ("inject-cached", &cached)] {
        c.bench_function(&format!("review/decode+{name}+encode"), |b| {
            b.iter(|| {
                let d = decode_request(std::hint::black_box(&body)).expect("decodes");
                let obj = object_value(d.object.expect("an object"), "Pod");
                let out = inject(&obj, req).expect("injects");
                let resp = AdmissionResponse::from(&d.req);
                let resp = with_patch(resp, &out.patch).expect("a patch");
                encode_review(resp).expect("encodes")
            })
        });
    }
}

criterion_group!(benches, bench, review);
criterion_main!(benches);
