//! The `linkerd-proxy` container (docs/behaviour.md §7.2) and its environment (docs/behaviour.md
//! §7.3).
//!
//! The env list is long and its order is part of parity; it is written out here in one
//! function, top to bottom, in Linkerd's order, with each condition next to its variable.

use serde_json::{json, Map, Value};

use super::{image, resources, tracing_enabled, PodFacts};
use crate::annotations as a;
use crate::config::Values;
use crate::parse;

/// The proxy container for the effective `values`, `native` or classic placement.
pub fn proxy_container(values: &Values, facts: &PodFacts, control_plane_ns: &str) -> Value {
    let p = &values.proxy;
    let admin = p.ports.admin;
    let native = p.native_sidecar;
    let mut c = Map::new();
    c.insert(
        "env".into(),
        Value::Array(env(values, facts, control_plane_ns)),
    );
    c.insert(
        "image".into(),
        image(&p.image.name, values.proxy_version()).into(),
    );
    c.insert("imagePullPolicy".into(), values.proxy_pull_policy().into());
    if !native && (p.r#await || p.wait_before_exit_seconds > 0) {
        let mut lifecycle = Map::new();
        if p.r#await {
            lifecycle.insert(
                "postStart".into(),
                json!({"exec": {"command": [
                    "/usr/lib/linkerd/linkerd-await", "--timeout=2m", format!("--port={admin}")
                ]}}),
            );
        }
        if p.wait_before_exit_seconds > 0 {
            lifecycle.insert(
                "preStop".into(),
                json!({"exec": {"command": ["/bin/sleep", p.wait_before_exit_seconds.to_string()]}}),
            );
        }
        c.insert("lifecycle".into(), Value::Object(lifecycle));
    }
    c.insert(
        "livenessProbe".into(),
        json!({
            "httpGet": {"path": "/live", "port": admin},
            "initialDelaySeconds": p.liveness_probe.initial_delay_seconds,
            "timeoutSeconds": p.liveness_probe.timeout_seconds,
        }),
    );
    c.insert("name".into(), a::PROXY_CONTAINER.into());
    c.insert(
        "ports".into(),
        json!([
            {"containerPort": p.ports.inbound, "name": "linkerd-proxy"},
            {"containerPort": admin, "name": "linkerd-admin"},
        ]),
    );
    c.insert(
        "readinessProbe".into(),
        json!({
            "httpGet": {"path": "/ready", "port": admin},
            "initialDelaySeconds": p.readiness_probe.initial_delay_seconds,
            "timeoutSeconds": p.readiness_probe.timeout_seconds,
        }),
    );
    if let Some(r) = resources(values) {
        c.insert("resources".into(), r);
    }
    if native {
        c.insert("restartPolicy".into(), "Always".into());
    }
    c.insert("securityContext".into(), security_context(values, facts));
    if native && p.r#await {
        c.insert(
            "startupProbe".into(),
            json!({
                "failureThreshold": p.startup_probe.failure_threshold,
                "httpGet": {"path": "/ready", "port": admin},
                "initialDelaySeconds": p.startup_probe.initial_delay_seconds,
                "periodSeconds": p.startup_probe.period_seconds,
            }),
        );
    }
    c.insert(
        "terminationMessagePolicy".into(),
        "FallbackToLogsOnError".into(),
    );
    let mut mounts = vec![json!({
        "mountPath": "/var/run/linkerd/identity/end-entity",
        "name": a::IDENTITY_END_ENTITY_VOLUME,
    })];
    if tracing_enabled(values) {
        mounts.push(json!({"mountPath": "/var/run/linkerd/podinfo", "name": a::PODINFO_VOLUME}));
    }
    if values.identity.service_account_token_projection {
        mounts.push(
            json!({"mountPath": "/var/run/secrets/tokens", "name": a::IDENTITY_TOKEN_VOLUME}),
        );
    }
    if let Some(m) = &facts.sa_mount {
        mounts.push(m.clone());
    }
    c.insert("volumeMounts".into(), Value::Array(mounts));
    Value::Object(c)
}

