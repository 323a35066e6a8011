//! Loading Linkerd's values: the built-in defaults are the chart's, Helm's merge rules, and
//! errors that name the file and the key.

use super::*;

#[test]
fn defaults_are_the_chart_defaults() {
    let v = load([]).unwrap();
    assert_eq!(v.cluster_domain, "cluster.local");
    assert_eq!(v.linkerd_version, "edge-26.8.3");
    assert_eq!(
        v.proxy.ports,
        Ports {
            admin: 4191,
            control: 4190,
            inbound: 4143,
            outbound: 4140
        }
    );
    assert_eq!(v.proxy.uid, 2102);
    assert_eq!(v.proxy.gid, -1);
    assert!(v.proxy.native_sidecar && v.proxy.r#await);
    assert_eq!(v.proxy.runtime.workers.minimum, 1);
    assert_eq!(v.proxy.runtime.workers.maximum_cpu_ratio, 0.0);
    assert_eq!(
        v.proxy.opaque_ports,
        "25,587,3306,4444,5432,6379,9300,11211"
    );
    assert_eq!(v.proxy_init.iptables_mode, "nft");
    assert_eq!(v.proxy_init.xt_mount_path.mount_path, "/run");
    assert!(v.identity.service_account_token_projection);
    assert!(v.proxy.tracing.as_ref().is_some_and(|t| !t.enabled));
    assert_eq!(
        v.proxy.inbound["server"]["http2"]["keepAliveInterval"],
        "10s"
    );
    assert!(v.identity_trust_anchors_pem.is_empty());
}

#[test]
fn overlays_merge_with_helm_rules() {
    let v = load([
        (
            "a.yaml",
            "proxy:\n  ports:\n    admin: 1234\n  logLevel: debug\n",
        ),
        (
            "b.yaml",
            "proxy:\n  tracing: null\n  runtime:\n    workers:\n      minimum: null\n",
        ),
    ])
    .unwrap();
    assert_eq!(v.proxy.ports.admin, 1234, "maps merge");
    assert_eq!(v.proxy.ports.inbound, 4143, "siblings kept");
    assert_eq!(v.proxy.log_level, "debug");
    assert!(v.proxy.tracing.is_none(), "null deletes a section");
    assert_eq!(v.proxy.runtime.workers.minimum, 0, "null deletes a default");
}

#[test]
fn lists_replace() {
    let v = load([(
        "a",
        "networkValidator:\n  securityContext:\n    capabilities:\n      drop: [NET_RAW]\n",
    )])
    .unwrap();
    assert_eq!(
        v.network_validator.security_context["capabilities"]["drop"],
        serde_json::json!(["NET_RAW"])
    );
    assert_eq!(
        v.network_validator.security_context["runAsUser"], 65534,
        "map keys merge"
    );
}

#[test]
fn type_errors_name_the_key() {
    let e = load([("v.yaml", "proxy:\n  ports:\n    admin: nope\n")]).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("v.yaml: proxy.ports.admin: invalid type"),
        "{text}"
    );
    let e = load([("v.yaml", "- a\n")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "v.yaml: the values must be a YAML mapping, not a list"
    );
    assert!(load([("v.yaml", "a: [")])
        .unwrap_err()
        .to_string()
        .starts_with("v.yaml: invalid YAML"));
}

#[test]
fn unknown_keys_are_ignored_and_legacy_global_is_lifted() {
    let v = load([(
        "v",
        "somethingElse: {a: 1}\nglobal:\n  clusterDomain: example.org\n",
    )])
    .unwrap();
    assert_eq!(v.cluster_domain, "example.org");
}

#[test]
fn derived_values_fall_back() {
    let mut v = load([]).unwrap();
    assert_eq!(v.trust_domain(), "cluster.local");
    assert_eq!(v.proxy_version(), "edge-26.8.3");
    assert_eq!(v.proxy_pull_policy(), "IfNotPresent");
    v.identity_trust_domain = "example.org".into();
    v.proxy.image.version = "v1".into();
    assert_eq!(v.trust_domain(), "example.org");
    assert_eq!(v.proxy_version(), "v1");
}

#[test]
fn webhook_style_decoding_has_no_defaults() {
    let v = decode_without_defaults("values", "clusterDomain: c\n").unwrap();
    assert_eq!(v.cluster_domain, "c");
    assert_eq!(v.proxy.ports.admin, 0);
}
