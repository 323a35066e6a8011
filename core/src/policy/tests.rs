use serde_json::{json, Value};

use super::*;
use crate::config;

fn values(extra: &str) -> Values {
    let text = format!("identityTrustAnchorsPEM: test-anchors\nlinkerdVersion: test\n{extra}");
    config::load([("values.yaml", text.as_str())]).expect("test values")
}

fn options(values: &Values) -> Options<'_> {
    Options {
        values,
        control_plane_ns: "linkerd",
        name: "linkerd-proxy-injector",
        created_by: "proxy-injector/policy test",
        generator: "proxy-injector test",
    }
}

fn pod(annotations: Value, spec: Value) -> Value {
    json!({"metadata": {"annotations": annotations}, "spec": spec})
}

fn app() -> Value {
    json!({"containers": [{"name": "app", "image": "x",
        "volumeMounts": [{"name": "t", "mountPath": a::SERVICE_ACCOUNT_MOUNT_PATH}]}]})
}

fn covers(pod: &Value, ns: &[(&str, &str)], values: &Values) -> Result<(), &'static str> {
    let ns: Annotations = ns
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    coverage(&PodTemplate { value: pod }, &ns, values).map_err(|u| u.condition)
}

#[test]
fn coverage_names_the_first_condition_that_turns_a_pod_away() {
    let v = values("");
    let enabled = [(a::INJECT, "enabled")];
    assert_eq!(covers(&pod(json!({}), app()), &enabled, &v), Ok(()));
    assert_eq!(
        covers(&pod(json!({}), app()), &[], &v),
        Err("injection-enabled")
    );
    assert_eq!(
        covers(
            &pod(json!({"linkerd.io/inject": "disabled"}), app()),
            &enabled,
            &v
        ),
        Err("injection-enabled")
    );
    assert_eq!(
        covers(&pod(json!({}), app()), &[(a::INJECT, "ingress")], &v),
        Err("not-ingress-mode")
    );
    // The pod's own value wins over its namespace's.
    assert_eq!(
        covers(
            &pod(json!({"linkerd.io/inject": "enabled"}), app()),
            &[(a::INJECT, "ingress")],
            &v
        ),
        Ok(())
    );
    let mut host = app();
    host["hostNetwork"] = json!(true);
    assert_eq!(
        covers(&pod(json!({}), host), &enabled, &v),
        Err("not-host-network")
    );
    assert_eq!(
        covers(
            &pod(json!({"config.linkerd.io/proxy-cpu-request": "1"}), app()),
            &enabled,
            &v
        ),
        Err("no-pod-overrides")
    );
    // The debug switch is implemented, on the pod or on its namespace.
    assert_eq!(
        covers(
            &pod(
                json!({"config.linkerd.io/enable-debug-sidecar": "true"}),
                app()
            ),
            &[
                (a::INJECT, "enabled"),
                (overrides::ENABLE_DEBUG_SIDECAR, "true")
            ],
            &v
        ),
        Ok(())
    );
    assert_eq!(
        covers(
            &pod(json!({}), app()),
            &[(a::INJECT, "enabled"), (overrides::OPAQUE_PORTS, "1")],
            &v
        ),
        Err("no-namespace-overrides")
    );
}

#[test]
fn the_token_condition_exists_only_with_projection_off() {
    let on = values("");
    let off = values("identity:\n  serviceAccountTokenProjection: false\n");
    let names = |v: &Values| -> Vec<String> {
        let g = generate(&options(v)).expect("a policy");
        g.policy["spec"]["matchConditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!names(&on).contains(&"service-account-token-mounted".to_string()));
    assert!(names(&off).contains(&"service-account-token-mounted".to_string()));
    let mut tokenless = app();
    tokenless["automountServiceAccountToken"] = json!(false);
    let enabled = [(a::INJECT, "enabled")];
    assert_eq!(
        covers(&pod(json!({}), tokenless.clone()), &enabled, &on),
        Ok(())
    );
    assert_eq!(
        covers(&pod(json!({}), tokenless), &enabled, &off),
        Err("service-account-token-mounted")
    );
}

#[test]
fn with_tracing_on_trace_attribute_annotations_are_overrides() {
    let v = values(
        "proxy:\n  tracing:\n    enabled: true\n    collector:\n      endpoint: c:4317\n      meshIdentity:\n        serviceAccountName: c\n        namespace: t\n",
    );
    let g = generate(&options(&v)).expect("a policy with tracing");
    let text = g.policy.to_string();
    assert!(
        text.contains("variables.traceAttributes"),
        "the proxy's attributes are computed"
    );
    let enabled = [(a::INJECT, "enabled")];
    let otel = json!({"resource.opentelemetry.io/team": "a"});
    assert_eq!(
        covers(&pod(otel.clone(), app()), &enabled, &v),
        Err("no-pod-overrides")
    );
    assert_eq!(covers(&pod(otel, app()), &enabled, &values("")), Ok(()));
}

#[test]
fn the_policy_states_what_it_was_made_from() {
    let v = values("");
    let g = generate(&options(&v)).unwrap();
    let ann = &g.policy["metadata"]["annotations"];
    assert_eq!(ann[LINKERD_VERSION_ANNOTATION], json!("test"));
    assert_eq!(
        ann[CONFIG_HASH_ANNOTATION],
        json!(config_hash(&v, "linkerd"))
    );
    let other = values("proxy:\n  logLevel: debug\n");
    assert_ne!(config_hash(&v, "linkerd"), config_hash(&other, "linkerd"));
    assert_ne!(config_hash(&v, "linkerd"), config_hash(&v, "mesh"));
    assert_eq!(
        g.binding["spec"]["policyName"],
        json!("linkerd-proxy-injector")
    );
}

#[test]
fn comprehension_depth_counts_nested_macros_only() {
    assert_eq!(comprehension_depth("size(x) > 0"), 0);
    assert_eq!(comprehension_depth("l.map(c, c.x)"), 1);
    assert_eq!(
        comprehension_depth("l.map(c, f(c).filter(p, p > 0)).exists(x, x)"),
        2
    );
    assert_eq!(comprehension_depth("l.map(c, \".map(\" + c)"), 1);
    assert_eq!(
        comprehension_depth("a.all(x, x.b.exists(y, y.c.map(z, z)))"),
        3
    );
}
