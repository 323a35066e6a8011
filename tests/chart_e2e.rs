//! The chart's TLS, end to end: the serving certificate and key that the chart generates
//! (rendered by the real Helm engine, `tests/chart/render_tls.py`) are served by the real
//! `proxy-injector webhook`; a client that trusts only the MutatingWebhookConfiguration's
//! caBundle and connects with the SNI `<service>.<namespace>.svc`, as the apiserver does,
//! gets a correct patch. Namespaces come from the local Kubernetes API stand-in.

mod common;

use std::process::Command;

use common::kube_api::KubeApi;
use common::webhook::{admission_review, patch_of, Pki, Webhook, TRUST_ANCHORS};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_certificate_serves_reviews_to_a_client_trusting_its_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let script = common::fixtures().join("../chart/render_tls.py");
    let status = Command::new("python3")
        .arg(script)
        .arg(dir.path())
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "rendering the chart failed (install tests/requirements.txt)"
    );
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let service: Value = serde_json::from_str(&read("service.json")).unwrap();
    let dns = service["dns"].as_str().unwrap().to_string();
    assert_eq!(dns, "proxy-injector.linkerd.svc");

    let api = KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    let ca = read("ca.pem");
    let wh = Webhook::start_with_pair(
        &api,
        "{}\n",
        TRUST_ANCHORS,
        (&read("tls.crt"), &read("tls.key")),
        &ca,
        Pki::new(),
        &[],
    )
    .await;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .resolve(&dns, std::net::SocketAddr::from(([127, 0, 0, 1], wh.port)))
        .build()
        .unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                     "spec": {"containers": [{"name": "web", "image": "example/web:1"}]}});
    let review = admission_review("admission.k8s.io/v1", "e2e", "shop", &pod, false);
    let url = format!(
        "https://{dns}:{}{}",
        wh.port,
        service["path"].as_str().unwrap()
    );
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(review.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["response"]["allowed"], json!(true));
    let patch = patch_of(&body).expect("a patch");
    let proxy = patch
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == json!("/spec/initContainers/1"))
        .expect("the proxy");
    assert_eq!(proxy["value"]["name"], json!("linkerd-proxy"));
    // A client that does not trust the chart's CA is refused.
    let stranger = Pki::new();
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(stranger.ca_pem.as_bytes()).unwrap()])
        .resolve(&dns, std::net::SocketAddr::from(([127, 0, 0, 1], wh.port)))
        .build()
        .unwrap();
    assert!(untrusting
        .post(format!("https://{dns}:{}/", wh.port))
        .send()
        .await
        .is_err());
}
