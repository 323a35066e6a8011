//! The MutatingAdmissionPolicy of `proxy-injector policy`, checked against the webhook, with no
//! API server (none runs here).
//!
//! Every pod is sent, in several namespaces, both ways:
//! - to the real webhook binary (its namespaces and owners served by the API stand-in in
//!   `tests/common/kube_api.rs`), whose patch Python's `jsonpatch` applies;
//! - through the generated policy, evaluated by an independent CEL implementation (Google's
//!   CEL C++ runtime, `tests/support/eval_policy.py`): every expression compiled, the
//!   matchConditions evaluated, and for a claimed pod the variables and the JSONPatch
//!   mutation, applied by `jsonpatch` too.
//!
//! A pod the policy claims must come out as the webhook's, up to the two documented
//! differences (docs/policy.md): `linkerd.io/created-by` names the policy, and a CronJob's pod
//! carries `linkerd.io/proxy-job`. A pod it does not claim must be turned away by the
//! matchCondition that `check` names for it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::kube_api::KubeApi;
use common::webhook::{admission_review, patch_of, Webhook, TRUST_ANCHORS};
use common::workloads::{flatten_lists, merged_values, pod_for, webhook_cases, TEMPLATE_KINDS};
use common::{fixtures, read_tree, run_cli, yaml_docs};
use serde_json::{json, Value};

/// The namespaces every pod is created in.
fn namespaces() -> Vec<(&'static str, Value)> {
    vec![
        ("meshed", json!({"linkerd.io/inject": "enabled"})),
        ("plain", json!({})),
        (
            "debugging",
            json!({"linkerd.io/inject": "enabled", "config.linkerd.io/enable-debug-sidecar": "true"}),
        ),
        ("edge", json!({"linkerd.io/inject": "ingress"})),
        (
            "tuned",
            json!({"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-cpu-request": "200m"}),
        ),
        ("typo", json!({"linkerd.io/inject": "sometimes"})),
    ]
}

/// One pod to send both ways.
struct Trial {
    name: String,
    pod: Value,
    namespace: &'static str,
    /// Created by a CronJob's Job (the owner-label difference).
    cronjob: bool,
}

/// What a run of trials saw.
#[derive(Default)]
struct Tally {
    claimed: usize,
    /// The matchConditions that turned a pod away first.
    turned_away_by: BTreeSet<String>,
}

/// `pod` as admission sees it in `ns`: the namespace set and, unless it opts out, the
/// service-account token mounted in every container by the ServiceAccount admission plugin,
/// which runs before admission policies and webhooks.
fn admitted(mut pod: Value, ns: &str) -> Value {
    pod["metadata"]["namespace"] = json!(ns);
    if pod["spec"]["automountServiceAccountToken"] == json!(false) {
        return pod;
    }
    let mount = json!({"name": "kube-api-access-x7k2p", "readOnly": true,
                       "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"});
    for list in ["initContainers", "containers"] {
        let containers = pod["spec"].get_mut(list).and_then(Value::as_array_mut);
        for c in containers.into_iter().flatten() {
            let mounts = c
                .as_object_mut()
                .unwrap()
                .entry("volumeMounts")
                .or_insert(json!([]));
            mounts.as_array_mut().unwrap().push(mount.clone());
        }
    }
    let volumes = pod["spec"]
        .as_object_mut()
        .unwrap()
        .entry("volumes")
        .or_insert(json!([]));
    volumes.as_array_mut().unwrap().push(json!({"name": "kube-api-access-x7k2p", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}));
    pod
}

/// The MutatingAdmissionPolicy and its binding for the values in `values_file`.
fn generate(values_file: &Path) -> (Value, Value) {
    let args = [
        "policy".to_string(),
        "--values".into(),
        values_file.display().to_string(),
        "-o".into(),
        "json".into(),
    ];
    let run = run_cli(Path::new("."), &args, b"");
    assert_eq!(
        run.code,
        0,
        "policy failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let list: Value = serde_json::from_slice(&run.stdout).expect("policy -o json is JSON");
    (list["items"][0].clone(), list["items"][1].clone())
}

/// The policy evaluated on each case by `tests/support/eval_policy.py`, and the literals
/// Kubernetes' homogeneity check would refuse.
fn evaluate(policy: &Value, cases: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let input = json!({"policy": policy, "cases": cases});
    let report = common::support_script("eval_policy.py", &input, "the policy failed in CEL");
    (
        report["results"].as_array().unwrap().clone(),
        report["mixed_literals"].as_array().unwrap().clone(),
    )
}

/// `check -o json`'s rows for the trials' pods, with the namespaces' annotations.
fn check_rows(values_file: &Path, trials: &[Trial], dir: &Path) -> Vec<Value> {
    let stream: Vec<String> = trials
        .iter()
        .map(|t| serde_json::to_string(&t.pod).unwrap())
        .collect();
    let input = dir.join("pods.yaml");
    std::fs::write(&input, stream.join("\n---\n")).unwrap();
    let mut args = vec![
        "check".to_string(),
        "-o".into(),
        "json".into(),
        "--values".into(),
        values_file.display().to_string(),
    ];
    for (ns, annotations) in namespaces() {
        for (k, v) in annotations.as_object().unwrap() {
            args.push("--namespace-annotation".into());
            args.push(format!("{ns}:{k}={}", v.as_str().unwrap()));
        }
    }
    args.push(input.display().to_string());
    let run = run_cli(dir, &args, b"");
    let report: Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "check -o json: {e}: {}",
            String::from_utf8_lossy(&run.stderr)
        )
    });
    report["workloads"].as_array().unwrap().clone()
}

