//! The core entry point: Linkerd's webhook patch op by op, the opaque-ports patches, RFC 6901
//! escaping, the CLI's modes, shape errors, and what fuzzing found.

use serde_json::json;

use super::*;
use crate::config;
use json_patch::PatchOperation;

fn values(anchors: &str) -> Values {
    let mut v = config::load([]).unwrap();
    v.linkerd_version = "dev-undefined".into();
    v.identity_trust_anchors_pem = anchors.into();
    v
}

fn webhook_request<'a>(values: &'a Values, ns: &'a Annotations) -> Request<'a> {
    Request::webhook(
        values,
        "linkerd",
        "proxy-injector/webhook test",
        "kube-public",
        ns,
        Some(("deployment", "owner-deployment")),
    )
}

fn cli_request<'a>(
    values: &'a Values,
    mode: Mode,
    overrides: &'a Annotations,
    empty: &'a Annotations,
) -> Request<'a> {
    Request::cli(values, "linkerd", "t", mode, overrides, empty)
}

fn paths(patch: &Patch) -> Vec<String> {
    patch.paths().map(str::to_string).collect()
}

/// docs/behaviour.md §1.4: the webhook's patch for a plain enabled pod, op by op.
#[test]
fn webhook_patch_has_linkerds_op_order() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "nginx", "annotations": {"linkerd.io/inject": "enabled"}, "labels": {"app": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}],
                  "readinessProbe": {"httpGet": {"port": 9090}}}]}
    });
    let v = values("IdentityTrustAnchorsPEM");
    let ns = Annotations::new();
    let out = inject(&pod, &webhook_request(&v, &ns)).unwrap();
    assert!(out.report.injectable());
    assert_eq!(
        paths(&out.patch),
        [
            "/metadata/annotations/linkerd.io~1created-by",
            "/metadata/annotations/linkerd.io~1proxy-version",
            "/metadata/annotations/linkerd.io~1trust-root-sha256",
            "/metadata/labels/linkerd.io~1control-plane-ns",
            "/metadata/labels/linkerd.io~1proxy-deployment",
            "/metadata/labels/linkerd.io~1workload-ns",
            "/spec/volumes",
            "/spec/initContainers",
            "/spec/volumes/-",
            "/spec/initContainers/0",
            "/spec/volumes/-",
            "/spec/volumes/-",
            "/spec/initContainers/1",
        ]
    );
    let ops = out.patch.operations();
    let value = |i: usize| match &ops[i] {
        PatchOperation::Add(a) => a.value.clone(),
        other => panic!("not an add: {other:?}"),
    };
    assert_eq!(value(1), json!("dev-undefined"));
    assert_eq!(
        value(2),
        json!("5090806bcf2daff5d54739ba02a8e7b919f7e62b2a46757e11089c916ec97fc2")
    );
    assert_eq!(value(5), json!("kube-public"));
    let proxy = value(12);
    let env = proxy["env"].as_array().unwrap();
    let get = |n: &str| {
        env.iter()
            .find(|e| e["name"] == n)
            .map(|e| e["value"].clone())
    };
    assert_eq!(get("LINKERD2_PROXY_INBOUND_PORTS"), Some(json!("80,9090")));
    assert_eq!(
        get("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"),
        Some(json!("IdentityTrustAnchorsPEM\n"))
    );
    assert_eq!(proxy["startupProbe"]["initialDelaySeconds"], json!(0));
}

#[test]
fn webhook_inherits_namespace_annotations_and_filters_default_opaque_ports() {
    let pod = json!({
        "kind": "Pod", "metadata": {"name": "db"},
        "spec": {"containers": [{"name": "db", "ports": [{"containerPort": 3306}, {"containerPort": 3306}]}]}
    });
    let v = values("x");
    let mut ns = Annotations::new();
    ns.insert(a::INJECT.into(), "enabled".into());
    ns.insert("config.linkerd.io/proxy-log-level".into(), "debug".into());
    ns.insert(
        "config.linkerd.io/proxy-cpu-ratio-limit".into(),
        "0.5".into(),
    ); // not inheritable
    let out = inject(&pod, &webhook_request(&v, &ns)).unwrap();
    assert_eq!(out.report.annotation_at, decide::AnnotationAt::Namespace);
    let p = paths(&out.patch);
    assert_eq!(
        p[0], "/metadata/annotations",
        "creates the missing map first"
    );
    assert!(p.contains(&"/metadata/annotations/linkerd.io~1inject".to_string()));
    assert!(p.contains(&"/metadata/annotations/config.linkerd.io~1proxy-log-level".to_string()));
    assert!(!p.iter().any(|x| x.contains("cpu-ratio")));
    let opaque = out.patch.operations().into_iter().find_map(|o| match o {
        PatchOperation::Add(a) if a.path.to_string().ends_with("opaque-ports") => {
            Some(a.value.clone())
        }
        _ => None,
    });
    assert_eq!(
        opaque,
        Some(json!("3306,3306")),
        "duplicates kept (docs/differences.md Q-14)"
    );
}

