//! The webhook end to end: the real binary over real TLS (HTTP/2 and HTTP/1.1) on loopback,
//! with namespaces, ReplicaSets and Jobs served by a local stand-in for the Kubernetes API
//! (`common/kube_api.rs`, not a real API server).

mod common;

use std::time::{Duration, Instant};

use common::kube_api::KubeApi;
use common::webhook::{admission_review, patch_of, Webhook};
use serde_json::{json, Value};

const VALUES: &str = "linkerdVersion: test-version\n";

fn pod(name: &str, annotations: Value, ports: &[i64]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"containerPort": p, "protocol": "TCP"}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations, "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": "example/app:1", "ports": ports,
                                 "volumeMounts": [{"name": "kube-api-access-x", "readOnly": true,
                                                   "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
                 "serviceAccountName": "default"}
    })
}

fn owned_by(mut pod: Value, kind: &str, name: &str) -> Value {
    let api = if kind == "Job" { "batch/v1" } else { "apps/v1" };
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": api, "kind": kind, "name": name,
        "uid": common::kube_api::uid_for(name), "controller": true, "blockOwnerDeletion": true}]);
    pod
}

async fn setup(values: &str) -> (KubeApi, Webhook) {
    let api = KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    api.add_namespace("plain", json!({}));
    api.add_replicaset("shop", "web-7d9f8b6c5", Some("web"));
    api.add_job("shop", "report-29384", Some("report"));
    let wh = Webhook::start(&api, values, &[]).await;
    (api, wh)
}

fn paths(patch: &Value) -> Vec<String> {
    patch
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injects_over_h2_and_http1_and_echoes_the_review_version() {
    let (api, wh) = setup(VALUES).await;
    let p = owned_by(
        pod("web-7d9f8b6c5-x2x4z", json!({}), &[8080]),
        "ReplicaSet",
        "web-7d9f8b6c5",
    );
    for (client, version) in [
        (&wh.client, "admission.k8s.io/v1"),
        (&wh.http1, "admission.k8s.io/v1beta1"),
    ] {
        let (status, body) = wh
            .send(
                client,
                &admission_review(version, "uid-1", "shop", &p, false),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["apiVersion"], json!(version));
        assert_eq!(body["kind"], json!("AdmissionReview"));
        assert_eq!(body["response"]["uid"], json!("uid-1"));
        assert_eq!(body["response"]["allowed"], json!(true));
        assert_eq!(body["response"]["patchType"], json!("JSONPatch"));
        assert!(
            body.get("request").is_none(),
            "the request is not echoed (Q-33)"
        );
        let patch = patch_of(&body).expect("a patch");
        let ps = paths(&patch);
        assert!(
            ps.contains(&"/metadata/labels/linkerd.io~1proxy-deployment".to_string()),
            "{ps:?}"
        );
        assert!(ps.contains(&"/spec/initContainers/1".to_string()));
        assert!(ps.contains(&"/metadata/annotations/linkerd.io~1created-by".to_string()));
    }
    // Events are recorded on the Deployment (in the background).
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.events().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ev = &api.events()[0];
    assert_eq!(ev["reason"], json!("Injected"));
    assert_eq!(ev["note"], json!("Linkerd sidecar proxy injected"));
    assert_eq!(ev["regarding"]["kind"], json!("Deployment"));
    assert_eq!(ev["regarding"]["name"], json!("web"));
    let metrics = wh.metrics().await;
    assert!(
        metrics.contains(r#"proxy_inject_admission_requests_total{owner_kind="deployment",namespace="shop",annotation_at="namespace"} 2"#),
        "{metrics}"
    );
}