/// Sends every trial both ways and compares; returns what was seen.
async fn compare(wh: &Webhook, values_file: &Path, trials: &[Trial]) -> Tally {
    let (policy, _) = generate(values_file);
    let mut webhook_pairs = Vec::new();
    let mut cases = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        let body = wh
            .review(&admission_review(
                "admission.k8s.io/v1",
                &format!("policy-{i}"),
                t.namespace,
                &t.pod,
                false,
            ))
            .await;
        let patch = patch_of(&body).unwrap_or(json!([]));
        webhook_pairs.push(json!({"doc": t.pod, "patch": patch}));
        let (_, annotations) = namespaces()
            .into_iter()
            .find(|(n, _)| *n == t.namespace)
            .unwrap();
        cases.push(json!({
            "object": t.pod,
            "namespaceObject": {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": t.namespace, "annotations": annotations}},
            "request": {"namespace": t.namespace, "operation": "CREATE",
                        "kind": {"group": "", "version": "v1", "kind": "Pod"}},
        }));
    }
    let by_webhook = common::apply_patches_independently(&webhook_pairs);
    let (by_policy, mixed) = evaluate(&policy, &cases);
    assert!(mixed.is_empty(), "literals Kubernetes refuses: {mixed:?}");
    let dir = tempfile::tempdir().unwrap();
    let rows = check_rows(values_file, trials, dir.path());
    assert_eq!(rows.len(), trials.len(), "one check row per pod");
    let mut tally = Tally::default();
    for (((t, webhook), policy), row) in trials.iter().zip(by_webhook).zip(by_policy).zip(rows) {
        let name = format!("{} in {}", t.name, t.namespace);
        let false_conditions = policy["false"].as_array().unwrap();
        let claimed = false_conditions.is_empty();
        assert_eq!(
            row["policy"]["covered"],
            json!(claimed),
            "{name}: check and the policy disagree: {row} vs {false_conditions:?}"
        );
        if !claimed {
            assert_eq!(
                row["policy"]["condition"], false_conditions[0],
                "{name}: check names another matchCondition than the first false one"
            );
            tally
                .turned_away_by
                .insert(false_conditions[0].as_str().unwrap().to_string());
            continue;
        }
        tally.claimed += 1;
        let injected_by_webhook = webhook.to_string().contains("\"linkerd-proxy\"");
        assert!(
            injected_by_webhook,
            "{name}: claimed, but the webhook does not inject it"
        );
        let got = documented_differences(policy["patched"].clone(), t.cronjob, &name);
        let want = documented_differences(webhook, false, &name);
        assert_eq!(
            got, want,
            "{name}: the policy's pod differs from the webhook's"
        );
    }
    tally
}

/// The two differences docs/policy.md lists, checked and taken out: `linkerd.io/created-by`
/// names its injector, and a CronJob's pod gets `linkerd.io/proxy-job` from the policy (the
/// webhook, which can look the Job's owner up, gives it none).
fn documented_differences(mut pod: Value, cronjob: bool, name: &str) -> Value {
    let created_by = pod["metadata"]["annotations"]["linkerd.io/created-by"].take();
    let by = created_by.as_str().unwrap_or("");
    assert!(
        by.starts_with("proxy-injector/policy ") || by.starts_with("proxy-injector/webhook "),
        "{name}: created-by {by:?}"
    );
    if cronjob {
        let labels = pod["metadata"]["labels"].as_object_mut().unwrap();
        assert!(
            labels.remove("linkerd.io/proxy-job").is_some(),
            "{name}: the policy labels a CronJob's pod with its Job"
        );
    }
    pod
}