fn security_context(values: &Values, facts: &PodFacts) -> Value {
    let p = &values.proxy;
    if !p.security_context.is_empty() {
        return Value::Object(p.security_context.clone());
    }
    let mut sc = Map::new();
    sc.insert("allowPrivilegeEscalation".into(), false.into());
    if let Some(caps) = &facts.proxy_capabilities {
        let mut m = Map::new();
        if !caps.add.is_empty() {
            m.insert("add".into(), json!(caps.add));
        }
        if !caps.drop.is_empty() {
            m.insert("drop".into(), json!(caps.drop));
        }
        if !m.is_empty() {
            sc.insert("capabilities".into(), Value::Object(m));
        }
    }
    sc.insert("readOnlyRootFilesystem".into(), true.into());
    if p.gid >= 0 {
        sc.insert("runAsGroup".into(), p.gid.into());
    }
    sc.insert("runAsNonRoot".into(), true.into());
    sc.insert("runAsUser".into(), p.uid.into());
    sc.insert("seccompProfile".into(), json!({"type": "RuntimeDefault"}));
    Value::Object(sc)
}

/// Sets `LINKERD2_PROXY_INBOUND_PORTS` in a rendered proxy: the one pod-dependent value of a
/// proxy rendered once per config (`inject/cache.rs`).
pub fn set_inbound_ports(proxy: &mut Value, ports: &str) {
    let env = proxy.get_mut("env").and_then(Value::as_array_mut);
    for var in env.into_iter().flatten() {
        if var.get("name").and_then(Value::as_str) == Some(INBOUND_PORTS) {
            var["value"] = Value::String(ports.to_string());
        }
    }
}

const INBOUND_PORTS: &str = "LINKERD2_PROXY_INBOUND_PORTS";

fn var(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

fn field_ref(name: &str, path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}})
}

