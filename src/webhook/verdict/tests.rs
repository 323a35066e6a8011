//! The webhook's review logic, in-process: reviews decided against a [`Lookup`] built on
//! kube-runtime's own reflector stores, filled by their writers as a watch would fill them.
//! The TLS, protocol, cache and lifecycle behaviour stays with the real binary
//! (`tests/webhook*.rs`).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::{json, Value};

use super::*;
use crate::config;
use crate::webhook::admission::decode_request;

/// Namespaces, ReplicaSets and Jobs in kube-runtime stores.
struct Stores {
    namespaces: Store<Namespace>,
    replicasets: Store<ReplicaSet>,
    jobs: Store<Job>,
    synced: bool,
}

impl Lookup for Stores {
    fn synced(&self) -> bool {
        self.synced
    }

    async fn namespace_annotations(&self, ns: &str) -> Result<Annotations, CacheError> {
        let found = self.namespaces.get(&ObjectRef::new(ns));
        let found = found.ok_or_else(|| CacheError::NamespaceNotFound(ns.to_string()))?;
        Ok(found.metadata.annotations.clone().unwrap_or_default())
    }

    async fn owner_metadata(
        &self,
        kind: OwnerKind,
        ns: &str,
        name: &str,
    ) -> Result<Option<ObjectMeta>, CacheError> {
        Ok(match kind {
            OwnerKind::ReplicaSet => self
                .replicasets
                .get(&ObjectRef::new(name).within(ns))
                .map(|o| o.metadata.clone()),
            OwnerKind::Job => self
                .jobs
                .get(&ObjectRef::new(name).within(ns))
                .map(|o| o.metadata.clone()),
        })
    }
}

fn store<K>(objects: Vec<Value>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
{
    let (reader, mut writer) = reflector::store::<K>();
    for o in objects {
        let object: K = serde_json::from_value(o).expect("a valid object");
        writer.apply_watcher_event(&watcher::Event::Apply(object));
    }
    reader
}

fn owner_ref(kind: &str, name: &str) -> Value {
    let api = if matches!(kind, "Job" | "CronJob") {
        "batch/v1"
    } else {
        "apps/v1"
    };
    json!([{"apiVersion": api, "kind": kind, "name": name, "uid": format!("uid-{name}"),
            "controller": true}])
}

/// The cluster of these tests: namespaces `shop` (enabled), `plain`, `bad-ns` (invalid) and
/// `tuned` (enabled, with overrides); the ReplicaSet `web-1` of Deployment `web`, the
/// ReplicaSet `roll-1` of an Argo Rollout, the Job `report-1` of CronJob `report`.
fn cluster() -> Stores {
    let ns = |name: &str, annotations: Value| json!({"metadata": {"name": name, "annotations": annotations}});
    let owned = |kind: &str, name: &str, ns: &str, owners: Value| {
        let api = if kind == "Job" { "batch/v1" } else { "apps/v1" };
        json!({"apiVersion": api, "kind": kind,
               "metadata": {"name": name, "namespace": ns, "ownerReferences": owners}})
    };
    Stores {
        namespaces: store(vec![
            ns("shop", json!({"linkerd.io/inject": "enabled"})),
            ns("plain", json!({})),
            ns("bad-ns", json!({"linkerd.io/inject": "sometimes"})),
            ns(
                "tuned",
                json!({"linkerd.io/inject": "enabled",
                       "config.linkerd.io/proxy-log-level": "debug",
                       "config.linkerd.io/proxy-cpu-ratio-limit": "0.5"}),
            ),
        ]),
        replicasets: store(vec![
            owned(
                "ReplicaSet",
                "web-1",
                "shop",
                owner_ref("Deployment", "web"),
            ),
            owned("ReplicaSet", "roll-1", "shop", owner_ref("Rollout", "roll")),
        ]),
        jobs: store(vec![owned(
            "Job",
            "report-1",
            "shop",
            owner_ref("CronJob", "report"),
        )]),
        synced: true,
    }
}

fn values(extra: &str) -> Arc<Values> {
    let text = format!("identityTrustAnchorsPEM: test-anchors\nlinkerdVersion: test\n{extra}");
    Arc::new(config::load([("values.yaml", text.as_str())]).expect("test values"))
}

fn context() -> Context {
    Context {
        control_plane_ns: "linkerd".into(),
        created_by: "proxy-injector/webhook test".into(),
        renders: Default::default(),
    }
}

fn pod(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "example/app:1",
                                 "ports": [{"containerPort": 8080}],
                                 "volumeMounts": [{"name": "kube-api-access", "readOnly": true,
                                                   "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}]}
    })
}

fn owned_by(mut pod: Value, kind: &str, name: &str) -> Value {
    pod["metadata"]["ownerReferences"] = owner_ref(kind, name);
    pod
}

fn review(ns: &str, object: &Value, operation: &str, dry_run: bool) -> Decoded {
    let kind = object["kind"].as_str().unwrap_or("Pod");
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": object["metadata"]["name"],
            "namespace": ns, "operation": operation,
            "userInfo": {"username": "test"},
            "object": object, "dryRun": dry_run,
        }
    });
    decode_request(body.to_string().as_bytes()).expect("a valid review")
}

