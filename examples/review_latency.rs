//! Measures the webhook: the latency of one review over TLS + HTTP/2 on a warm connection,
//! and the process's RSS at idle and after the run. Not a test — numbers, not assertions.
//!
//! `cargo build --release && cargo run --release --example review_latency -- [REVIEWS]`
//! (default 2000). The webhook is the release binary (`target/release/proxy-injector`), its namespaces come from the local Kubernetes API stand-in of the test
//! suite (`tests/common/kube_api.rs`, not a real API server), client and server share this
//! machine's cores.

#[path = "../tests/common/kube_api.rs"]
mod kube_api;
#[path = "../tests/common/webhook.rs"]
mod webhook;

use std::time::{Duration, Instant};

use serde_json::json;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let api = kube_api::KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    api.add_replicaset("shop", "web-7d9f8b6c5", Some("web"));
    let wh = webhook::Webhook::start(&api, "{}\n", &["--log-level", "warn"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(wh.child.id());
    // A realistic pod: two containers, probes, env, ports (about 5 KB as a review).
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-7d9f8b6c5-", "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8b6c5",
                                          "uid": kube_api::uid_for("web-7d9f8b6c5"), "controller": true, "blockOwnerDeletion": true}]},
        "spec": {
            "serviceAccountName": "web",
            "containers": [
                {"name": "web", "image": "ghcr.io/example/web:1.4.2", "imagePullPolicy": "IfNotPresent",
                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                 "env": (0..12).map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}")})).collect::<Vec<_>>(),
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
                 "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}, "periodSeconds": 10},
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "volumeMounts": [{"name": "kube-api-access-abcde", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]},
                {"name": "metrics", "image": "ghcr.io/example/exporter:0.9.0",
                 "ports": [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}],
                 "volumeMounts": [{"name": "kube-api-access-abcde", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}
            ],
            "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst"
        }
    });
    let review =
        webhook::admission_review("admission.k8s.io/v1", "uid", "shop", &pod, false).to_string();
    println!("review size: {} bytes", review.len());
    let send = || {
        wh.client
            .post(wh.url())
            .header("content-type", "application/json")
            .body(review.clone())
            .send()
    };
    for _ in 0..200 {
        send().await.unwrap().bytes().await.unwrap();
    }
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let r = send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!("{n} sequential reviews over one TLS 1.3 + HTTP/2 connection in {total:?}");
    println!(
        "latency p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        lat[lat.len() - 1]
    );
    println!(
        "RSS: idle {} KiB, after the run {} KiB",
        idle,
        rss_kib(wh.child.id())
    );
}
