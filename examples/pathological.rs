//! Pathological pods on both paths: a review to the webhook (TLS 1.3 + HTTP/2, one warm
//! connection, client-side round trip) and `proxy-injector inject --manual` on the pod as a
//! YAML file (wall clock of the whole process: start, parse, inject, write), beside our YAML
//! reader and writer alone on the same file (`examples/yaml_floor.rs`). Median and max of
//! the runs. The webhook's namespaces come from the Kubernetes API stand-in of the test
//! suite (`tests/common/kube_api.rs`), not a real API server.
//!
//! `cargo build --release --examples && cargo run --release --example pathological -- [RUNS]`
//! (default 20)

#[path = "../tests/common/kube_api.rs"]
mod kube_api;
#[path = "../tests/common/webhook.rs"]
mod webhook;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn container(name: &str, env: usize, value_len: usize) -> Value {
    json!({
        "name": name, "image": format!("ghcr.io/example/{name}:1.0.0"),
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": (0..env).map(|i| json!({"name": format!("VAR_{i}"), "value": "v".repeat(value_len)})).collect::<Vec<_>>(),
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}
    })
}

fn pod(name: &str, containers: Vec<Value>, managed_fields: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}, "managedFields": managed_fields},
        "spec": {"containers": containers}
    })
}

/// `entries` managedFields entries, each naming every field of `fields` containers.
fn managed_fields(entries: usize, fields: usize) -> Value {
    let mut f = serde_json::Map::new();
    for i in 0..fields {
        f.insert(
            format!("k:{{\"name\":\"c{i}\"}}"),
            json!({".": {}, "f:image": {}, "f:name": {}, "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}, "f:resources": {".": {}, "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}}}),
        );
    }
    Value::Array(
        (0..entries)
            .map(|i| json!({"manager": format!("controller-{i}"), "operation": "Update", "apiVersion": "v1",
                            "time": "2026-11-01T10:00:00Z", "fieldsType": "FieldsV1",
                            "fieldsV1": {"f:spec": {"f:containers": f.clone()}}}))
            .collect(),
    )
}

fn cases() -> Vec<(&'static str, Value)> {
    vec![
        (
            "2,000 env vars",
            pod("env", vec![container("app", 2000, 16)], json!([])),
        ),
        (
            "1.5 MB pod (20 containers × 500 env vars)",
            pod(
                "big",
                (0..20)
                    .map(|i| container(&format!("c{i}"), 500, 120))
                    .collect(),
                json!([]),
            ),
        ),
        (
            "100 containers",
            pod(
                "many",
                (0..100)
                    .map(|i| container(&format!("c{i}"), 5, 16))
                    .collect(),
                json!([]),
            ),
        ),
        (
            "large managedFields (100 managers × 50 containers)",
            pod("mf", vec![container("app", 5, 16)], managed_fields(100, 50)),
        ),
    ]
}

/// Our reader and writer alone on the same file (`examples/yaml_floor.rs`).
fn floor_bin() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/examples/yaml_floor")
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "{:.2} ms / {:.2} ms",
        v[v.len() / 2].as_secs_f64() * 1000.0,
        v[v.len() - 1].as_secs_f64() * 1000.0
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let api = kube_api::KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    let wh = webhook::Webhook::start(
        &api,
        "{}\n",
        &[
            "--log-level",
            "info,proxy_injector::webhook::admission=warn",
        ],
    )
    .await;
    let work = tempfile::tempdir().expect("a work directory");
    let values = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/examples/values.yaml");
    println!(
        "| pod | review size | webhook p50 / max | CLI `inject --manual` p50 / max | CLI floor (`yaml_floor`) p50 / max |"
    );
    println!("|---|---|---|---|---|");
    for (label, pod) in cases() {
        let review = webhook::admission_review("admission.k8s.io/v1", "9e1d", "shop", &pod, false)
            .to_string();
        let mut hook = Vec::new();
        for i in 0..=runs {
            let t = Instant::now();
            let r = wh
                .client
                .post(wh.url())
                .header("content-type", "application/json")
                .body(review.clone())
                .send()
                .await
                .expect("the review is answered");
            assert_eq!(r.status(), 200, "{label}");
            let body: Value = r.json().await.expect("a JSON review");
            if i > 0 {
                hook.push(t.elapsed());
            }
            assert!(
                webhook::patch_of(&body).is_some(),
                "{label}: the pod must be injected: {body}"
            );
        }
        let file = work.path().join("pod.yaml");
        std::fs::write(&file, serde_yaml::to_string(&pod).expect("YAML")).expect("pod file");
        let time = |cmd: &mut Command| {
            let mut took = Vec::new();
            for i in 0..=runs {
                let t = Instant::now();
                let status = cmd
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("the command runs");
                assert!(status.success(), "{label}: {cmd:?} failed");
                if i > 0 {
                    took.push(t.elapsed());
                }
            }
            took
        };
        let cli = time(
            Command::new(webhook::binary())
                .args(["inject", "--manual", "--values"])
                .arg(&values)
                .arg(&file),
        );
        let floor = time(Command::new(floor_bin()).arg(&file));
        println!(
            "| {label} | {:.0} KB | {} | {} | {} |",
            review.len() as f64 / 1024.0,
            stats(hook),
            stats(cli),
            stats(floor)
        );
    }
}
