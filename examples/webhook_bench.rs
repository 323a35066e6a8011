//! The webhook under load, beside its floor, with h2load (Debian `nghttp2-client`).
//!
//! Starts the Kubernetes API stand-in of the test suite (`tests/common/kube_api.rs`: a local
//! HTTP server speaking the list/watch protocol, not a real API server), the release webhook
//! on it (default log level, JSON logs to a file), and `examples/floor_server` (a minimal
//! axum + rustls server answering the webhook's own response bytes, same TLS settings).
//! Then, for each server, h2load over TLS 1.3 + HTTP/2 at fixed rates and at maximum
//! throughput, with percentiles from h2load's per-request log; and the webhook's RSS at idle,
//! its peak under load, and with 10,000 namespaces and 50,000 ReplicaSets in its caches.
//! Load generator and servers share this machine's cores. Prints Markdown.
//!
//! `cargo build --release --bin proxy-injector --examples && \
//!  cargo run --release --example webhook_bench -- [SECONDS_PER_RUN]` (default 10).
//! `WEBHOOK_BENCH_FLAGS` adds webhook flags; `WEBHOOK_BENCH_RATES` (default `100,1000,5000`)
//! sets the fixed rates, `WEBHOOK_BENCH_RATES=` none.

#[path = "../tests/common/kube_api.rs"]
mod kube_api;
#[path = "../tests/common/webhook.rs"]
mod webhook;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

/// A realistic pod review: two containers, probes, env, ports, resources, a projected
/// service-account token, owned by a ReplicaSet (about 5 KB).
fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-7d9f8b6c5-", "namespace": "shop",
                     "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "shop", "pod-template-hash": "7d9f8b6c5"},
                     "annotations": {"prometheus.io/scrape": "true", "kubectl.kubernetes.io/restartedAt": "2026-11-01T10:00:00Z"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8b6c5",
                                          "uid": kube_api::uid_for("web-7d9f8b6c5"), "controller": true, "blockOwnerDeletion": true}]},
        "spec": {
            "serviceAccountName": "web",
            "containers": [
                {"name": "web", "image": "ghcr.io/example/web:1.4.2", "imagePullPolicy": "IfNotPresent",
                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"name": "grpc", "containerPort": 9090, "protocol": "TCP"}],
                 "env": (0..24).map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}")})).collect::<Vec<_>>(),
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                 "livenessProbe": {"httpGet": {"path": "/live", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                 "volumeMounts": [{"name": "kube-api-access-abcde", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]},
                {"name": "metrics", "image": "ghcr.io/example/exporter:0.9.0", "imagePullPolicy": "IfNotPresent",
                 "args": ["--listen=:9100", "--target=http://localhost:8080/metrics"],
                 "ports": [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}],
                 "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                 "volumeMounts": [{"name": "kube-api-access-abcde", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}
            ],
            "volumes": [{"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler", "securityContext": {}, "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        }
    })
}