/// A directory holding `values` as a file for the CLI, and the API stand-in with the
/// namespaces of [`namespaces`].
async fn cluster(values: &Value) -> (tempfile::TempDir, PathBuf, KubeApi) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, serde_yaml::to_string(values).unwrap()).unwrap();
    let api = KubeApi::start().await;
    for (ns, annotations) in namespaces() {
        api.add_namespace(ns, annotations);
    }
    (dir, path, api)
}

/// The webhook for `values`, serving reviews against `api`.
async fn webhook(api: &KubeApi, values: &Value) -> Webhook {
    let anchors = values["identityTrustAnchorsPEM"]
        .as_str()
        .unwrap_or(TRUST_ANCHORS);
    let values_yaml = serde_yaml::to_string(values).unwrap();
    Webhook::start_with_anchors(api, &values_yaml, anchors, &[]).await
}

/// Every CLI fixture the webhook parity test uses: its workloads as their controllers' pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_pods_are_injected_by_the_policy_as_by_the_webhook() {
    let mut total = Tally::default();
    let mut runs = 0;
    for case in webhook_cases() {
        let values = merged_values(&case);
        let (_dir, values_file, api) = cluster(&values).await;
        let docs = flatten_lists(
            case.inputs()
                .iter()
                .flat_map(|p| read_tree(p))
                .flat_map(|t| yaml_docs(&t))
                .collect(),
        );
        let mut trials = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let kind = doc["kind"].as_str().unwrap_or("");
            let Some(template) = common::workloads::template_of(doc) else {
                continue;
            };
            // The API server decodes a Pod into its type before admission: a template that
            // is not a valid pod (a hostile fixture's) never reaches a webhook or a policy.
            if !TEMPLATE_KINDS.contains(&kind) || !template["spec"]["containers"].is_array() {
                continue;
            }
            for (ns, _) in namespaces() {
                let mut pod = pod_for(&api, doc, ns);
                if kind == "Deployment" {
                    // The label the Deployment controller puts on its pods, as `pod_for` names
                    // the ReplicaSet (`<name>-5f7c9d`).
                    let labels = pod["metadata"].as_object_mut().unwrap().entry("labels");
                    let labels = labels.or_insert(json!({})).as_object_mut().unwrap();
                    labels.insert("pod-template-hash".into(), json!("5f7c9d"));
                }
                trials.push(Trial {
                    name: format!("{} doc {i} ({kind})", case.name),
                    pod: admitted(pod, ns),
                    namespace: ns,
                    cronjob: kind == "CronJob",
                });
            }
        }
        if trials.is_empty() {
            continue;
        }
        let wh = webhook(&api, &values).await;
        let tally = compare(&wh, &values_file, &trials).await;
        total.claimed += tally.claimed;
        total.turned_away_by.extend(tally.turned_away_by);
        runs += 1;
    }
    eprintln!(
        "{runs} fixture cases: {} pods claimed by the policy; turned away by {:?}",
        total.claimed, total.turned_away_by
    );
    assert!(runs >= 5, "only {runs} fixture cases");
    assert!(
        total.claimed >= 40,
        "only {} pods claimed by the policy",
        total.claimed
    );
    for condition in [
        "injection-enabled",
        "not-ingress-mode",
        "not-injected",
        "no-namespace-overrides",
    ] {
        assert!(
            total.turned_away_by.contains(condition),
            "no fixture pod was turned away by {condition}: {:?}",
            total.turned_away_by
        );
    }
}