#[test]
fn skipped_pods_and_services_get_only_the_opaque_ports_annotation() {
    let v = values("x");
    let ns = Annotations::new();
    let pod = json!({
        "kind": "Pod", "metadata": {"name": "p", "annotations": {"a": "b"}},
        "spec": {"initContainers": [{"name": "i", "ports": [{"containerPort": 11211}]}],
                 "containers": [{"name": "c", "ports": [{"containerPort": 3306}]}]}
    });
    let out = inject(&pod, &webhook_request(&v, &ns)).unwrap();
    assert_eq!(out.report.reasons(), [SkipReason::InjectAnnotationAbsent]);
    assert_eq!(
        paths(&out.patch),
        ["/metadata/annotations/config.linkerd.io~1opaque-ports"]
    );
    assert_eq!(
        serde_json::to_value(&out.patch).unwrap()[0]["value"],
        json!("11211,3306")
    );

    let svc = json!({
        "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [
            {"port": 9090, "targetPort": 3306},
            {"port": 5432, "targetPort": 9091},
            {"port": 3306},
            {"port": 9093, "targetPort": "named"}
        ]}
    });
    let out = inject(&svc, &webhook_request(&v, &ns)).unwrap();
    let patch = serde_json::to_value(&out.patch).unwrap();
    assert_eq!(
        patch[0],
        json!({"op": "add", "path": "/metadata/annotations", "value": {}})
    );
    assert_eq!(patch[1]["value"], json!("9090,3306"));
}

#[test]
fn namespace_opaque_ports_value_is_plain_json() {
    let v = values("x");
    let mut ns = Annotations::new();
    ns.insert(
        crate::config::overrides::OPAQUE_PORTS.into(),
        "1&2<3>\"'+".into(),
    );
    let svc = json!({"kind": "Service", "metadata": {"name": "s", "annotations": {"x": "y"}}, "spec": {}});
    let out = inject(&svc, &webhook_request(&v, &ns)).unwrap();
    assert_eq!(
        serde_json::to_value(&out.patch).unwrap()[0]["value"],
        json!("1&2<3>\"'+")
    );
}

#[test]
fn keys_are_escaped_per_rfc6901() {
    let v = values("x");
    let mut overrides = Annotations::new();
    overrides.insert("example.com/odd~key".into(), "v\"with\\quotes\n".into());
    let empty = Annotations::new();
    let req = cli_request(&v, Mode::AnnotateOnly, &overrides, &empty);
    let dep = json!({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": []}}}});
    let out = inject(&dep, &req).unwrap();
    let p = paths(&out.patch);
    assert_eq!(p[0], "/spec/template/metadata");
    assert!(
        p.contains(&"/spec/template/metadata/annotations/example.com~1odd~0key".to_string()),
        "{p:?}"
    );
}

#[test]
fn cli_refuses_only_workloads_it_was_asked_to_inject() {
    let v = values("x");
    let empty = Annotations::new();
    let req = cli_request(&v, Mode::Full, &empty, &empty);
    let host = |ann: serde_json::Value| {
        json!({"kind": "Deployment", "metadata": {"name": "d"},
               "spec": {"template": {"metadata": {"annotations": ann},
                        "spec": {"hostNetwork": true, "containers": [{"name": "c"}]}}}})
    };
    let err = inject(&host(json!({})), &req).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to inject deployment/d: hostNetwork is enabled"
    );
    let out = inject(&host(json!({"linkerd.io/inject": "disabled"})), &req).unwrap();
    assert!(out.patch.is_empty() && out.report.host_network && out.report.inject_disabled());
}

#[test]
fn wrong_types_are_errors_naming_the_field() {
    let v = values("x");
    let empty = Annotations::new();
    let req = cli_request(&v, Mode::Full, &empty, &empty);
    for (doc, msg) in [
        (
            json!({"kind": "Deployment", "spec": {"template": "x"}}),
            "spec.template: expected a mapping, found a string",
        ),
        (
            json!({"kind": "Pod", "spec": {"containers": [{"name": "c", "ports": 80}]}}),
            "spec.containers[0].ports: expected a list, found a number",
        ),
        (
            json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": []}}}}}}),
            "spec.jobTemplate.spec.template.metadata.labels: expected a mapping, found a list",
        ),
    ] {
        assert_eq!(inject(&doc, &req).unwrap_err().to_string(), msg);
    }
}

/// Found by fuzzing: a pod with no `spec` got ops under `/spec` that pointed into nothing.
#[test]
fn a_pod_without_a_spec_gets_one_before_the_ops_under_it() {
    let v = values("IdentityTrustAnchorsPEM");
    let ns = Annotations::new();
    let ns: Annotations = [("linkerd.io/inject".to_string(), "enabled".to_string())]
        .into_iter()
        .chain(ns)
        .collect();
    for pod in [
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"}}),
        json!({"apiVersion": "v1", "kind": "Pod"}),
    ] {
        let out = inject(&pod, &webhook_request(&v, &ns)).unwrap();
        assert!(out.report.injectable());
        let mut patched = pod.clone();
        out.patch.apply(&mut patched).expect("the patch applies");
        assert_eq!(
            patched["spec"]["initContainers"][1]["name"],
            "linkerd-proxy"
        );
    }
}

/// Found by fuzzing: the opaque-ports patch of a skipped pod without `metadata` pointed into
/// nothing.
#[test]
fn the_opaque_ports_patch_creates_missing_metadata() {
    let v = values("IdentityTrustAnchorsPEM");
    let ns: Annotations = [
        ("linkerd.io/inject".to_string(), "disabled".to_string()),
        (
            "config.linkerd.io/opaque-ports".to_string(),
            "5432".to_string(),
        ),
    ]
    .into();
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
                     "spec": {"containers": [{"name": "db", "image": "postgres", "ports": [{"containerPort": 5432}]}]}});
    let out = inject(&pod, &webhook_request(&v, &ns)).unwrap();
    assert!(
        !out.patch.is_empty(),
        "the opaque-ports annotation is added"
    );
    let mut patched = pod.clone();
    out.patch.apply(&mut patched).expect("the patch applies");
    assert_eq!(
        patched["metadata"]["annotations"]["config.linkerd.io/opaque-ports"],
        "5432"
    );
}