/// The proxy's env, in Linkerd's exact order.
fn env(values: &Values, facts: &PodFacts, ns: &str) -> Vec<Value> {
    let p = &values.proxy;
    let domain = &values.cluster_domain;
    let td = values.trust_domain();
    let ipv6 = !values.disable_ipv6;
    let any = if ipv6 { "[::]" } else { "0.0.0.0" };
    let mut e = Vec::with_capacity(64);

    e.push(field_ref("_pod_name", "metadata.name"));
    e.push(field_ref("_pod_ns", "metadata.namespace"));
    e.push(field_ref("_pod_uid", "metadata.uid"));
    e.push(field_ref("_pod_ip", "status.podIP"));
    e.push(field_ref("_pod_nodeName", "spec.nodeName"));
    e.push(var("_pod_containerName", a::PROXY_CONTAINER));

    // Cores (docs/behaviour.md §7.5): the deprecated fixed count wins; no variables at all when
    // nothing is set.
    let w = &p.runtime.workers;
    if p.cores != 0 {
        e.push(var("LINKERD2_PROXY_CORES", p.cores.to_string()));
        e.push(var("LINKERD2_PROXY_CORES_MIN", p.cores.to_string()));
    } else if w.minimum != 0 || w.maximum != 0 || w.maximum_cpu_ratio != 0.0 {
        let min = if w.minimum != 0 { w.minimum } else { 1 };
        e.push(var("LINKERD2_PROXY_CORES", min.to_string()));
        e.push(var("LINKERD2_PROXY_CORES_MIN", min.to_string()));
        if w.maximum != 0 {
            e.push(var("LINKERD2_PROXY_CORES_MAX", w.maximum.to_string()));
        }
        if w.maximum_cpu_ratio != 0.0 {
            e.push(var(
                "LINKERD2_PROXY_CORES_MAX_RATIO",
                parse::go_float(w.maximum_cpu_ratio),
            ));
        }
    }
    if !p.require_identity_on_inbound_ports.is_empty() {
        e.push(var(
            "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY",
            &p.require_identity_on_inbound_ports,
        ));
    }
    e.push(var(
        "LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED",
        p.enable_shutdown_endpoint.to_string(),
    ));
    let headers = if p.log_http_headers == "insecure" {
        ""
    } else {
        ",[{headers}]=off,[{request}]=off"
    };
    e.push(var(
        "LINKERD2_PROXY_LOG",
        format!("{}{headers}", p.log_level),
    ));
    e.push(var("LINKERD2_PROXY_LOG_FORMAT", &p.log_format));
    e.push(var(
        "LINKERD2_PROXY_DESTINATION_SVC_ADDR",
        format!("linkerd-dst-headless.{ns}.svc.{domain}.:8086"),
    ));
    e.push(var(
        "LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS",
        &values.cluster_networks,
    ));
    e.push(var(
        "LINKERD2_PROXY_POLICY_SVC_ADDR",
        format!("linkerd-policy.{ns}.svc.{domain}.:8090"),
    ));
    e.push(var(
        "LINKERD2_PROXY_POLICY_WORKLOAD",
        "{\"ns\":\"$(_pod_ns)\", \"pod\":\"$(_pod_name)\"}\n",
    ));
    e.push(var(
        "LINKERD2_PROXY_INBOUND_DEFAULT_POLICY",
        &p.default_inbound_policy,
    ));
    e.push(var(
        "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS",
        &values.cluster_networks,
    ));
    let streams = &p.control.streams;
    e.push(var(
        "LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT",
        &streams.initial_timeout,
    ));
    e.push(var(
        "LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT",
        &streams.idle_timeout,
    ));
    e.push(var(
        "LINKERD2_PROXY_CONTROL_STREAM_LIFETIME",
        &streams.lifetime,
    ));
    for (name, v) in [
        (
            "LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT",
            &p.inbound_connect_timeout,
        ),
        (
            "LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT",
            &p.outbound_connect_timeout,
        ),
        (
            "LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT",
            &p.outbound_discovery_cache_unused_timeout,
        ),
        (
            "LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT",
            &p.inbound_discovery_cache_unused_timeout,
        ),
    ] {
        if !v.is_empty() {
            e.push(var(name, v));
        }
    }
    if p.disable_outbound_protocol_detect_timeout {
        e.push(var("LINKERD2_PROXY_OUTBOUND_DETECT_TIMEOUT", "365d"));
    }
    if p.disable_inbound_protocol_detect_timeout {
        e.push(var("LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT", "365d"));
    }
    e.push(var(
        "LINKERD2_PROXY_CONTROL_LISTEN_ADDR",
        format!("{any}:{}", p.ports.control),
    ));
    e.push(var(
        "LINKERD2_PROXY_ADMIN_LISTEN_ADDR",
        format!("{any}:{}", p.ports.admin),
    ));
    let out = p.ports.outbound;
    e.push(var(
        "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR",
        format!("127.0.0.1:{out}"),
    ));
    let addrs = if ipv6 {
        format!("127.0.0.1:{out},[::1]:{out}")
    } else {
        format!("127.0.0.1:{out}")
    };
    e.push(var("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS", addrs));
    e.push(var(
        "LINKERD2_PROXY_INBOUND_LISTEN_ADDR",
        format!("{any}:{}", p.ports.inbound),
    ));
    e.push(field_ref("LINKERD2_PROXY_INBOUND_IPS", "status.podIPs"));
    e.push(var(INBOUND_PORTS, &facts.inbound_ports));
    if p.is_gateway {
        e.push(var(
            "LINKERD2_PROXY_INBOUND_GATEWAY_SUFFIXES",
            format!("svc.{domain}."),
        ));
    }
    if p.is_ingress {
        e.push(var("LINKERD2_PROXY_INGRESS_MODE", "true"));
    }
    let suffixes = if p.enable_external_profiles {
        ".".to_string()
    } else {
        format!("svc.{domain}.")
    };
    e.push(var("LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", suffixes));
    e.push(var("LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE", "10000ms"));
    e.push(var("LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE", "10000ms"));
    e.push(var("LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT", "30s"));
    e.push(var("LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT", "30s"));
    e.push(var(
        "LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS",
        p.metrics.hostname_labels.to_string(),
    ));
    if let Some(t) = p.tracing.as_ref().filter(|t| t.enabled) {
        e.push(var(
            "LINKERD2_PROXY_TRACE_ATTRIBUTES_PATH",
            "/var/run/linkerd/podinfo/labels",
        ));
        // Upstream points at annotations although the volume only has labels (docs/differences.md
        //
        e.push(var(
            "LINKERD2_PROXY_TRACE_ANNOTATIONS_PATH",
            "/var/run/linkerd/podinfo/annotations",
        ));
        let protocol = if t.protocol.is_empty() {
            "opentelemetry"
        } else {
            &t.protocol
        };
        e.push(var("LINKERD2_PROXY_TRACE_PROTOCOL", protocol));
        e.push(var(
            "LINKERD2_PROXY_TRACE_SERVICE_NAME",
            &t.trace_service_name,
        ));
        e.push(var(
            "LINKERD2_PROXY_TRACE_COLLECTOR_SVC_ADDR",
            &t.collector.endpoint,
        ));
        let mi = &t.collector.mesh_identity;
        e.push(var(
            "LINKERD2_PROXY_TRACE_COLLECTOR_SVC_NAME",
            format!(
                "{}.{}.serviceaccount.identity.{ns}.{td}",
                mi.service_account_name, mi.namespace
            ),
        ));
        let mut labels = t.labels.clone();
        if let Some(name) = &facts.service_name {
            labels.insert("service.name".into(), name.clone());
        }
        let text: String = labels.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        e.push(var("LINKERD2_PROXY_TRACE_EXTRA_ATTRIBUTES", text));
    }
    params(&mut e, "INBOUND", &p.inbound);
    params(&mut e, "OUTBOUND", &p.outbound);
    if !p.opaque_ports.is_empty() {
        e.push(var(
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            &p.opaque_ports,
        ));
    }
    e.push(var(
        "LINKERD2_PROXY_DESTINATION_CONTEXT",
        "{\"ns\":\"$(_pod_ns)\", \"nodeName\":\"$(_pod_nodeName)\", \"pod\":\"$(_pod_name)\"}\n",
    ));
    e.push(field_ref("_pod_sa", "spec.serviceAccountName"));
    e.push(var("_l5d_ns", ns));
    e.push(var("_l5d_trustdomain", td));
    e.push(var(
        "LINKERD2_PROXY_IDENTITY_DIR",
        "/var/run/linkerd/identity/end-entity",
    ));
    e.push(var(
        "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
        format!("{}\n", values.identity_trust_anchors_pem.trim()),
    ));
    let token = if values.identity.service_account_token_projection {
        "/var/run/secrets/tokens/linkerd-identity-token"
    } else {
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    };
    e.push(var("LINKERD2_PROXY_IDENTITY_TOKEN_FILE", token));
    e.push(var(
        "LINKERD2_PROXY_IDENTITY_SVC_ADDR",
        format!("linkerd-identity-headless.{ns}.svc.{domain}.:8080"),
    ));
    e.push(var(
        "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
        format!("$(_pod_sa).$(_pod_ns).serviceaccount.identity.{ns}.{td}"),
    ));
    let svc_name = |sa: &str| format!("{sa}.{ns}.serviceaccount.identity.{ns}.{td}");
    e.push(var(
        "LINKERD2_PROXY_IDENTITY_SVC_NAME",
        svc_name("linkerd-identity"),
    ));
    e.push(var(
        "LINKERD2_PROXY_DESTINATION_SVC_NAME",
        svc_name("linkerd-destination"),
    ));
    e.push(var(
        "LINKERD2_PROXY_POLICY_SVC_NAME",
        svc_name("linkerd-destination"),
    ));
    if !p.access_log.is_empty() {
        e.push(var("LINKERD2_PROXY_ACCESS_LOG", &p.access_log));
    }
    if !p.shutdown_grace_period.is_empty() {
        e.push(var(
            "LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD",
            &p.shutdown_grace_period,
        ));
    }
    e.extend(p.additional_env.iter().cloned());
    e.extend(p.experimental_env.iter().cloned());
    e
}

/// `LINKERD2_PROXY_<DIR>_<SCOPE>_<PROTO>_<PARAM>` for each leaf of a params map, keys sorted
/// bytewise at each level (A.9).
fn params(e: &mut Vec<Value>, dir: &str, scopes: &Map<String, Value>) {
    let sorted = |m: &Map<String, Value>| {
        let mut v: Vec<(String, Value)> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let up = |s: &str| parse::snake_case(s).to_uppercase();
    for (scope, protos) in sorted(scopes) {
        let Some(protos) = protos.as_object() else {
            continue;
        };
        for (proto, params) in sorted(protos) {
            let Some(params) = params.as_object() else {
                continue;
            };
            for (param, v) in sorted(params) {
                let name = format!(
                    "LINKERD2_PROXY_{dir}_{}_{}_{}",
                    up(&scope),
                    up(&proto),
                    up(&param)
                );
                e.push(var(&name, param_text(&v)));
            }
        }
    }
}

fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => parse::go_float(f),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