/// Pods that differ in every input the policy computes in CEL, under configs that change what
/// it bakes in (classic placement with await, CNI, token projection off, Helm capabilities).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_case_pods_under_other_configs() {
    let base: Value =
        serde_yaml::from_str(&std::fs::read_to_string(fixtures().join("values.yaml")).unwrap())
            .unwrap();
    let variants = [
        json!({}),
        json!({"proxy": {"nativeSidecar": false, "await": true, "waitBeforeExitSeconds": 5}}),
        json!({"proxy": {"nativeSidecar": false, "await": false}, "cniEnabled": true}),
        json!({"identity": {"serviceAccountTokenProjection": false}}),
        json!({"proxy": {"capabilities": {"add": ["SYS_TIME"], "drop": ["NET_RAW", "ALL"]}},
               "proxyInit": {"capabilities": {"add": ["SYS_ADMIN"], "drop": ["MKNOD"]}},
               "opaquePorts": "1,2"}),
        json!({"proxy": {"opaquePorts": ""}}),
        json!({"proxy": {"tracing": {"enabled": true, "labels": {"env": "prod", "zone": "a", "service.name": "default"},
               "collector": {"endpoint": "collector.tracing:4317",
                             "meshIdentity": {"serviceAccountName": "collector", "namespace": "tracing"}}}}}),
    ];
    let mut total = Tally::default();
    for extra in variants {
        let mut values = base.clone();
        if let (Value::Object(v), Value::Object(e)) = (&mut values, extra.clone()) {
            proxy_injector::config::helm_merge(v, e);
        }
        let (_dir, values_file, api) = cluster(&values).await;
        for ns in ["meshed", "plain", "debugging"] {
            api.add_replicaset(ns, "web-7d9f8b6c5", Some("web"));
            api.add_replicaset(ns, "bare-rs", None);
            api.add_job(ns, "nightly-29384", Some("nightly"));
            api.add_job(ns, "once", None);
        }
        let mut trials = Vec::new();
        for (name, pod) in edge_pods() {
            for ns in ["meshed", "plain", "debugging"] {
                trials.push(Trial {
                    name: format!("{name} under {extra}"),
                    pod: admitted(pod.clone(), ns),
                    namespace: ns,
                    cronjob: name == "cronjob-pod",
                });
            }
        }
        let wh = webhook(&api, &values).await;
        let tally = compare(&wh, &values_file, &trials).await;
        assert!(tally.claimed > 0, "{extra}: no pod claimed");
        total.claimed += tally.claimed;
        total.turned_away_by.extend(tally.turned_away_by);
    }
    eprintln!(
        "edge cases: {} pods claimed by the policy; turned away by {:?}",
        total.claimed, total.turned_away_by
    );
    for condition in [
        "injection-enabled",
        "not-host-network",
        "not-injected",
        "service-account-token-mounted",
        "no-pod-overrides",
    ] {
        assert!(
            total.turned_away_by.contains(condition),
            "no pod was turned away by {condition}: {:?}",
            total.turned_away_by
        );
    }
}

