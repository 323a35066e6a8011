//! Detection of pods that escaped injection at scale (BENCHMARKS.md §8): the release webhook
//! against the local Kubernetes API stand-in (`tests/common/kube_api.rs`, not a real API
//! server) holding N pods (default 100,000) in 100 namespaces, half of which ask for
//! injection; 1 pod in 1,000 escaped injection, the others are meshed or in namespaces that
//! do not ask.
//!
//! It prints: the time from the webhook's start until its pod cache has listed every pod
//! (paginated, 500 a page) and until every escaped pod is reported; the webhook's RSS with
//! detection on beside the same webhook with detection off, on the same cluster; and the API
//! requests about pods made in one minute of steady state.
//!
//! `cargo run --release --example escaped_scale -- [N] [steady seconds]`

#[path = "../tests/common/kube_api.rs"]
mod kube_api;
#[path = "../tests/common/webhook.rs"]
mod webhook;

use std::time::{Duration, Instant};

use kube_api::{Kind, KubeApi};
use serde_json::{json, Value};

const VALUES: &str = "linkerdVersion: bench\n";

fn spec() -> Value {
    json!({"containers": [{"name": "app", "image": "ghcr.io/example/app:1.0",
                            "ports": [{"containerPort": 8080}]}],
           "serviceAccountName": "default"})
}

fn meshed_spec() -> Value {
    let mut s = spec();
    s["initContainers"] = json!([{"name": "linkerd-proxy", "image": "proxy"}]);
    s
}

async fn reported(wh: &webhook::Webhook) -> usize {
    let Ok(r) = reqwest::get(wh.admin("/uninjected")).await else {
        return 0;
    };
    let body: Value = r.json().await.unwrap_or_default();
    body["pods"].as_array().map_or(0, Vec::len)
}

fn pod_requests(api: &KubeApi) -> (u64, u64, u64) {
    (
        api.requests(Kind::Pod, "list"),
        api.requests(Kind::Pod, "watch"),
        api.requests(Kind::Pod, "get"),
    )
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let steady: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let api = KubeApi::start().await;
    for i in 0..100 {
        let annotations = if i % 2 == 0 {
            json!({"linkerd.io/inject": "enabled"})
        } else {
            json!({})
        };
        api.add_namespace(&format!("ns-{i}"), annotations);
    }
    let mut escaped = 0;
    for i in 0..n {
        let ns = format!("ns-{}", i % 100);
        let name = format!("app-{i}-7d9f8b6c5-x2x9q");
        let owner = Some(("ReplicaSet", "app-7d9f8b6c5"));
        let injectable = i % 2 == 0;
        if injectable && i % 1000 == 0 {
            escaped += 1;
            api.add_pod(&ns, &name, json!({}), spec(), owner, 3600);
        } else if injectable {
            let annotations = json!({"linkerd.io/proxy-version": "edge-26.8.3",
                                     "linkerd.io/created-by": "proxy-injector"});
            api.add_pod(&ns, &name, annotations, meshed_spec(), owner, 3600);
        } else {
            api.add_pod(&ns, &name, json!({}), spec(), owner, 3600);
        }
    }
    println!("{n} pods in 100 namespaces, {escaped} escaped injection\n");

    let start = Instant::now();
    let flags = ["--uninjected-confirmations-per-second=50"];
    let wh = webhook::Webhook::start(&api, VALUES, &flags).await;
    let ready = start.elapsed();
    let mut synced = None;
    while reported(&wh).await < escaped {
        if synced.is_none() && wh.log().contains("pod cache synced") {
            synced = Some(start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "not reported in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_reported = start.elapsed();
    let synced = synced.unwrap_or(all_reported);
    let pid = wh.child.id();
    let rss_on = webhook::proc_status_kib(pid, "VmRSS:");
    let peak_on = webhook::proc_status_kib(pid, "VmHWM:");

    let before = pod_requests(&api);
    tokio::time::sleep(Duration::from_secs(steady)).await;
    let after = pod_requests(&api);

    let off = webhook::Webhook::start(&api, VALUES, &["--detect-uninjected=false"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_off = webhook::proc_status_kib(off.child.id(), "VmRSS:");

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| webhook ready (namespaces, replicasets, jobs listed) | {:.2} s |",
        ready.as_secs_f64()
    );
    println!(
        "| pod cache synced ({n} pods listed, 500 a page) | {:.2} s |",
        synced.as_secs_f64()
    );
    println!(
        "| all {escaped} escaped pods reported (confirmations at 50/s) | {:.2} s |",
        all_reported.as_secs_f64()
    );
    println!(
        "| RSS, detection on | {:.1} MiB (peak {:.1} MiB) |",
        mib(rss_on),
        mib(peak_on)
    );
    println!(
        "| RSS, detection off, same cluster | {:.1} MiB |",
        mib(rss_off)
    );
    println!(
        "| pod requests in {steady} s of steady state (list, watch, get) | {}, {}, {} |",
        after.0 - before.0,
        after.1 - before.1,
        after.2 - before.2
    );
    println!(
        "| pod requests to reach it (list pages, watch, get) | {}, {}, {} |",
        before.0, before.1, before.2
    );
}