/// [`prepare`] then [`judge`], on this thread, as the handler does for a small review.
async fn decide(decoded: Decoded, values: Arc<Values>, lookup: &Stores) -> Result<Verdict, Fault> {
    match prepare(decoded, Some(values), lookup).await? {
        Step::Decided(v) => Ok(*v),
        Step::Core(p) => judge(&p, &context()),
    }
}

async fn verdict_for(ns: &str, object: &Value) -> Verdict {
    decide(review(ns, object, "CREATE", false), values(""), &cluster())
        .await
        .unwrap_or_else(|f| panic!("a fault: {f}"))
}

fn patch(v: &Verdict) -> Vec<Value> {
    let bytes = v.response.patch.as_ref().expect("a patch");
    serde_json::from_slice(bytes).expect("a JSON patch")
}

fn paths(v: &Verdict) -> Vec<String> {
    patch(v)
        .iter()
        .map(|o| o["path"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn a_deployments_pod_is_injected_counted_and_recorded_on_the_deployment() {
    let v = verdict_for(
        "shop",
        &owned_by(pod("web-1-x", json!({})), "ReplicaSet", "web-1"),
    )
    .await;
    assert_eq!(v.outcome, "injected");
    assert!(v.response.allowed);
    let ps = paths(&v);
    assert!(ps.contains(&"/metadata/labels/linkerd.io~1proxy-deployment".to_string()));
    assert!(ps.contains(&"/spec/initContainers/1".to_string()));
    let req = v.request.expect("request labels");
    assert_eq!(
        (req.owner_kind.as_str(), req.annotation_at.as_str()),
        ("deployment", "namespace")
    );
    let resp = v.response_labels.expect("response labels");
    assert_eq!(
        (resp.skip.as_str(), resp.skip_reason.as_str()),
        ("false", "")
    );
    let (reference, event) = v.event.expect("an event");
    assert_eq!(reference.kind.as_deref(), Some("Deployment"));
    assert_eq!(reference.name.as_deref(), Some("web"));
    assert_eq!(event.reason, "Injected");
}

#[tokio::test]
async fn each_skip_reason_is_answered_counted_and_recorded() {
    let stores = cluster();
    let vals = values("identity:\n  serviceAccountTokenProjection: false\n");
    let web = |p: Value| owned_by(p, "ReplicaSet", "web-1");
    let mut host = web(pod("h", json!({"linkerd.io/inject": "enabled"})));
    host["spec"]["hostNetwork"] = json!(true);
    let mut sidecar = web(pod("s", json!({})));
    sidecar["spec"]["containers"][0]["name"] = json!("istio-proxy");
    let mut automount = web(pod("a", json!({})));
    automount["spec"]["containers"][0]["volumeMounts"] = json!([]);
    let cases = [
        ("plain", host, "host_network_enabled", "hostNetwork is enabled"),
        ("shop", sidecar, "sidecar_already_exists", "pod has a sidecar injected already"),
        ("bad-ns", web(pod("b", json!({}))), "invalid_inject_annotation_at_ns",
         "invalid value for annotation \"linkerd.io/inject\" at namespace"),
        ("shop", web(pod("d", json!({"linkerd.io/inject": "disabled"}))),
         "injection_disable_annotation_present", "pod has the annotation \"linkerd.io/inject:disabled\""),
        ("shop", web(pod("y", json!({"linkerd.io/inject": "yes"}))),
         "invalid_inject_annotation_at_workload", "invalid value for annotation \"linkerd.io/inject\" at workload"),
        ("shop", automount, "disabled_automount_service_account_token_account",
         "automountServiceAccountToken set to \"false\", with Values.identity.serviceAccountTokenProjection set to \"false\""),
        ("plain", web(pod("p", json!({}))), "injection_enable_annotation_absent",
         "neither the namespace nor the pod have the annotation \"linkerd.io/inject:enabled\""),
    ];
    for (ns, p, code, text) in cases {
        let v = decide(review(ns, &p, "CREATE", false), vals.clone(), &stores)
            .await
            .unwrap_or_else(|f| panic!("{code}: {f}"));
        assert_eq!(v.outcome, "skipped", "{code}");
        assert!(v.response.allowed && v.response.patch.is_none(), "{code}");
        let resp = v.response_labels.expect("response labels");
        assert_eq!(
            (resp.skip.as_str(), resp.skip_reason.as_str()),
            ("true", code)
        );
        let (_, event) = v.event.expect("an event");
        assert_eq!(event.reason, "InjectionSkipped");
        assert_eq!(
            event.note.as_deref(),
            Some(format!("Linkerd sidecar proxy injection skipped: {text}").as_str())
        );
    }
}

#[tokio::test]
async fn a_bare_pod_gets_no_event_and_a_dry_run_records_none() {
    let bare = verdict_for("shop", &pod("bare", json!({}))).await;
    assert_eq!(bare.outcome, "injected");
    assert!(bare.event.is_none(), "docs/differences.md Q-24");
    assert_eq!(bare.request.expect("labels").owner_kind, "pod");
    let p = owned_by(pod("web-1-x", json!({})), "ReplicaSet", "web-1");
    let stores = cluster();
    let dry = decide(review("shop", &p, "CREATE", true), values(""), &stores)
        .await
        .expect("a verdict");
    let real = decide(review("shop", &p, "CREATE", false), values(""), &stores)
        .await
        .expect("a verdict");
    assert!(dry.event.is_none() && real.event.is_some());
    assert_eq!(patch(&dry), patch(&real), "the same patch");
}

#[tokio::test]
async fn owners_resolve_like_linkerd() {
    let owner_labels = |v: &Verdict| -> Vec<String> {
        paths(v)
            .into_iter()
            .filter(|p| p.starts_with("/metadata/labels/linkerd.io~1proxy-"))
            .collect()
    };
    // A Job of a CronJob: no owner label (docs/differences.md Q-23), the Event on the CronJob.
    let v = verdict_for("shop", &owned_by(pod("r", json!({})), "Job", "report-1")).await;
    assert!(owner_labels(&v).is_empty(), "{:?}", owner_labels(&v));
    let (reference, _) = v.event.expect("an event");
    assert_eq!(
        (reference.kind.as_deref(), reference.name.as_deref()),
        (Some("CronJob"), Some("report"))
    );
    let cases = [
        ("StatefulSet", "db", "proxy-statefulset"),
        ("ReplicaSet", "roll-1", "proxy-replicaset"),
        ("ReplicaSet", "gone-1", "proxy-replicaset"),
        ("DaemonSet", "agent", "proxy-daemonset"),
    ];
    for (kind, name, label) in cases {
        let v = verdict_for("shop", &owned_by(pod("x", json!({})), kind, name)).await;
        assert_eq!(
            owner_labels(&v),
            [format!("/metadata/labels/linkerd.io~1{label}")],
            "{kind} {name}"
        );
    }
    // An owner kind upstream does not know: counted with an empty kind, no Event.
    let v = verdict_for("shop", &owned_by(pod("x", json!({})), "Widget", "w")).await;
    assert!(v.event.is_none());
    assert_eq!(v.request.expect("labels").owner_kind, "");
}

#[tokio::test]
async fn services_and_skipped_pods_get_the_opaque_ports_annotation() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"ports": [{"port": 9090, "targetPort": 3306}, {"port": 5432, "targetPort": 9091},
                           {"port": 3306}, {"port": 9093, "targetPort": "named"}]}});
    let v = verdict_for("plain", &svc).await;
    assert_eq!(v.outcome, "patched");
    assert!(v.response_labels.is_some() && v.event.is_none());
    assert_eq!(
        patch(&v),
        [
            json!({"op": "add", "path": "/metadata/annotations", "value": {}}),
            json!({"op": "add", "path": "/metadata/annotations/config.linkerd.io~1opaque-ports", "value": "9090,3306"})
        ]
    );
    let mut p = pod("cache", json!({"a": "b"}));
    p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 3306}]);
    p["spec"]["initContainers"] =
        json!([{"name": "init", "image": "x", "ports": [{"containerPort": 11211}]}]);
    let v = verdict_for("plain", &p).await;
    assert_eq!(v.outcome, "patched");
    assert_eq!(
        patch(&v),
        [
            json!({"op": "add", "path": "/metadata/annotations/config.linkerd.io~1opaque-ports", "value": "11211,3306"})
        ]
    );
}

