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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_skip_reason_is_answered_counted_and_recorded() {
    let (api, wh) =
        setup("linkerdVersion: test-version\nidentity:\n  serviceAccountTokenProjection: false\n")
            .await;
    api.add_namespace("bad-ns", json!({"linkerd.io/inject": "sometimes"}));
    api.add_replicaset("plain", "a-1", Some("a"));
    api.add_replicaset("shop", "b-1", Some("b"));
    api.add_replicaset("bad-ns", "c-1", Some("c"));
    api.add_replicaset("shop", "d-1", Some("d"));
    api.add_replicaset("shop", "e-1", Some("e"));
    api.add_replicaset("shop", "f-1", Some("f"));
    wait_for("replicasets cached", || true).await;
    let mut host = owned_by(
        pod("a-1-x", json!({"linkerd.io/inject": "enabled"}), &[]),
        "ReplicaSet",
        "a-1",
    );
    host["spec"]["hostNetwork"] = json!(true);
    let mut sidecar = owned_by(pod("b-1-x", json!({}), &[]), "ReplicaSet", "b-1");
    sidecar["spec"]["containers"][0]["name"] = json!("istio-proxy");
    let mut automount = owned_by(pod("f-1-x", json!({}), &[]), "ReplicaSet", "f-1");
    automount["spec"]["containers"][0]["volumeMounts"] = json!([]);
    let cases = [
        ("plain", host, "host_network_enabled", "hostNetwork is enabled"),
        ("shop", sidecar, "sidecar_already_exists", "pod has a sidecar injected already"),
        ("bad-ns", owned_by(pod("c-1-x", json!({}), &[]), "ReplicaSet", "c-1"), "invalid_inject_annotation_at_ns",
         "invalid value for annotation \"linkerd.io/inject\" at namespace"),
        ("shop", owned_by(pod("d-1-x", json!({"linkerd.io/inject": "disabled"}), &[]), "ReplicaSet", "d-1"),
         "injection_disable_annotation_present", "pod has the annotation \"linkerd.io/inject:disabled\""),
        ("shop", owned_by(pod("e-1-x", json!({"linkerd.io/inject": "yes"}), &[]), "ReplicaSet", "e-1"),
         "invalid_inject_annotation_at_workload", "invalid value for annotation \"linkerd.io/inject\" at workload"),
        ("shop", automount, "disabled_automount_service_account_token_account",
         "automountServiceAccountToken set to \"false\", with Values.identity.serviceAccountTokenProjection set to \"false\""),
        ("plain", pod("bare", json!({}), &[]), "injection_enable_annotation_absent",
         "neither the namespace nor the pod have the annotation \"linkerd.io/inject:enabled\""),
    ];
    for (i, (ns, p, code, _)) in cases.iter().enumerate() {
        let body = wh
            .review(&admission_review(
                "admission.k8s.io/v1",
                &format!("u{i}"),
                ns,
                p,
                false,
            ))
            .await;
        assert_eq!(body["response"]["allowed"], json!(true), "{code}");
        assert!(
            body["response"].get("patch").is_none(),
            "{code}: no patch: {body}"
        );
        let metrics = wh.metrics().await;
        assert!(
            metrics.contains(&format!("skip=\"true\",skip_reason=\"{code}\"")),
            "{code} not counted:\n{metrics}"
        );
    }
    // One InjectionSkipped event per owned pod (the bare pod has none, docs/differences.md Q-24).
    wait_for("six events", || api.events().len() >= 6).await;
    let notes: Vec<String> = api
        .events()
        .iter()
        .map(|e| e["note"].as_str().unwrap_or("").to_string())
        .collect();
    for (_, _, _, text) in &cases[..6] {
        let want = format!("Linkerd sidecar proxy injection skipped: {text}");
        assert!(
            notes.iter().any(|n| n == &want),
            "missing event {want:?} in {notes:?}"
        );
    }
    assert!(api
        .events()
        .iter()
        .all(|e| e["reason"] == json!("InjectionSkipped")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_gets_the_same_patch_and_no_event() {
    let (api, wh) = setup(VALUES).await;
    let p = owned_by(
        pod("web-7d9f8b6c5-dry", json!({}), &[8080]),
        "ReplicaSet",
        "web-7d9f8b6c5",
    );
    let dry = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "d1",
            "shop",
            &p,
            true,
        ))
        .await;
    let real = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "d2",
            "shop",
            &p,
            false,
        ))
        .await;
    let strip = |mut p: Value| {
        for op in p.as_array_mut().unwrap() {
            if op["path"] == json!("/metadata/annotations/linkerd.io~1created-by") {
                op["value"] = json!("");
            }
        }
        p
    };
    assert_eq!(
        strip(patch_of(&dry).unwrap()),
        strip(patch_of(&real).unwrap())
    );
    wait_for("the real review's event", || !api.events().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        api.events().len(),
        1,
        "only the non-dry-run review records an event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_skipped_pods_get_the_opaque_ports_annotation() {
    let (_api, wh) = setup(VALUES).await;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"ports": [{"port": 9090, "targetPort": 3306}, {"port": 5432, "targetPort": 9091},
                           {"port": 3306}, {"port": 9093, "targetPort": "named"}]}});
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "s1",
            "plain",
            &svc,
            false,
        ))
        .await;
    assert_eq!(
        patch_of(&body).unwrap(),
        json!([{"op": "add", "path": "/metadata/annotations", "value": {}},
               {"op": "add", "path": "/metadata/annotations/config.linkerd.io~1opaque-ports", "value": "9090,3306"}])
    );
    let mut p = pod("cache", json!({"a": "b"}), &[3306]);
    p["spec"]["initContainers"] =
        json!([{"name": "init", "image": "x", "ports": [{"containerPort": 11211}]}]);
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "s2",
            "plain",
            &p,
            false,
        ))
        .await;
    assert_eq!(
        patch_of(&body).unwrap(),
        json!([{"op": "add", "path": "/metadata/annotations/config.linkerd.io~1opaque-ports", "value": "11211,3306"}])
    );
    // Other kinds and operations pass with no patch.
    let cm =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "s3",
            "plain",
            &cm,
            false,
        ))
        .await;
    assert_eq!(body["response"]["allowed"], json!(true));
    assert!(body["response"].get("patch").is_none());
    let mut update = admission_review(
        "admission.k8s.io/v1",
        "s4",
        "shop",
        &pod("p", json!({}), &[]),
        false,
    );
    update["request"]["operation"] = json!("UPDATE");
    let body = wh.review(&update).await;
    assert!(body["response"].get("patch").is_none());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_resolve_like_linkerd() {
    let (api, wh) = setup(VALUES).await;
    let label_ops = |body: &Value| -> Vec<String> {
        paths(&patch_of(body).unwrap())
            .into_iter()
            .filter(|p| p.starts_with("/metadata/labels/linkerd.io~1proxy-"))
            .collect()
    };
    // Job owned by a CronJob: no owner label (docs/differences.md Q-23), events on the CronJob.
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
    // A StatefulSet pod: labelled by its direct owner.
    let p = owned_by(pod("db-0", json!({}), &[]), "StatefulSet", "db");
    let body = wh
        .review(&admission_review(
            "admission.k8s.io/v1",
            "o2",
            "shop",
            &p,
            false,
        ))
        .await;
    assert_eq!(
        label_ops(&body),
        ["/metadata/labels/linkerd.io~1proxy-statefulset"]
    );
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
    // A values file with an unsupported iptables mode cannot render: it is refused at load,
    // and reviews go on with the last good config.
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
