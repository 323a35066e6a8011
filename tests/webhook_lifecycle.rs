//! The webhook's life: certificate rotation under load, config reloads, readiness before the
//! caches sync, and SIGTERM with requests in flight. Real binary, real TLS, and the local
//! stand-in for the Kubernetes API (`common/kube_api.rs`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kube_api::KubeApi;
use common::webhook::{admission_review, patch_of, Pki, Webhook};
use serde_json::{json, Value};

fn pod(name: &str) -> Value {
    common::webhook::app_pod(name)
}

async fn api() -> KubeApi {
    common::webhook::api_with_shop().await
}

fn client_trusting(pems: &[&str], fresh_connections: bool) -> reqwest::Client {
    let certs: Vec<reqwest::Certificate> = pems
        .iter()
        .map(|p| reqwest::Certificate::from_pem(p.as_bytes()).unwrap())
        .collect();
    let mut b = reqwest::Client::builder()
        .tls_certs_only(certs)
        .timeout(Duration::from_secs(20));
    if fresh_connections {
        b = b.pool_max_idle_per_host(0);
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load_drops_nothing() {
    let api = api().await;
    let wh = Arc::new(Webhook::start(&api, "{}\n", &[]).await);
    let next_ca = Pki::new();
    let ca1 = wh.pki.ca_pem.clone();
    let both = client_trusting(&[&ca1, &next_ca.ca_pem], true);
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (wh, sent, failed, stop) = (wh.clone(), sent.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let review = admission_review(
                    "admission.k8s.io/v1",
                    &format!("r{i}"),
                    "shop",
                    &pod("p"),
                    false,
                );
                let (status, body) = wh.send(&both, &review).await;
                sent.fetch_add(1, Ordering::SeqCst);
                if status != 200 || patch_of(&body).is_none() {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A bad pair first: the old one stays in service.
    wh.write_cert("not a certificate", "not a key");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Then a real rotation, to a certificate from another CA.
    let (cert, key) = next_ca.serving("serving-2");
    wh.write_cert(&cert, &key);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    assert!(sent.load(Ordering::SeqCst) > 20, "the load loop ran");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no review failed during rotation; log:\n{}",
        wh.log()
    );
    // Only the new CA is needed now: the new certificate is served.
    let only_new = client_trusting(&[&next_ca.ca_pem], true);
    let (status, _) = wh
        .send(
            &only_new,
            &admission_review("admission.k8s.io/v1", "n", "shop", &pod("p"), false),
        )
        .await;
    assert_eq!(status, 200);
    let only_old = client_trusting(&[&ca1], true);
    assert!(
        only_old.post(wh.url()).send().await.is_err(),
        "the old certificate is no longer served"
    );
    let metrics = wh.metrics().await;
    assert!(
        metrics.contains(r#"proxy_injector_tls_reloads_total{result="failure"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"proxy_injector_tls_reloads_total{result="success"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("proxy_injector_tls_certificate_expiry_timestamp_seconds "),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_keeps_the_last_good_one_and_a_good_one_is_picked_up() {
    let api = api().await;
    let wh = Webhook::start(&api, "proxy:\n  logLevel: info\n", &[]).await;
    let log_level = |body: &Value| -> String {
        let patch = patch_of(body).unwrap();
        let proxy = patch
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["path"] == json!("/spec/initContainers/1"))
            .unwrap()
            .clone();
        let env = proxy["value"]["env"].as_array().unwrap().clone();
        env.iter()
            .find(|e| e["name"] == json!("LINKERD2_PROXY_LOG"))
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let review = || admission_review("admission.k8s.io/v1", "c", "shop", &pod("p"), false);
    assert!(log_level(&wh.review(&review()).await).starts_with("info,"));
    wh.write_values("proxy: [this is: not valid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wh
        .metrics()
        .await
        .contains(r#"proxy_injector_config_reloads_total{result="failure"} 1"#)
    {
        assert!(Instant::now() < deadline, "the bad file was never noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        log_level(&wh.review(&review()).await).starts_with("info,"),
        "last good config kept"
    );
    assert!(
        wh.log().contains("could not load the Linkerd config"),
        "the failure is logged"
    );
    wh.write_values("proxy:\n  logLevel: debug\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_level(&wh.review(&review()).await).starts_with("debug,") {
        assert!(
            Instant::now() < deadline,
            "the good file was never picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_and_500_until_the_caches_sync() {
    // A kubeconfig pointing at a port where nothing listens: the caches never sync.
    let dir = tempfile::tempdir().unwrap();
    let port = common::webhook::free_port();
    let api = api().await;
    let wh = {
        // Start against the stand-in to get the files, then restart pointing elsewhere.
        let w = Webhook::start(&api, "{}\n", &[]).await;
        let kubeconfig = api
            .kubeconfig()
            .replace(&api.addr.to_string(), &format!("127.0.0.1:{port}"));
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();
        w
    };
    let log = dir.path().join("webhook.log");
    let mut child = std::process::Command::new(common::webhook::binary())
        .arg("webhook")
        .args([
            "--addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .arg("--tls-cert")
        .arg(wh.dir.path().join("tls/tls.crt"))
        .arg("--tls-key")
        .arg(wh.dir.path().join("tls/tls.key"))
        .arg("--config-dir")
        .arg(wh.config_dir())
        .arg("--kubeconfig")
        .arg(dir.path().join("kubeconfig"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let (p, a) = common::webhook::serving_ports(&mut child, &log).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        match reqwest::get(format!("http://127.0.0.1:{a}/ready")).await {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("admin server never came up: {e}"),
        }
    };
    assert_eq!(ready.status(), 500);
    assert_eq!(
        ready.text().await.unwrap(),
        "not ready: caches not synced\n"
    );
    let url = format!("https://localhost:{p}/");
    let started = Instant::now();
    let r = wh
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(admission_review("admission.k8s.io/v1", "u", "shop", &pod("p"), false).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500, "failurePolicy decides");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered quickly"
    );
    assert!(r.text().await.unwrap().contains("caches have not synced"));
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_and_exits_zero() {
    let api = api().await;
    // 30 reviews of 1 MB at once, on one HTTP/2 connection (at most 32 streams): room to
    // buffer them all (tests/webhook_abuse.rs covers what happens without it).
    let flags = [
        "--shutdown-grace-period",
        "20s",
        "--max-inflight-bytes",
        "64Mi",
    ];
    let mut wh = Webhook::start(&api, "{}\n", &flags).await;
    // Heavy pods (about 1 MB each) keep the server busy long enough to be caught mid-flight.
    let mut heavy = pod("heavy");
    let env: Vec<Value> = (0..20_000)
        .map(|i| json!({"name": format!("V{i}"), "value": "x".repeat(32)}))
        .collect();
    heavy["spec"]["containers"][0]["env"] = Value::Array(env);
    let review = admission_review("admission.k8s.io/v1", "h", "shop", &heavy, false);
    let client = wh.client.clone();
    let url = wh.url();
    let body = review.to_string();
    let mut tasks = Vec::new();
    let (first_tx, mut first_rx) = tokio::sync::mpsc::channel::<()>(64);
    for _ in 0..30 {
        let (client, url, body, first) =
            (client.clone(), url.clone(), body.clone(), first_tx.clone());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let status = r.status().as_u16();
            let text = r.text().await?;
            let _ = first.send(()).await;
            Ok::<_, reqwest::Error>((status, text))
        }));
    }
    // As soon as one review has been answered, the others are queued or being worked on.
    first_rx.recv().await.expect("a first answer");
    let pid = wh.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    for t in tasks {
        let (status, text) = t.await.unwrap().expect("no request dropped");
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(patch_of(&body).is_some());
    }
    let deadline = Instant::now() + Duration::from_secs(25);
    let status = loop {
        if let Some(s) = wh.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "did not exit; log:\n{}",
            wh.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "log:\n{}", wh.log());
    // The signal really arrived while reviews were in flight: some finished after it.
    let log = wh.log();
    let after = log
        .split("shutting down")
        .nth(1)
        .expect("the shutdown is logged");
    assert!(
        after.contains("\"decision\":\"injected\""),
        "no review finished after SIGTERM; log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_13_only_unless_12_is_allowed() {
    let api = api().await;
    let tls12_client = |pem: &str| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
            .tls_version_max(reqwest::tls::Version::TLS_1_2)
            .build()
            .unwrap()
    };
    let strict = Webhook::start(&api, "{}\n", &[]).await;
    let review = admission_review("admission.k8s.io/v1", "t", "shop", &pod("p"), false).to_string();
    let old = tls12_client(&strict.pki.ca_pem);
    let refused = old
        .post(strict.url())
        .header("content-type", "application/json")
        .body(review.clone())
        .send()
        .await;
    assert!(refused.is_err(), "a TLS 1.2 client is refused by default");
    let lenient = Webhook::start(&api, "{}\n", &["--allow-tls12"]).await;
    let old = tls12_client(&lenient.pki.ca_pem);
    let ok = old
        .post(lenient.url())
        .header("content-type", "application/json")
        .body(review)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "--allow-tls12 accepts it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    let api = api().await;
    let wh = Webhook::start(&api, "{}\n", &["--idle-timeout", "500ms"]).await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(wh.pki.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", wh.port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
        .await
        .expect("closed before 10s");
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "the server closed the idle connection"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the idle timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_past_its_deadline_is_a_500() {
    let api = api().await;
    let wh = Webhook::start(&api, "{}\n", &["--request-timeout", "1ms"]).await;
    let mut heavy = pod("heavy");
    let env: Vec<Value> = (0..30_000)
        .map(|i| json!({"name": format!("V{i}"), "value": "x".repeat(32)}))
        .collect();
    heavy["spec"]["containers"][0]["env"] = Value::Array(env);
    let (status, body) = wh
        .send(
            &wh.client,
            &admission_review("admission.k8s.io/v1", "d", "shop", &heavy, false),
        )
        .await;
    // The deadline covers the body's arrival too: 408 if it had not all arrived, 500 if it
    // passed while decoding or deciding.
    let text = body.as_str().unwrap();
    match status {
        408 => assert!(
            text.starts_with("the request body did not arrive within the review deadline of 1ms"),
            "{body}"
        ),
        500 => assert!(text.starts_with("review deadline of 1ms passed"), "{body}"),
        other => panic!("{other}: {body}"),
    }
}
