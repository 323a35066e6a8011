//! The registry's cases, one or more per override, in registry order; then what holds for
//! every entry (each key has cases, the CLI's write-back round-trips, Linkerd's inherited set).

use std::collections::BTreeSet;

use super::*;
use crate::config;

/// A pod with one named port, `mysql` = 3306.
struct Ports;

impl NamedPorts for Ports {
    fn port_by_name(&self, name: &str) -> Option<i64> {
        (name == "mysql").then_some(3306)
    }
}

fn defaults() -> Values {
    config::load([]).expect("the built-in defaults load")
}

fn annotations(pairs: &[(&str, &str)]) -> Annotations {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run(pairs: &[(&str, &str)]) -> Effective {
    apply(defaults(), &annotations(pairs), &Ports, None)
}

/// One annotation value, what it must do to the Values, and the warning it must give.
struct Case {
    key: &'static str,
    value: &'static str,
    effect: fn(&Effective) -> bool,
    warning: Option<&'static str>,
}

const fn ok(key: &'static str, value: &'static str, effect: fn(&Effective) -> bool) -> Case {
    Case {
        key,
        value,
        effect,
        warning: None,
    }
}

/// A bad value: the setting keeps its default and the warning is given (`None`: silently).
const fn bad(key: &'static str, value: &'static str, warning: Option<&'static str>) -> Case {
    Case {
        key,
        value,
        effect: |e| e.values == defaults() && !e.debug_sidecar,
        warning,
    }
}

const CASES: &[Case] = &[
    ok("linkerd.io/inject", "ingress", |e| e.values.proxy.is_ingress),
    ok("linkerd.io/inject", "enabled", |e| e.values == defaults()),
    ok("config.linkerd.io/proxy-image", "example/proxy", |e| {
        e.values.proxy.image.name == "example/proxy"
    }),
    ok("config.linkerd.io/proxy-version", "v9", |e| {
        e.values.proxy.image.version == "v9"
    }),
    ok("config.linkerd.io/image-pull-policy", "Always", |e| {
        e.values.proxy.image.pull_policy == "Always" && e.values.image_pull_policy == "IfNotPresent"
    }),
    ok("config.linkerd.io/control-port", "5190", |e| {
        e.values.proxy.ports.control == 5190
    }),
    bad("config.linkerd.io/control-port", "x", None),
    ok("config.linkerd.io/inbound-port", "5143", |e| {
        e.values.proxy.ports.inbound == 5143
    }),
    bad("config.linkerd.io/inbound-port", "99999999999", None),
    ok("config.linkerd.io/admin-port", "5191", |e| {
        e.values.proxy.ports.admin == 5191
    }),
    ok("config.linkerd.io/outbound-port", "5140", |e| {
        e.values.proxy.ports.outbound == 5140
    }),
    ok("config.linkerd.io/pod-inbound-ports", "1,2", |e| {
        e.values == defaults()
    }),
    ok("config.linkerd.io/proxy-admin-shutdown", "enabled", |e| {
        e.values.proxy.enable_shutdown_endpoint
    }),
    bad(
        "config.linkerd.io/proxy-admin-shutdown",
        "on",
        Some("unrecognized value used for the config.linkerd.io/proxy-admin-shutdown annotation: on"),
    ),
    ok("config.linkerd.io/proxy-log-level", "debug", |e| {
        e.values.proxy.log_level == "debug"
    }),
    ok("config.linkerd.io/proxy-log-http-headers", "insecure", |e| {
        e.values.proxy.log_http_headers == "insecure"
    }),
    ok("config.linkerd.io/proxy-log-format", "json", |e| {
        e.values.proxy.log_format == "json"
    }),
    ok(
        "config.linkerd.io/proxy-require-identity-inbound-ports",
        "8080",
        |e| e.values.proxy.require_identity_on_inbound_ports == "8080",
    ),
    ok("config.linkerd.io/proxy-metrics-hostname-labels", "true", |e| {
        e.values.proxy.metrics.hostname_labels
    }),
    bad("config.linkerd.io/proxy-metrics-hostname-labels", "yes", None),
    ok("config.linkerd.io/proxy-outbound-connect-timeout", "1.5s", |e| {
        e.values.proxy.outbound_connect_timeout == "1500ms"
    }),
    bad(
        "config.linkerd.io/proxy-outbound-connect-timeout",
        "soon",
        Some("unrecognized value used for the config.linkerd.io/proxy-outbound-connect-timeout annotation, \"soon\" is not a duration"),
    ),
    ok("config.linkerd.io/proxy-inbound-connect-timeout", "1.001s", |e| {
        e.values.proxy.inbound_connect_timeout == "1000ms"
    }),
    ok(
        "config.linkerd.io/proxy-outbound-discovery-cache-unused-timeout",
        "90500ms",
        |e| e.values.proxy.outbound_discovery_cache_unused_timeout == "90s",
    ),
    ok(
        "config.linkerd.io/proxy-inbound-discovery-cache-unused-timeout",
        "2m",
        |e| e.values.proxy.inbound_discovery_cache_unused_timeout == "120s",
    ),
    ok(
        "config.linkerd.io/proxy-disable-outbound-protocol-detect-timeout",
        "true",
        |e| e.values.proxy.disable_outbound_protocol_detect_timeout,
    ),
    ok(
        "config.linkerd.io/proxy-disable-inbound-protocol-detect-timeout",
        "T",
        |e| e.values.proxy.disable_inbound_protocol_detect_timeout,
    ),
    bad(
        "config.linkerd.io/proxy-disable-inbound-protocol-detect-timeout",
        "on",
        Some("unrecognized value used for the config.linkerd.io/proxy-disable-inbound-protocol-detect-timeout annotation, \"on\" is not a boolean"),
    ),
    ok("config.linkerd.io/shutdown-grace-period", "30s", |e| {
        e.values.proxy.shutdown_grace_period == "30000ms"
    }),
    ok("config.linkerd.io/enable-gateway", "true", |e| {
        e.values.proxy.is_gateway
    }),
    ok(
        "config.alpha.linkerd.io/proxy-wait-before-exit-seconds",
        "15",
        |e| e.values.proxy.wait_before_exit_seconds == 15,
    ),
    bad(
        "config.alpha.linkerd.io/proxy-wait-before-exit-seconds",
        "-1",
        Some("unrecognized value used for the config.alpha.linkerd.io/proxy-wait-before-exit-seconds annotation, \"-1\" is not an unsigned integer"),
    ),
    ok("config.linkerd.io/proxy-enable-native-sidecar", "false", |e| {
        !e.values.proxy.native_sidecar
    }),
    bad("config.linkerd.io/proxy-enable-native-sidecar", "no", None),
    ok("config.beta.linkerd.io/proxy-enable-native-sidecar", "false", |e| {
        !e.values.proxy.native_sidecar
    }),
    ok("config.alpha.linkerd.io/proxy-enable-native-sidecar", "0", |e| {
        !e.values.proxy.native_sidecar
    }),
    ok("config.linkerd.io/proxy-cpu-request", "1500m", |e| {
        let p = &e.values.proxy;
        p.resources.cpu.request == "1500m" && p.runtime.workers.minimum == 2
    }),
    bad(
        "config.linkerd.io/proxy-cpu-request",
        "lots",
        Some("unrecognized value used for the config.linkerd.io/proxy-cpu-request annotation, \"lots\" is not a quantity"),
    ),
    ok("config.linkerd.io/proxy-cpu-limit", "3", |e| {
        let p = &e.values.proxy;
        p.resources.cpu.limit == "3" && p.runtime.workers.maximum == 3
    }),
    ok("config.linkerd.io/proxy-cpu-ratio-limit", "0.25", |e| {
        e.values.proxy.runtime.workers.maximum_cpu_ratio == 0.25
    }),
    bad(
        "config.linkerd.io/proxy-cpu-ratio-limit",
        "1",
        Some("config.linkerd.io/proxy-cpu-ratio-limit: \"1\" must be greater than 0 and less than 1"),
    ),
    bad(
        "config.linkerd.io/proxy-cpu-ratio-limit",
        "NaN",
        Some("unrecognized value used for the config.linkerd.io/proxy-cpu-ratio-limit annotation, \"NaN\" is not a number"),
    ),
    ok("config.linkerd.io/proxy-memory-request", "64Mi", |e| {
        e.values.proxy.resources.memory.request == "64Mi"
    }),
    bad(
        "config.linkerd.io/proxy-memory-request",
        "64 MB",
        Some("unrecognized value used for the config.linkerd.io/proxy-memory-request annotation, \"64 MB\" is not a quantity"),
    ),
    ok("config.linkerd.io/proxy-memory-limit", "1Gi", |e| {
        e.values.proxy.resources.memory.limit == "1Gi"
    }),
    ok("config.linkerd.io/proxy-ephemeral-storage-request", "1Gi", |e| {
        e.values.proxy.resources.ephemeral_storage.request == "1Gi"
    }),
    ok("config.linkerd.io/proxy-ephemeral-storage-limit", "2Gi", |e| {
        e.values.proxy.resources.ephemeral_storage.limit == "2Gi"
    }),
    ok("config.linkerd.io/proxy-uid", "1000650001", |e| {
        e.values.proxy.uid == 1_000_650_001
    }),
    ok("config.linkerd.io/proxy-gid", "2103", |e| e.values.proxy.gid == 2103),
    bad("config.linkerd.io/proxy-gid", "root", None),
    ok("config.linkerd.io/enable-external-profiles", "true", |e| {
        e.values.proxy.enable_external_profiles
    }),
    ok("config.linkerd.io/skip-inbound-ports", "80,443", |e| {
        e.values.proxy_init.ignore_inbound_ports == "80,443"
    }),
    ok("config.linkerd.io/skip-outbound-ports", "3306", |e| {
        e.values.proxy_init.ignore_outbound_ports == "3306"
    }),
    ok("config.linkerd.io/opaque-ports", "mysql,5000-6000,4444,", |e| {
        e.values.proxy.opaque_ports == "3306,5000-6000,4444"
    }),
    Case {
        key: "config.linkerd.io/opaque-ports",
        value: "80,http",
        effect: |e| e.values.proxy.opaque_ports == "80",
        warning: Some("config.linkerd.io/opaque-ports: invalid port or range \"http\", ignored"),
    },
    ok("config.linkerd.io/debug-image", "example/debug", |e| {
        e.values.debug_container.image.name == "example/debug"
    }),
    ok("config.linkerd.io/debug-image-version", "v2", |e| {
        e.values.debug_container.image.version == "v2"
    }),
    ok("config.linkerd.io/debug-image-pull-policy", "Never", |e| {
        e.values.debug_container.image.pull_policy == "Never"
    }),
    ok("config.linkerd.io/proxy-await", "disabled", |e| {
        !e.values.proxy.r#await
    }),
    ok("config.linkerd.io/default-inbound-policy", "deny", |e| {
        e.values.proxy.default_inbound_policy == "deny"
    }),
    bad(
        "config.linkerd.io/default-inbound-policy",
        "allow",
        Some("unrecognized value used for the config.linkerd.io/default-inbound-policy annotation: allow"),
    ),
    ok("config.linkerd.io/skip-subnets", "10.0.0.0/8", |e| {
        e.values.proxy_init.skip_subnets == "10.0.0.0/8"
    }),
    ok("config.linkerd.io/access-log", "apache", |e| {
        e.values.proxy.access_log == "apache"
    }),
    ok(
        "config.linkerd.io/proxy-additional-env",
        r#"[{"name": "A", "value": "1"}]"#,
        |e| e.values.proxy.additional_env == vec![serde_json::json!({"name": "A", "value": "1"})],
    ),
    bad(
        "config.linkerd.io/proxy-additional-env",
        r#"[{"value": "1"}]"#,
        Some("invalid JSON in config.linkerd.io/proxy-additional-env annotation: entry 0 has no string \"name\""),
    ),
    ok("config.linkerd.io/enable-debug-sidecar", "true", |e| e.debug_sidecar),
    ok("config.linkerd.io/enable-debug-sidecar", "", |e| !e.debug_sidecar),
    bad(
        "config.linkerd.io/enable-debug-sidecar",
        "yes",
        Some("unrecognized value used for the config.linkerd.io/enable-debug-sidecar annotation: yes"),
    ),
    ok("config.linkerd.io/close-wait-timeout", "1m30s", |e| {
        e.values.proxy_init.close_wait_timeout_secs == 90
    }),
];

#[test]
fn each_case_has_its_effect_and_warning() {
    for c in CASES {
        let e = run(&[(c.key, c.value)]);
        assert!((c.effect)(&e), "{} = {:?}: wrong effect", c.key, c.value);
        let texts: Vec<String> = e.warnings.iter().map(ToString::to_string).collect();
        let expected: Vec<String> = c.warning.iter().map(|w| w.to_string()).collect();
        assert_eq!(texts, expected, "{} = {:?}", c.key, c.value);
        assert!(e.warnings.iter().all(|w| w.annotation == c.key));
    }
}

#[test]
fn every_override_has_cases() {
    for o in OVERRIDES {
        assert!(
            CASES.iter().any(|c| c.key == o.key),
            "{} has no case in overrides/tests.rs",
            o.key
        );
    }
    let keys: BTreeSet<_> = OVERRIDES.iter().map(|o| o.key).collect();
    assert_eq!(keys.len(), OVERRIDES.len(), "a key is defined twice");
}

/// What the CLI writes back for a flag's change, applied to the same starting Values, gives
/// the Values the flag produced: annotate-only output renders like `--manual`.
#[test]
fn write_back_round_trips() {
    let mut covered = BTreeSet::new();
    for c in CASES.iter().filter(|c| c.warning.is_none()) {
        let flagged = run(&[(c.key, c.value)]).values;
        let written = write_back(&defaults(), &flagged);
        let entry = OVERRIDES.iter().find(|o| o.key == c.key).expect("a key");
        if flagged == defaults() {
            assert!(written.is_empty(), "{}: {written:?}", c.key);
            continue;
        }
        if !entry.is_written_back() {
            // No flag sets it (or another key carries it: the native-sidecar aliases).
            continue;
        }
        assert_eq!(written.keys().collect::<Vec<_>>(), [c.key], "{}", c.key);
        let replayed = apply(defaults(), &written, &Ports, None).values;
        assert_eq!(replayed, flagged, "{} = {:?}", c.key, c.value);
        covered.insert(c.key);
    }
    let written_back = OVERRIDES.iter().filter(|o| o.is_written_back()).count();
    assert_eq!(covered.len(), written_back);
}

#[test]
fn a_gid_is_written_back_only_when_it_names_a_group() {
    let mut with_gid = defaults();
    with_gid.proxy.gid = 7;
    let mut none = with_gid.clone();
    none.proxy.gid = -1;
    assert!(write_back(&with_gid, &none).is_empty());
    assert_eq!(
        write_back(&none, &with_gid),
        annotations(&[("config.linkerd.io/proxy-gid", "7")])
    );
}

/// docs/behaviour.md §6.1: the 43 keys Linkerd's webhook copies from the namespace.
#[test]
fn the_inherited_keys_are_linkerds() {
    let linkerd: BTreeSet<String> = [
        "admin-port",
        "control-port",
        "enable-debug-sidecar",
        "enable-external-profiles",
        "image-pull-policy",
        "inbound-port",
        "outbound-port",
        "pod-inbound-ports",
        "proxy-cpu-limit",
        "proxy-cpu-request",
        "proxy-image",
        "proxy-admin-shutdown",
        "proxy-log-format",
        "proxy-log-level",
        "proxy-log-http-headers",
        "proxy-memory-limit",
        "proxy-memory-request",
        "proxy-ephemeral-storage-limit",
        "proxy-ephemeral-storage-request",
        "proxy-uid",
        "proxy-gid",
        "proxy-version",
        "proxy-require-identity-inbound-ports",
        "skip-inbound-ports",
        "opaque-ports",
        "skip-outbound-ports",
        "proxy-metrics-hostname-labels",
        "proxy-outbound-connect-timeout",
        "proxy-inbound-connect-timeout",
        "proxy-await",
        "default-inbound-policy",
        "skip-subnets",
        "access-log",
        "shutdown-grace-period",
        "proxy-outbound-discovery-cache-unused-timeout",
        "proxy-inbound-discovery-cache-unused-timeout",
        "proxy-disable-outbound-protocol-detect-timeout",
        "proxy-disable-inbound-protocol-detect-timeout",
        "proxy-enable-native-sidecar",
        "proxy-additional-env",
    ]
    .iter()
    .map(|k| format!("config.linkerd.io/{k}"))
    .chain(
        [
            "config.alpha.linkerd.io/proxy-wait-before-exit-seconds",
            "config.alpha.linkerd.io/proxy-enable-native-sidecar",
            "linkerd.io/inject",
        ]
        .map(String::from),
    )
    .collect();
    let ours: BTreeSet<String> = inherited().map(String::from).collect();
    assert_eq!(ours, linkerd);
    assert!(!is_inherited("config.linkerd.io/proxy-cpu-ratio-limit"));
    assert!(is_inherited("config.linkerd.io/proxy-cpu-request"));
}

#[test]
fn the_stable_native_sidecar_key_hides_the_others_by_presence() {
    let stable = "config.linkerd.io/proxy-enable-native-sidecar";
    let beta = "config.beta.linkerd.io/proxy-enable-native-sidecar";
    let alpha = "config.alpha.linkerd.io/proxy-enable-native-sidecar";
    assert!(
        run(&[(stable, "bad"), (beta, "false")])
            .values
            .proxy
            .native_sidecar
    );
    assert!(
        run(&[(beta, "true"), (alpha, "false")])
            .values
            .proxy
            .native_sidecar
    );
    assert!(!run(&[(alpha, "false")]).values.proxy.native_sidecar);
}

#[test]
fn cpu_request_and_limit_set_the_worker_range() {
    let e = run(&[
        ("config.linkerd.io/proxy-cpu-limit", "2500m"),
        ("config.linkerd.io/proxy-cpu-request", "0.1"),
    ]);
    let w = &e.values.proxy.runtime.workers;
    assert_eq!((w.minimum, w.maximum), (1, 3));
}

#[test]
fn the_namespace_env_is_merged_before_the_pods() {
    let key = "config.linkerd.io/proxy-additional-env";
    let ns = annotations(&[(
        key,
        r#"[{"name": "A", "value": "ns"}, {"name": "B", "value": "ns"}]"#,
    )]);
    let pod = annotations(&[(key, r#"[{"name": "B", "value": "pod"}]"#)]);
    let e = apply(defaults(), &pod, &Ports, Some(&ns));
    assert_eq!(
        e.values.proxy.additional_env,
        vec![
            serde_json::json!({"name": "A", "value": "ns"}),
            serde_json::json!({"name": "B", "value": "pod"}),
        ]
    );
    let broken = annotations(&[(key, "not json")]);
    let e = apply(defaults(), &pod, &Ports, Some(&broken));
    assert_eq!(e.warnings.len(), 1);
    assert!(e.warnings[0].to_string().starts_with(
        "invalid JSON in config.linkerd.io/proxy-additional-env annotation: expected"
    ));
}

#[test]
fn trace_attributes_come_from_opentelemetry_annotations() {
    let e = run(&[("resource.opentelemetry.io/team", "payments")]);
    let labels = &e.values.proxy.tracing.as_ref().expect("tracing").labels;
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
}

#[test]
fn the_blamed_annotations_are_registered() {
    for e in [RenderError::LogHttpHeaders, RenderError::CloseWaitNeedsRoot] {
        let key = blamed_annotation(&e).expect("an annotation");
        assert!(OVERRIDES.iter().any(|o| o.key == key));
    }
    assert_eq!(blamed_annotation(&RenderError::TrustAnchors), None);
}
