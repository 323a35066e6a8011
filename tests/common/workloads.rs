//! Workloads as the cluster's controllers turn them into pods, for the tests that send
//! pods through the webhook (`webhook_parity.rs`, `policy.rs`): which kinds have a pod
//! template, the Pod a controller creates (with its owners in the API stand-in), and the
//! fixture cases whose values they can share.

use serde_json::{json, Map, Value};

use super::kube_api::KubeApi;
use super::Case;

pub const TEMPLATE_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "ReplicationController",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Pod",
];

pub fn override_free(case: &Case) -> bool {
    let inputs = case.inputs();
    let mut skip = false;
    case.args.iter().all(|a| {
        if skip {
            skip = false;
            return true;
        }
        if a == "--values" {
            skip = true;
            return true;
        }
        ["inject", "--manual", "-o", "json", "--verbose"].contains(&a.as_str())
            || inputs.contains(&case.dir.join(a))
    })
}

/// The case's `--values` files merged as the CLI merges them, as one YAML document.
pub fn merged_values(case: &Case) -> Value {
    let mut merged = Map::new();
    let mut it = case.args.iter();
    while let Some(a) = it.next() {
        if a == "--values" {
            let text = std::fs::read_to_string(case.dir.join(it.next().unwrap())).unwrap();
            let v: Value = serde_yaml::from_str(&text).unwrap();
            if let Value::Object(m) = v {
                proxy_injector::config::helm_merge(&mut merged, m);
            }
        }
    }
    Value::Object(merged)
}

pub fn template_of(doc: &Value) -> Option<Value> {
    match doc["kind"].as_str()? {
        "Pod" => Some(doc.clone()),
        "CronJob" => Some(doc["spec"]["jobTemplate"]["spec"]["template"].clone()),
        k if TEMPLATE_KINDS.contains(&k) => Some(doc["spec"]["template"].clone()),
        _ => None,
    }
}

pub fn stringify(map: &mut Value) {
    if let Some(m) = map.as_object_mut() {
        for v in m.values_mut() {
            if !v.is_string() {
                *v = Value::String(if v.is_null() {
                    String::new()
                } else {
                    v.to_string()
                });
            }
        }
    }
}

/// The Pod a controller would create from `doc`'s template, with its owner references.
pub fn pod_for(api: &KubeApi, doc: &Value, ns: &str) -> Value {
    let kind = doc["kind"].as_str().unwrap();
    let name = doc["metadata"]["name"]
        .as_str()
        .or(doc["metadata"]["generateName"].as_str())
        .unwrap_or("x");
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {}});
    let template = template_of(doc).unwrap();
    if let Some(m) = template.get("metadata").and_then(Value::as_object) {
        pod["metadata"] = Value::Object(m.clone());
    }
    pod["spec"] = template.get("spec").cloned().unwrap_or(json!({}));
    for key in ["annotations", "labels"] {
        if pod["metadata"].get(key).is_some() {
            stringify(&mut pod["metadata"][key]);
        }
    }
    let owner = |kind: &str, name: &str, api_version: &str| {
        json!([{"apiVersion": api_version, "kind": kind, "name": name,
                "uid": super::kube_api::uid_for(name), "controller": true}])
    };
    let refs = match kind {
        "Pod" => {
            pod["metadata"]["name"] = json!(name);
            Value::Null
        }
        "Deployment" => {
            let rs = format!("{name}-5f7c9d");
            api.add_replicaset(ns, &rs, Some(name));
            owner("ReplicaSet", &rs, "apps/v1")
        }
        "CronJob" => {
            let job = format!("{name}-29384");
            api.add_job(ns, &job, Some(name));
            owner("Job", &job, "batch/v1")
        }
        "Job" => {
            api.add_job(ns, name, None);
            owner("Job", name, "batch/v1")
        }
        "ReplicationController" => owner(kind, name, "v1"),
        other => owner(other, name, "apps/v1"),
    };
    if !refs.is_null() {
        pod["metadata"]["generateName"] = json!(format!("{name}-"));
        pod["metadata"]["ownerReferences"] = refs;
    }
    pod
}

/// The documents of a stream with `kind: List` items in place of their List; blanks dropped.
pub fn flatten_lists(docs: Vec<Value>) -> Vec<Value> {
    docs.into_iter()
        .flat_map(|d| {
            if d["kind"] == json!("List") {
                d["items"].as_array().unwrap().clone()
            } else {
                vec![d]
            }
        })
        .filter(|d| !d.is_null())
        .collect()
}

/// The CLI fixtures whose pods the webhook tests send: full injection with no flag but
/// `--values`, and a successful run.
pub fn webhook_cases() -> Vec<Case> {
    super::cases()
        .into_iter()
        .filter(|c| c.is_manual_inject() && override_free(c))
        .filter(|c| {
            let exit = std::fs::read_to_string(c.dir.join("exit")).unwrap();
            exit.trim() == "0"
        })
        .collect()
}