/// One h2load run's results.
struct Run {
    requests: usize,
    failed: usize,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Runs h2load; `rate` None is maximum throughput. Percentiles come from `--log-file`.
fn h2load(port: u16, body: &Path, seconds: u64, rate: Option<u32>, dir: &Path) -> Run {
    let log = dir.join("h2load.log");
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new("h2load");
    cmd.args(["-t", "1", "--warm-up-time", "1", "-D", &seconds.to_string()])
        .args(["-H", "content-type: application/json", "-d"])
        .arg(body)
        .arg("--log-file")
        .arg(&log);
    match rate {
        // Each client sends at most --rps requests per second, one at a time.
        Some(r) => {
            let clients = r.div_ceil(100).max(1);
            cmd.args(["-c", &clients.to_string(), "-m", "1"])
                .args(["--rps", &format!("{}", r as f64 / clients as f64)]);
        }
        None => {
            cmd.args(["-c", "8", "-m", "8"]);
        }
    }
    cmd.arg(format!("https://127.0.0.1:{port}/"));
    let out = cmd
        .output()
        .expect("h2load runs (apt install nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        panic!(
            "h2load failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // "finished in 10.00s, 998.30 req/s, 4.10MB/s"
    let rate = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let mut lat = Vec::new();
    let mut failed = 0;
    for line in std::io::BufReader::new(std::fs::File::open(&log).expect("h2load log")).lines() {
        let line = line.unwrap_or_default();
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            continue;
        }
        if cols[1] != "200" {
            failed += 1;
        }
        if let Ok(us) = cols[2].parse::<f64>() {
            lat.push(us / 1000.0);
        }
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Run {
        requests: lat.len(),
        failed,
        rate,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
    }
}

fn row(label: &str, server: &str, r: &Run) -> String {
    format!(
        "| {label} | {server} | {:.0} | {} | {} | {:.2} | {:.2} | {:.2} |",
        r.rate, r.requests, r.failed, r.p50_ms, r.p99_ms, r.max_ms
    )
}

fn example_bin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/release/examples")
        .join(name)
}

struct Floor(Child, u16);

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_floor(dir: &Path, response: &[u8]) -> Floor {
    let resp = dir.join("floor-response.json");
    std::fs::write(&resp, response).expect("writing the floor's response");
    let mut child = Command::new(example_bin("floor_server"))
        .arg(dir.join("tls/tls.crt"))
        .arg(dir.join("tls/tls.key"))
        .arg(&resp)
        .stdout(Stdio::piped())
        .spawn()
        .expect("floor_server starts (cargo build --release --examples)");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("floor stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("floor port line");
    let port = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .expect("floor prints its port");
    Floor(child, port)
}

async fn setup(api: &kube_api::KubeApi) -> (webhook::Webhook, String, Vec<u8>) {
    // Extra webhook flags, e.g. WEBHOOK_BENCH_FLAGS="--log-level warn".
    let flags = std::env::var("WEBHOOK_BENCH_FLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let wh = webhook::Webhook::start(api, "{}\n", &flags).await;
    let review =
        webhook::admission_review("admission.k8s.io/v1", "0f3c", "shop", &pod(), false).to_string();
    let resp = wh
        .client
        .post(wh.url())
        .header("content-type", "application/json")
        .body(review.clone())
        .send()
        .await
        .expect("a first review");
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.expect("the response").to_vec();
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert!(
        webhook::patch_of(&answer).is_some(),
        "the benchmark pod must be injected: {answer}"
    );
    (wh, review, bytes)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let api = kube_api::KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    api.add_replicaset("shop", "web-7d9f8b6c5", Some("web"));
    let (wh, review, response) = setup(&api).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = wh.child.id();
    let idle = webhook::proc_status_kib(pid, "VmRSS:");
    let dir = wh.dir.path().to_path_buf();
    let work = tempfile::tempdir().expect("a work directory");
    let body = work.path().join("review.json");
    std::fs::write(&body, &review).expect("writing the review");
    let floor = start_floor(&dir, &response);

    println!(
        "review {} bytes, response {} bytes; {seconds} s per run; h2load -t 1 on the same 2 cores\n",
        review.len(),
        response.len()
    );
    println!("| load | server | achieved req/s | requests | non-200 | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let rates: Vec<u32> = std::env::var("WEBHOOK_BENCH_RATES")
        .unwrap_or_else(|_| "100,1000,5000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    for rate in rates {
        for (name, port) in [("webhook", wh.port), ("floor", floor.1)] {
            let r = h2load(port, &body, seconds, Some(rate), &dir);
            println!("{}", row(&format!("{rate}/s"), name, &r));
        }
    }
    let w = h2load(wh.port, &body, seconds, None, &dir);
    let f = h2load(floor.1, &body, seconds, None, &dir);
    println!("{}", row("max (-c 8 -m 8)", "webhook", &w));
    println!("{}", row("max (-c 8 -m 8)", "floor", &f));
    println!("\nwebhook max throughput ÷ floor: {:.2}×", w.rate / f.rate);
    let peak = webhook::proc_status_kib(pid, "VmHWM:");
    let after = webhook::proc_status_kib(pid, "VmRSS:");
    drop(floor);
    drop(wh);

    // The same webhook with big caches: 10,000 namespaces and 50,000 ReplicaSets.
    let big = kube_api::KubeApi::start().await;
    big.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    big.add_replicaset("shop", "web-7d9f8b6c5", Some("web"));
    for i in 0..10_000 {
        big.add_namespace(
            &format!("team-{i}"),
            json!({"linkerd.io/inject": "enabled"}),
        );
    }
    for i in 0..50_000 {
        big.add_replicaset(
            &format!("team-{}", i % 10_000),
            &format!("svc-{i}-5d8f9c7b6"),
            Some(&format!("svc-{i}")),
        );
    }
    let (wh, _, _) = setup(&big).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = wh.child.id();
    let big_idle = webhook::proc_status_kib(pid, "VmRSS:");
    let r = h2load(wh.port, &body, seconds, Some(1000), work.path());
    let big_peak = webhook::proc_status_kib(pid, "VmHWM:");
    println!("\n| webhook RSS | value |\n|---|---|");
    println!("| idle (caches synced, config loaded) | {} |", mb(idle));
    println!("| peak over all the runs above | {} |", mb(peak));
    println!("| after the runs | {} |", mb(after));
    println!(
        "| idle with 10,000 namespaces + 50,000 ReplicaSets cached | {} |",
        mb(big_idle)
    );
    println!(
        "| peak with those caches, 1,000/s for {seconds} s | {} |",
        mb(big_peak)
    );
    println!(
        "\nWith those caches, 1,000/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} non-200 of {}.",
        r.p50_ms, r.p99_ms, r.max_ms, r.failed, r.requests
    );
}