#[tokio::test]
async fn other_kinds_and_operations_are_ignored() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let v = verdict_for("shop", &cm).await;
    assert_eq!(v.outcome, "ignored");
    assert!(v.response.allowed && v.response.patch.is_none() && v.request.is_none());
    let update = review("shop", &pod("p", json!({})), "UPDATE", false);
    let v = decide(update, values(""), &cluster())
        .await
        .expect("a verdict");
    assert_eq!(v.outcome, "ignored");
}

#[tokio::test]
async fn namespace_annotations_are_inherited() {
    let v = verdict_for("tuned", &pod("t", json!({}))).await;
    let ops = patch(&v);
    let proxy = ops
        .iter()
        .find(|o| o["path"] == json!("/spec/initContainers/1"))
        .expect("the proxy");
    let env = proxy["value"]["env"].as_array().expect("env");
    let log = env
        .iter()
        .find(|e| e["name"] == json!("LINKERD2_PROXY_LOG"));
    assert_eq!(
        log.map(|e| e["value"].clone()),
        Some(json!("debug,[{headers}]=off,[{request}]=off"))
    );
    let ps = paths(&v);
    assert!(ps.contains(&"/metadata/annotations/config.linkerd.io~1proxy-log-level".to_string()));
    assert!(
        !ps.iter().any(|p| p.contains("proxy-cpu-ratio-limit")),
        "not inheritable: {ps:?}"
    );
}

