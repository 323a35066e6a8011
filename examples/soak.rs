//! Soak: steady review load on two webhook instances while the serving certificate of both
//! is rotated every 10 s and, once a minute, one instance gets a SIGTERM and is restarted
//! while the other carries the load. Not a test (about ten minutes); prints its figures.
//!
//! The "Service" is this program: it sends each review to one of the instances its endpoint
//! poller (the `/ready` probe, every 100 ms, as kubelet + endpoints controller would) lists
//! as ready. The instances run with `--shutdown-delay 2s` as the chart runs them, so after the
//! SIGTERM an instance reports not-ready and keeps serving until it has left the endpoints.
//! Namespaces and owners come from the Kubernetes API stand-in of the test suite
//! (`tests/common/kube_api.rs`), not a real API server.
//!
//! `cargo build --release && cargo run --release --example soak -- [MINUTES] [RATE]`
//! (defaults: 10 minutes, 200 reviews/s)

#[path = "../tests/common/kube_api.rs"]
mod kube_api;
#[path = "../tests/common/webhook.rs"]
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use webhook::Webhook;

/// An instance as the load sees it: its URL, a client trusting its CA, and readiness.
#[derive(Clone)]
struct Endpoint {
    url: String,
    client: reqwest::Client,
}

const FLAGS: &[&str] = &[
    "--shutdown-delay",
    "2s",
    "--log-level",
    "info,proxy_injector::webhook::admission=warn",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let minutes: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let api = kube_api::KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    api.add_replicaset("shop", "web-7d9f8b6c5", Some("web"));
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-7d9f8b6c5-", "namespace": "shop", "labels": {"app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8b6c5",
                                          "uid": kube_api::uid_for("web-7d9f8b6c5"), "controller": true}]},
        "spec": {"containers": [
            {"name": "web", "image": "ghcr.io/example/web:1.4.2", "ports": [{"containerPort": 8080}],
             "env": [{"name": "LOG_LEVEL", "value": "info"}]},
            {"name": "metrics", "image": "ghcr.io/example/exporter:0.9.0", "ports": [{"containerPort": 9100}]}]}
    });
    let review =
        webhook::admission_review("admission.k8s.io/v1", "5a0e", "shop", &pod, false).to_string();

    // Two instances; `slots[i]` is instance i's current process.
    let slots: Vec<Arc<Mutex<Option<Webhook>>>> = vec![
        Arc::new(Mutex::new(Some(Webhook::start(&api, "{}\n", FLAGS).await))),
        Arc::new(Mutex::new(Some(Webhook::start(&api, "{}\n", FLAGS).await))),
    ];
    // The endpoints: instances whose /ready answered 200 at the last poll.
    let ready: Arc<Mutex<Vec<Option<Endpoint>>>> = Arc::new(Mutex::new(vec![None, None]));
    {
        let (slots, ready) = (slots.clone(), ready.clone());
        tokio::spawn(async move {
            let probe = reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()
                .expect("probe client");
            loop {
                for (i, slot) in slots.iter().enumerate() {
                    let target = slot.lock().unwrap().as_ref().map(|w| {
                        (
                            w.admin("/ready"),
                            Endpoint {
                                url: w.url(),
                                client: w.client.clone(),
                            },
                        )
                    });
                    let up = match target {
                        Some((admin, ep)) => match probe.get(admin).send().await {
                            Ok(r) if r.status() == 200 => Some(ep),
                            _ => None,
                        },
                        None => None,
                    };
                    ready.lock().unwrap()[i] = up;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (ok, failed, no_endpoint) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let end = Instant::now() + Duration::from_secs(minutes * 60);
    let load = {
        let (ready, ok, failed, no_endpoint, latencies) = (
            ready.clone(),
            ok.clone(),
            failed.clone(),
            no_endpoint.clone(),
            latencies.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            let mut n = 0usize;
            let mut tasks = tokio::task::JoinSet::new();
            while Instant::now() < end {
                tick.tick().await;
                while tasks.try_join_next().is_some() {}
                n += 1;
                let eps: Vec<Endpoint> = ready.lock().unwrap().iter().flatten().cloned().collect();
                let Some(ep) = eps.get(n % eps.len().max(1)).cloned() else {
                    no_endpoint.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let (review, ok, failed, latencies) = (
                    review.clone(),
                    ok.clone(),
                    failed.clone(),
                    latencies.clone(),
                );
                tasks.spawn(async move {
                    let t = Instant::now();
                    let r = ep
                        .client
                        .post(&ep.url)
                        .header("content-type", "application/json")
                        .body(review)
                        .send()
                        .await;
                    let good = match r {
                        Ok(r) if r.status() == 200 => r
                            .bytes()
                            .await
                            .is_ok_and(|b| b.windows(7).any(|w| w == b"\"patch\"")),
                        Ok(r) => {
                            eprintln!("review answered {}", r.status());
                            false
                        }
                        Err(e) => {
                            eprintln!("review failed: {e}");
                            false
                        }
                    };
                    if good {
                        ok.fetch_add(1, Ordering::Relaxed);
                        latencies
                            .lock()
                            .unwrap()
                            .push(t.elapsed().as_micros() as u32);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        })
    };

    let started = Instant::now();
    let (mut rotations, mut restarts, mut clean_exits) = (0u32, 0u32, 0u32);
    let mut rss_samples = Vec::new();
    let mut next_restart = Instant::now() + Duration::from_secs(60);
    while Instant::now() + Duration::from_secs(10) < end {
        tokio::time::sleep(Duration::from_secs(10)).await;
        for slot in &slots {
            if let Some(w) = slot.lock().unwrap().as_ref() {
                let (cert, key) = w.pki.serving(&format!("serving-rotated-{rotations}"));
                w.write_cert(&cert, &key);
            }
        }
        rotations += 1;
        // Instance 1 lives through the whole soak: its memory is the one to watch.
        if let Some(w) = slots[1].lock().unwrap().as_ref() {
            rss_samples.push((
                started.elapsed().as_secs(),
                webhook::proc_status_kib(w.child.id(), "VmRSS:"),
            ));
        }
        if Instant::now() >= next_restart {
            next_restart += Duration::from_secs(60);
            let mut old = slots[0].lock().unwrap().take().expect("instance 0 runs");
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &old.child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(sent, "kill -TERM failed");
            let deadline = Instant::now() + Duration::from_secs(30);
            let code = loop {
                if let Ok(Some(status)) = old.child.try_wait() {
                    break status.code();
                }
                if Instant::now() > deadline {
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            if code == Some(0) {
                clean_exits += 1;
            } else {
                eprintln!("instance 0 exit: {code:?}\n{}", old.log());
            }
            drop(old);
            let fresh = Webhook::start(&api, "{}\n", FLAGS).await;
            *slots[0].lock().unwrap() = Some(fresh);
            restarts += 1;
        }
    }
    let _ = load.await;
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!("soak: {minutes} min at {rate} reviews/s over two instances");
    println!(
        "reviews ok {}, failed {}, not sent for lack of a ready endpoint {}",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        no_endpoint.load(Ordering::Relaxed)
    );
    println!("certificate rotations {rotations} (both instances), SIGTERM + restarts {restarts}, clean exits (code 0) {clean_exits}");
    println!(
        "latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    let rss: Vec<String> = rss_samples
        .iter()
        .map(|(s, k)| format!("{s}s:{:.1}MB", *k as f64 / 1024.0))
        .collect();
    println!(
        "RSS of the instance that lived throughout: {}",
        rss.join(" ")
    );
}