/// Pods as controllers and people create them, each exercising one input of the policy.
fn edge_pods() -> Vec<(&'static str, Value)> {
    let owner = |kind: &str, name: &str| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": format!("uid-{name}"), "controller": true}]);
    let app = |extra: Value| {
        let mut c = json!({"name": "app", "image": "example/app:1", "ports": [{"containerPort": 8080, "name": "http"}]});
        if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) {
            c.extend(e);
        }
        c
    };
    let pod = |meta: Value, spec: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
    vec![
        (
            "deployment-pod",
            pod(
                json!({"generateName": "web-7d9f8b6c5-", "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5"},
                       "ownerReferences": owner("ReplicaSet", "web-7d9f8b6c5")}),
                json!({"containers": [app(json!({
                    "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 3306}, {"containerPort": 9090, "protocol": "UDP"}],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8081}},
                    "livenessProbe": {"httpGet": {"path": "/live", "port": "http"}},
                    "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL", "NET_RAW"]}}}))]}),
            ),
        ),
        (
            "bare-replicaset-pod",
            pod(
                json!({"generateName": "bare-rs-", "labels": {"app": "bare"}, "ownerReferences": owner("ReplicaSet", "bare-rs"),
                       "annotations": {"linkerd.io/inject": "enabled"}}),
                json!({"initContainers": [{"name": "setup", "image": "busybox", "ports": [{"containerPort": 25}]}],
                       "containers": [app(json!({"securityContext": {"capabilities": {}}})), {"name": "side", "image": "x", "ports": [{"containerPort": 5432}, {"containerPort": 25}]}]}),
            ),
        ),
        (
            "cronjob-pod",
            pod(
                json!({"generateName": "nightly-29384-", "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "nightly-29384", "uid": "uid-n", "controller": true}]}),
                json!({"restartPolicy": "Never", "containers": [app(json!({}))]}),
            ),
        ),
        (
            "job-pod",
            pod(
                json!({"generateName": "once-", "labels": {"app.kubernetes.io/name": "once"}, "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "once", "uid": "uid-o", "controller": true}],
                       "annotations": {"config.linkerd.io/enable-debug-sidecar": "false"}}),
                json!({"restartPolicy": "Never", "containers": [app(json!({}))], "volumes": [{"name": "data", "emptyDir": {}}]}),
            ),
        ),
        (
            "statefulset-pod",
            pod(
                json!({"name": "db-0", "ownerReferences": owner("StatefulSet", "db"),
                       "labels": {"app.kubernetes.io/name": "db", "app.kubernetes.io/instance": "db-main"},
                       "annotations": {"config.linkerd.io/enable-debug-sidecar": "T", "example.com/note": "x"}}),
                json!({"containers": [app(json!({"securityContext": {"capabilities": {"drop": ["NET_ADMIN", "SETUID"]}}}))]}),
            ),
        ),
        (
            "two-owners",
            pod(
                json!({"name": "shared", "ownerReferences": [owner("DaemonSet", "a")[0].clone(), owner("DaemonSet", "b")[0].clone()]}),
                json!({"containers": [app(json!({}))]}),
            ),
        ),
        (
            "no-token",
            pod(
                json!({"name": "tokenless"}),
                json!({"automountServiceAccountToken": false, "containers": [app(json!({}))]}),
            ),
        ),
        (
            "opted-out",
            pod(
                json!({"name": "legacy", "annotations": {"linkerd.io/inject": "disabled"}}),
                json!({"containers": [app(json!({}))]}),
            ),
        ),
        (
            "host-network",
            pod(
                json!({"name": "agent", "annotations": {"linkerd.io/inject": "enabled"}}),
                json!({"hostNetwork": true, "containers": [app(json!({}))]}),
            ),
        ),
        (
            "istio",
            pod(
                json!({"name": "istio", "annotations": {"linkerd.io/inject": "enabled"}}),
                json!({"containers": [app(json!({})), {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.20"}]}),
            ),
        ),
        (
            "trace-attributes",
            pod(
                json!({"name": "traced", "annotations": {"linkerd.io/inject": "enabled", "resource.opentelemetry.io/team": "a"}}),
                json!({"containers": [app(json!({}))]}),
            ),
        ),
        (
            "tuned-pod",
            pod(
                json!({"name": "tuned", "annotations": {"linkerd.io/inject": "enabled", "config.linkerd.io/proxy-log-level": "debug"}}),
                json!({"containers": [app(json!({}))]}),
            ),
        ),
    ]
}

/// The homogeneity check of `eval_policy.py` finds what Kubernetes refuses: a map literal of
/// mixed value types in any expression, and none once the values are wrapped in `dyn()`.
#[test]
fn the_literal_check_finds_mixed_literals() {
    let (mut policy, _) = generate(&fixtures().join("values.yaml"));
    let mutation = &mut policy["spec"]["mutations"][0]["jsonPatch"]["expression"];
    let with = |literal: &str| {
        format!(
            "{} + [JSONPatch{{op: \"add\", path: \"/metadata/x\", value: {literal}}}]",
            mutation.as_str().unwrap()
        )
    };
    let (bad, good) = (
        with(r#"{"a": 1, "b": "s"}"#),
        with(r#"{"a": dyn(1), "b": dyn("s")}"#),
    );
    *mutation = json!(bad);
    let (_, mixed) = evaluate(&policy, &[]);
    assert_eq!(mixed.len(), 1, "{mixed:?}");
    policy["spec"]["mutations"][0]["jsonPatch"]["expression"] = json!(good);
    let (_, mixed) = evaluate(&policy, &[]);
    assert!(mixed.is_empty(), "{mixed:?}");
}

/// The generated objects pass the strict schemas of Kubernetes 1.36 and 1.37, and stay within
/// the sizes docs/policy.md sets.
#[test]
fn the_policy_is_valid_kubernetes_and_within_its_size_limits() {
    let dir = tempfile::tempdir().unwrap();
    let values = fixtures().join("values.yaml");
    let run = run_cli(
        Path::new("."),
        &[
            "policy".into(),
            "--values".into(),
            values.display().to_string(),
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", String::from_utf8_lossy(&run.stderr));
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, &run.stdout).unwrap();
    common::kubernetes_validate(&[file], &["1.36.0", "1.37.0"]);
    let (policy, _) = generate(&values);
    let exprs = proxy_injector::policy::expressions(&policy);
    assert!(exprs.len() >= 10, "{exprs:?}");
    for (at, text) in &exprs {
        let limit = if at.starts_with("mutations/") {
            proxy_injector::policy::MUTATION_LIMIT
        } else {
            proxy_injector::policy::EXPRESSION_LIMIT
        };
        assert!(
            text.len() <= limit,
            "{at}: {} bytes, over the {limit} set in policy.rs",
            text.len()
        );
        let depth = proxy_injector::policy::comprehension_depth(text);
        assert!(depth <= 2, "{at}: comprehensions nested {depth} deep");
    }
    let total = serde_json::to_string(&policy).unwrap().len();
    assert!(
        total <= proxy_injector::policy::OBJECT_LIMIT,
        "{total} bytes"
    );
}