#[tokio::test]
async fn a_pods_bad_annotation_is_denied_naming_it() {
    let p = pod(
        "loud",
        json!({"config.linkerd.io/proxy-log-http-headers": "everything"}),
    );
    let v = verdict_for("shop", &p).await;
    assert_eq!(v.outcome, "denied");
    assert!(!v.response.allowed);
    let message = &v.response.result.message;
    assert!(
        message.contains("config.linkerd.io/proxy-log-http-headers: \"everything\""),
        "{message}"
    );
    assert!(v.request.is_none() && v.event.is_none());
}

#[tokio::test]
async fn faults_are_the_configs_or_the_clusters() {
    let p = pod("p", json!({}));
    let stores = cluster();
    let no_config = prepare(review("shop", &p, "CREATE", false), None, &stores).await;
    assert!(matches!(no_config, Err(Fault::NoConfig)));
    let unsynced = Stores {
        synced: false,
        ..cluster()
    };
    let r = decide(review("shop", &p, "CREATE", false), values(""), &unsynced).await;
    assert!(matches!(r, Err(Fault::NotSynced)));
    let r = decide(review("nowhere", &p, "CREATE", false), values(""), &stores).await;
    match r {
        Err(f @ Fault::Cache(CacheError::NamespaceNotFound(_))) => {
            assert_eq!(f.reason(), "lookup_failed")
        }
        Err(f) => panic!("wrong fault: {f}"),
        Ok(v) => panic!("no fault: {}", v.outcome),
    }
    // A config that cannot render, with no annotation to blame: the config's fault.
    let bad = values("proxyInit:\n  iptablesMode: magic\n");
    let r = decide(review("shop", &p, "CREATE", false), bad, &stores).await;
    match r {
        Err(f @ Fault::Core(_)) => {
            assert_eq!(f.reason(), "render_failed");
            assert!(f.to_string().contains("iptablesMode"), "{f}");
        }
        Err(f) => panic!("wrong fault: {f}"),
        Ok(v) => panic!("no fault: {}", v.outcome),
    }
}
