//! The webhook end to end: the real binary over real TLS (HTTP/2 and HTTP/1.1) on loopback,
//! with namespaces, ReplicaSets and Jobs served by a local stand-in for the Kubernetes API
//! (`common/kube_api.rs`, not a real API server): the protocol, bad requests, the handler
//! carrying out verdicts (metrics, Events), the caches and the config. What the webhook
//! decides for each review is tested in-process, in `src/webhook/verdict/tests.rs`.

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
            body["response"]["patch"].is_string(),
            "the patch is base64 text, as Go's []byte"
        );
        assert!(
            body.get("request").is_none(),
            "the request is not echoed (docs/differences.md Q-33)"
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

async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_status_and_message() {
    let (_api, wh) = setup(VALUES).await;
    let post = |path: &str, content_type: &str, body: Vec<u8>| {
        let req = wh
            .client
            .post(format!("{}{path}", wh.url()))
            .header("content-type", content_type)
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let json = "application/json";
    let get = wh.client.get(wh.url()).send().await.unwrap();
    assert_eq!(get.status(), 405, "GET /");
    assert_eq!(
        post("other", json, b"{}".to_vec()).await.0,
        404,
        "POST /other"
    );
    assert_eq!(
        post("", "text/plain", b"{}".to_vec()).await,
        (415, "Content-Type must be application/json\n".into())
    );
    assert_eq!(
        post("", json, vec![]).await,
        (400, "empty body: expected an AdmissionReview\n".into())
    );
    let (s, m) = post("", json, b"{not json".to_vec()).await;
    assert_eq!(s, 400);
    assert!(
        m.starts_with("failed to decode admission review request: "),
        "{m}"
    );
    let no_request = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    assert_eq!(
        post("", json, no_request.to_string().into_bytes()).await,
        (400, "invalid admission review request: no request\n".into())
    );
    let mut no_uid = admission_review(
        "admission.k8s.io/v1",
        "",
        "shop",
        &pod("p", json!({}), &[]),
        false,
    );
    no_uid["request"]["uid"] = json!("");
    assert_eq!(
        post("", json, no_uid.to_string().into_bytes()).await,
        (
            400,
            "invalid admission review request: no request.uid\n".into()
        )
    );
    let big = vec![b' '; 6 * 1024 * 1024 + 1];
    assert_eq!(post("", json, big).await.0, 413, "a body over 6 MiB");
}

/// The handler carries out a skip verdict: the metric with its reason and the Event on the
/// owner. (Every skip reason, dry runs, Services and owners are decided in-process:
/// `src/webhook/verdict/tests.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_pod_is_counted_and_recorded() {
    let (api, wh) = setup(VALUES).await;
    api.add_replicaset("shop", "d-1", Some("d"));
    let p = owned_by(
        pod("d-1-x", json!({"linkerd.io/inject": "disabled"}), &[]),
        "ReplicaSet",
        "d-1",
    );
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "u1",
            "shop",
            &p,
            false,
        ))
        .await;
    assert_eq!(body["response"]["allowed"], json!(true));
    assert!(body["response"].get("patch").is_none(), "{body}");
    let metrics = wh.metrics().await;
    assert!(
        metrics.contains("skip=\"true\",skip_reason=\"injection_disable_annotation_present\""),
        "not counted:\n{metrics}"
    );
    wait_for("the event", || !api.events().is_empty()).await;
    let event = &api.events()[0];
    assert_eq!(event["reason"], json!("InjectionSkipped"));
    assert_eq!(event["regarding"]["name"], json!("d"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_annotations_are_inherited_and_follow_watch_events() {
    let (api, wh) = setup(VALUES).await;
    api.add_namespace(
        "tuned",
        json!({"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-log-level": "debug"}),
    );
    let log_level = |body: &Value| -> Option<String> {
        let patch = patch_of(body)?;
        let proxy = patch
            .as_array()?
            .iter()
            .find(|o| o["path"] == json!("/spec/initContainers/1"))?;
        let env = proxy["value"]["env"].as_array()?;
        env.iter()
            .find(|e| e["name"] == json!("LINKERD2_PROXY_LOG"))
            .map(|e| e["value"].as_str().unwrap().to_string())
    };
    let p = pod("t", json!({}), &[]);
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "n1",
            "tuned",
            &p,
            false,
        ))
        .await;
    assert_eq!(
        log_level(&body).as_deref(),
        Some("debug,[{headers}]=off,[{request}]=off")
    );
    let ps = paths(&patch_of(&body).unwrap());
    assert!(
        ps.contains(&"/metadata/annotations/config.linkerd.io~1proxy-log-level".to_string()),
        "inherited: {ps:?}"
    );
    // The namespace changes; the watch brings the new annotation.
    api.add_namespace(
        "tuned",
        json!({"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-log-level": "trace"}),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = wh
            .review(&admission_review(
                "admission.k8s.io/v1",
                "n2",
                "tuned",
                &p,
                false,
            ))
            .await;
        if log_level(&body).as_deref() == Some("trace,[{headers}]=off,[{request}]=off") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the namespace change never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Owner lookups read the cache, and make one direct GET for a ReplicaSet it has not seen.
/// (How owners resolve is decided in-process: `src/webhook/verdict/tests.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_lookups_use_the_cache_and_one_get_on_a_miss() {
    let (api, wh) = setup(VALUES).await;
    let label_ops = |body: &Value| -> Vec<String> {
        paths(&patch_of(body).unwrap())
            .into_iter()
            .filter(|p| p.starts_with("/metadata/labels/linkerd.io~1proxy-"))
            .collect()
    };
    // A Job the cache holds, owned by a CronJob: the Event goes to the CronJob.
    let p = owned_by(
        pod("report-29384-abc", json!({}), &[]),
        "Job",
        "report-29384",
    );
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "o1",
            "shop",
            &p,
            false,
        ))
        .await;
    assert!(label_ops(&body).is_empty(), "{:?}", label_ops(&body));
    wait_for("the cronjob event", || !api.events().is_empty()).await;
    assert_eq!(api.events()[0]["regarding"]["kind"], json!("CronJob"));
    assert_eq!(api.events()[0]["regarding"]["name"], json!("report"));
    // A ReplicaSet the cache has not seen: one direct GET, then proxy-replicaset.
    let gets = api.gets();
    let p = owned_by(pod("orphan-1-x", json!({}), &[]), "ReplicaSet", "orphan-1");
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "o3",
            "shop",
            &p,
            false,
        ))
        .await;
    assert_eq!(
        label_ops(&body),
        ["/metadata/labels/linkerd.io~1proxy-replicaset"]
    );
    assert_eq!(api.gets(), gets + 1);
    // A cached ReplicaSet: no GET.
    let gets = api.gets();
    let p = owned_by(
        pod("web-7d9f8b6c5-y", json!({}), &[]),
        "ReplicaSet",
        "web-7d9f8b6c5",
    );
    wh.review(&admission_review(
        "admission.k8s.io/v1",
        "o4",
        "shop",
        &p,
        false,
    ))
    .await;
    assert_eq!(api.gets(), gets, "cached lookups make no request");
}

/// A pod's bad annotation is denied by the real handler; a values file that cannot render
/// is refused at load, and reviews go on with the last good config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pods_bad_annotation_is_denied_and_a_config_that_cannot_render_is_refused() {
    let (_api, wh) = setup(VALUES).await;
    let p = pod(
        "loud",
        json!({"config.linkerd.io/proxy-log-http-headers": "everything"}),
        &[],
    );
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "x1",
            "shop",
            &p,
            false,
        ))
        .await;
    assert_eq!(body["response"]["allowed"], json!(false));
    let msg = body["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("config.linkerd.io/proxy-log-http-headers"),
        "{msg}"
    );
    wh.write_values("linkerdVersion: test-version\nproxyInit:\n  iptablesMode: magic\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !wh.log().contains("iptablesMode") {
        assert!(Instant::now() < deadline, "the new config was never read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(wh.log().contains("cannot be rendered"), "{}", wh.log());
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "x2",
            "shop",
            &pod("ok", json!({}), &[]),
            false,
        ))
        .await;
    assert_eq!(body["response"]["allowed"], json!(true));
    assert!(patch_of(&body).is_some(), "{body}");
}
