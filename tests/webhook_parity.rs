//! Every CLI fixture that `inject --manual` injects with no flags but `--values` also goes
//! through the webhook: each pod template becomes the Pod a controller would create (owned as
//! it would be), the webhook's patch is applied by an independent RFC 6902 implementation
//! (Python's `jsonpatch`), and the result must equal the CLI's output for that template.
//!
//! Known, specified differences are normalised, and only these: `linkerd.io/created-by`'s
//! value (`…/webhook` vs `…/cli`); the annotations the webhook copies from the namespace
//! (`linkerd.io/inject`, `config.linkerd.io/opaque-ports`, docs/behaviour.md §6.1); and the owner
//! label of CronJob pods, which Linkerd's webhook never sets (docs/differences.md Q-23).

mod common;

use common::kube_api::KubeApi;
use common::webhook::{admission_review, patch_of, Webhook};
use common::workloads::{
    flatten_lists, merged_values, pod_for, template_of, webhook_cases, TEMPLATE_KINDS,
};
use common::{read_tree, yaml_docs};
use serde_json::{json, Value};

/// What the webhook result should be: the CLI's template, as a Pod, normalised.
fn expected_pod(cli_doc: &Value, pod_in: &Value) -> Value {
    let mut pod = pod_in.clone();
    let t = template_of(cli_doc).unwrap();
    pod["metadata"]["annotations"] = t["metadata"]["annotations"].clone();
    pod["metadata"]["labels"] = t["metadata"]["labels"].clone();
    pod["spec"] = t["spec"].clone();
    pod
}

fn normalise(mut pod: Value, cronjob: bool, own_annotations: &Value) -> Value {
    if let Some(a) = pod["metadata"]["annotations"].as_object_mut() {
        a.insert("linkerd.io/created-by".into(), json!("-"));
        for inherited in ["linkerd.io/inject", "config.linkerd.io/opaque-ports"] {
            if own_annotations.get(inherited).is_none() {
                a.remove(inherited);
            }
        }
    }
    if cronjob {
        if let Some(l) = pod["metadata"]["labels"].as_object_mut() {
            l.remove("linkerd.io/proxy-cronjob");
        }
    }
    pod
}

fn apply_independently(pairs: &[(Value, Value)]) -> Vec<Value> {
    let batch: Vec<Value> = pairs
        .iter()
        .map(|(d, p)| json!({"doc": d, "patch": p}))
        .collect();
    common::apply_patches_independently(&batch)
}

/// Linkerd's patch shape: only `add`s, and a parent is created before anything goes in it.
fn check_patch_shape(name: &str, pod: &Value, patch: &Value) {
    let ops = patch.as_array().unwrap();
    assert!(
        ops.iter().all(|o| o["op"] == json!("add")),
        "{name}: only add ops"
    );
    let paths: Vec<&str> = ops.iter().map(|o| o["path"].as_str().unwrap()).collect();
    for (parent, present) in [
        (
            "/metadata/annotations",
            pod["metadata"]["annotations"]
                .as_object()
                .is_some_and(|m| !m.is_empty()),
        ),
        (
            "/metadata/labels",
            pod["metadata"]["labels"]
                .as_object()
                .is_some_and(|m| !m.is_empty()),
        ),
        (
            "/spec/volumes",
            pod["spec"]["volumes"]
                .as_array()
                .is_some_and(|l| !l.is_empty()),
        ),
        (
            "/spec/initContainers",
            pod["spec"]["initContainers"]
                .as_array()
                .is_some_and(|l| !l.is_empty()),
        ),
    ] {
        let create = paths.iter().position(|p| *p == parent);
        let first_child = paths
            .iter()
            .position(|p| p.starts_with(&format!("{parent}/")));
        if present {
            assert!(
                create.is_none(),
                "{name}: {parent} exists, it is not re-created"
            );
        } else if let Some(child) = first_child {
            assert!(
                create.is_some_and(|c| c < child),
                "{name}: {parent} is created before use: {paths:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_fixtures_through_the_webhook_give_the_cli_output() {
    let mut compared = 0;
    for case in webhook_cases() {
        let values = merged_values(&case);
        let anchors = values["identityTrustAnchorsPEM"]
            .as_str()
            .unwrap()
            .to_string();
        let opaque = values["proxy"]["opaquePorts"]
            .as_str()
            .unwrap_or("25,587,3306,4444,5432,6379,9300,11211")
            .to_string();
        let api = KubeApi::start().await;
        let inputs = flatten_lists(
            case.inputs()
                .iter()
                .flat_map(|p| read_tree(p))
                .flat_map(|t| yaml_docs(&t))
                .collect(),
        );
        let outputs = flatten_lists(yaml_docs(
            &std::fs::read_to_string(case.stdout_golden()).unwrap(),
        ));
        assert_eq!(inputs.len(), outputs.len(), "{}", case.name);
        let namespaces: std::collections::BTreeSet<String> = inputs
            .iter()
            .map(|d| {
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string()
            })
            .collect();
        for ns in &namespaces {
            api.add_namespace(
                ns,
                json!({"linkerd.io/inject": "enabled", "config.linkerd.io/opaque-ports": opaque}),
            );
        }
        let values_yaml = serde_yaml::to_string(&values).unwrap();
        let wh = Webhook::start_with_anchors(&api, &values_yaml, &anchors, &[]).await;
        let mut pairs = Vec::new();
        let mut expected = Vec::new();
        for (i, (input, output)) in inputs.iter().zip(&outputs).enumerate() {
            let kind = input["kind"].as_str().unwrap_or("");
            if !TEMPLATE_KINDS.contains(&kind) || template_of(input).is_none() {
                continue;
            }
            // The webhook sees pods as created: an already-injected manifest (which the CLI
            // uninjects first) is not something it is sent.
            if serde_json::to_string(input)
                .unwrap()
                .contains("\"linkerd-proxy\"")
            {
                continue;
            }
            let injected = serde_json::to_string(output)
                .unwrap()
                .contains("\"linkerd-proxy\"");
            let ns = input["metadata"]["namespace"].as_str().unwrap_or("default");
            let pod = pod_for(&api, input, ns);
            let body = wh
                .review(&admission_review(
                    "admission.k8s.io/v1",
                    &format!("{}-{i}", case.name),
                    ns,
                    &pod,
                    false,
                ))
                .await;
            let patch = patch_of(&body).unwrap_or(json!([]));
            let patched_has_proxy = patch.to_string().contains("\"linkerd-proxy\"");
            assert_eq!(
                patched_has_proxy, injected,
                "{} doc {i}: injected by one front-end only",
                case.name
            );
            if !injected {
                continue;
            }
            check_patch_shape(&case.name, &pod, &patch);
            let mut want = expected_pod(output, &pod);
            if input["metadata"]["namespace"].is_null() {
                // The CLI writes the manifest's (absent) namespace, the webhook the request's.
                want["metadata"]["labels"]["linkerd.io/workload-ns"] = json!(ns);
            }
            let own = pod["metadata"]["annotations"].clone();
            expected.push((
                format!("{} doc {i} ({kind})", case.name),
                normalise(want, kind == "CronJob", &own),
                kind == "CronJob",
                own,
            ));
            pairs.push((pod, patch));
        }
        let patched = apply_independently(&pairs);
        for (got, (name, want, cronjob, own)) in patched.into_iter().zip(expected) {
            assert_eq!(normalise(got, cronjob, &own), want, "{name}");
            compared += 1;
        }
    }
    assert!(compared >= 20, "only {compared} pods compared");
}
