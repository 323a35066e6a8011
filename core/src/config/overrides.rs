//! Pod annotations that override the Values for one pod (docs/behaviour.md §6.2).
//!
//! This is where every `config.linkerd.io/*` annotation takes effect: [`apply`] walks them in
//! Linkerd's order (which matters only for CPU: the request sets the minimum worker count and
//! the limit the maximum) and changes a copy of the Values. A bad value is ignored, as upstream
//! does; where upstream logs a warning we return one.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Values;
use crate::annotations as a;
use crate::parse;

/// The annotations of one pod as strings, keyed by name.
pub type Annotations = BTreeMap<String, String>;

/// Looks up a container port by name (for `opaque-ports` entries like `mysql`).
pub trait NamedPorts {
    fn port_by_name(&self, name: &str) -> Option<i64>;
}

/// Default inbound policies a pod may ask for.
pub const INBOUND_POLICIES: &[&str] = &[
    "all-unauthenticated",
    "all-authenticated",
    "cluster-unauthenticated",
    "cluster-authenticated",
    "deny",
    "audit",
];

/// Applies the pod's override annotations to `values`; returns the warnings for bad values.
pub fn apply(values: &mut Values, ann: &Annotations, ports: &dyn NamedPorts) -> Vec<String> {
    let mut w = Vec::new();
    let get = |k: &str| ann.get(k).map(String::as_str);
    let p = &mut values.proxy;

    if get(a::INJECT) == Some(a::INJECT_INGRESS) {
        p.is_ingress = true;
    }
    if let Some(v) = get(a::PROXY_IMAGE) {
        p.image.name = v.to_string();
    }
    if let Some(v) = get(a::PROXY_VERSION_OVERRIDE) {
        p.image.version = v.to_string();
    }
    if let Some(v) = get(a::IMAGE_PULL_POLICY) {
        p.image.pull_policy = v.to_string();
    }
    // Bad port numbers are ignored silently upstream.
    for (key, port) in [
        (a::CONTROL_PORT, &mut p.ports.control),
        (a::INBOUND_PORT, &mut p.ports.inbound),
        (a::ADMIN_PORT, &mut p.ports.admin),
        (a::OUTBOUND_PORT, &mut p.ports.outbound),
    ] {
        if let Some(n) = get(key).and_then(parse::go_i32) {
            *port = n;
        }
    }
    if let Some(v) = get(a::PROXY_ADMIN_SHUTDOWN) {
        match v {
            "enabled" => p.enable_shutdown_endpoint = true,
            "disabled" => p.enable_shutdown_endpoint = false,
            _ => w.push(unrecognized(a::PROXY_ADMIN_SHUTDOWN, v)),
        }
    }
    if let Some(v) = get(a::PROXY_LOG_LEVEL) {
        p.log_level = v.to_string();
    }
    if let Some(v) = get(a::PROXY_LOG_HTTP_HEADERS) {
        p.log_http_headers = v.to_string();
    }
    if let Some(v) = get(a::PROXY_LOG_FORMAT) {
        p.log_format = v.to_string();
    }
    if let Some(v) = get(a::PROXY_REQUIRE_IDENTITY_INBOUND_PORTS) {
        p.require_identity_on_inbound_ports = v.to_string();
    }
    if let Some(b) = get(a::PROXY_METRICS_HOSTNAME_LABELS).and_then(parse::go_bool) {
        p.metrics.hostname_labels = b;
    }
    for (key, field, seconds) in [
        (
            a::PROXY_OUTBOUND_CONNECT_TIMEOUT,
            &mut p.outbound_connect_timeout,
            false,
        ),
        (
            a::PROXY_INBOUND_CONNECT_TIMEOUT,
            &mut p.inbound_connect_timeout,
            false,
        ),
        (
            a::PROXY_OUTBOUND_DISCOVERY_CACHE_UNUSED_TIMEOUT,
            &mut p.outbound_discovery_cache_unused_timeout,
            true,
        ),
        (
            a::PROXY_INBOUND_DISCOVERY_CACHE_UNUSED_TIMEOUT,
            &mut p.inbound_discovery_cache_unused_timeout,
            true,
        ),
    ] {
        if let Some(v) = get(key) {
            match parse::go_duration(v) {
                Some(d) if seconds => *field = d.seconds_text(),
                Some(d) => *field = d.millis_text(),
                None => w.push(unparsable(key, v, "a duration")),
            }
        }
    }
    for (key, field) in [
        (
            a::PROXY_DISABLE_OUTBOUND_PROTOCOL_DETECT_TIMEOUT,
            &mut p.disable_outbound_protocol_detect_timeout,
        ),
        (
            a::PROXY_DISABLE_INBOUND_PROTOCOL_DETECT_TIMEOUT,
            &mut p.disable_inbound_protocol_detect_timeout,
        ),
    ] {
        if let Some(v) = get(key) {
            match parse::go_bool(v) {
                Some(b) => *field = b,
                None => w.push(unparsable(key, v, "a boolean")),
            }
        }
    }
    if let Some(v) = get(a::SHUTDOWN_GRACE_PERIOD) {
        match parse::go_duration(v) {
            Some(d) => p.shutdown_grace_period = d.millis_text(),
            None => w.push(unparsable(a::SHUTDOWN_GRACE_PERIOD, v, "a duration")),
        }
    }
    if let Some(b) = get(a::ENABLE_GATEWAY).and_then(parse::go_bool) {
        p.is_gateway = b;
    }
    if let Some(v) = get(a::PROXY_WAIT_BEFORE_EXIT_SECONDS) {
        match parse::go_u64(v) {
            Some(n) => p.wait_before_exit_seconds = n,
            None => w.push(unparsable(
                a::PROXY_WAIT_BEFORE_EXIT_SECONDS,
                v,
                "an unsigned integer",
            )),
        }
    }
    // Precedence by presence: a present stable key hides beta and alpha, even if invalid.
    let native = [
        a::PROXY_ENABLE_NATIVE_SIDECAR,
        a::PROXY_ENABLE_NATIVE_SIDECAR_BETA,
        a::PROXY_ENABLE_NATIVE_SIDECAR_ALPHA,
    ]
    .into_iter()
    .find_map(get);
    if let Some(b) = native.and_then(parse::go_bool) {
        p.native_sidecar = b;
    }
    // The CPU request sets the minimum worker count, the limit the maximum (rounded up).
    let workers = &mut p.runtime.workers;
    for (key, field, count) in [
        (
            a::PROXY_CPU_REQUEST,
            &mut p.resources.cpu.request,
            &mut workers.minimum,
        ),
        (
            a::PROXY_CPU_LIMIT,
            &mut p.resources.cpu.limit,
            &mut workers.maximum,
        ),
    ] {
        let Some(v) = get(key) else { continue };
        match parse::quantity(v) {
            Some(q) => {
                *field = v.to_string();
                *count = q.ceil().unwrap_or_else(|| {
                    w.push(format!("{key}: cannot round {v:?} to a core count"));
                    0
                });
            }
            None => w.push(unparsable(key, v, "a quantity")),
        }
    }
    if let Some(v) = get(a::PROXY_CPU_RATIO_LIMIT) {
        match parse::go_f64(v) {
            Some(r) if r > 0.0 && r < 1.0 => p.runtime.workers.maximum_cpu_ratio = r,
            Some(_) => w.push(format!(
                "{}: {v:?} must be greater than 0 and less than 1",
                a::PROXY_CPU_RATIO_LIMIT
            )),
            None => w.push(unparsable(a::PROXY_CPU_RATIO_LIMIT, v, "a number")),
        }
    }
    for (key, field) in [
        (a::PROXY_MEMORY_REQUEST, &mut p.resources.memory.request),
        (a::PROXY_MEMORY_LIMIT, &mut p.resources.memory.limit),
        (
            a::PROXY_EPHEMERAL_STORAGE_REQUEST,
            &mut p.resources.ephemeral_storage.request,
        ),
        (
            a::PROXY_EPHEMERAL_STORAGE_LIMIT,
            &mut p.resources.ephemeral_storage.limit,
        ),
    ] {
        if let Some(v) = get(key) {
            match parse::quantity(v) {
                Some(_) => *field = v.to_string(),
                None => w.push(unparsable(key, v, "a quantity")),
            }
        }
    }
    if let Some(n) = get(a::PROXY_UID).and_then(parse::go_i64) {
        p.uid = n;
    }
    if let Some(n) = get(a::PROXY_GID).and_then(parse::go_i64) {
        p.gid = n;
    }
    if let Some(b) = get(a::ENABLE_EXTERNAL_PROFILES).and_then(parse::go_bool) {
        p.enable_external_profiles = b;
    }
    if let Some(v) = get(a::SKIP_INBOUND_PORTS) {
        values.proxy_init.ignore_inbound_ports = v.to_string();
    }
    if let Some(v) = get(a::SKIP_OUTBOUND_PORTS) {
        values.proxy_init.ignore_outbound_ports = v.to_string();
    }
    let p = &mut values.proxy;
    if let Some(v) = get(a::OPAQUE_PORTS) {
        p.opaque_ports = resolve_port_list(v, ports, &mut w);
    }
    if let Some(v) = get(a::DEBUG_IMAGE) {
        values.debug_container.image.name = v.to_string();
    }
    if let Some(v) = get(a::DEBUG_IMAGE_VERSION) {
        values.debug_container.image.version = v.to_string();
    }
    if let Some(v) = get(a::DEBUG_IMAGE_PULL_POLICY) {
        values.debug_container.image.pull_policy = v.to_string();
    }
    let p = &mut values.proxy;
    if let Some(v) = get(a::PROXY_AWAIT) {
        match v {
            "enabled" => p.r#await = true,
            "disabled" => p.r#await = false,
            _ => w.push(unrecognized(a::PROXY_AWAIT, v)),
        }
    }
    if let Some(v) = get(a::DEFAULT_INBOUND_POLICY) {
        if INBOUND_POLICIES.contains(&v) {
            p.default_inbound_policy = v.to_string();
        } else {
            w.push(unrecognized(a::DEFAULT_INBOUND_POLICY, v));
        }
    }
    if let Some(v) = get(a::SKIP_SUBNETS) {
        values.proxy_init.skip_subnets = v.to_string();
    }
    if let Some(v) = get(a::ACCESS_LOG) {
        values.proxy.access_log = v.to_string();
    }
    if let Some(tracing) = values.proxy.tracing.as_mut() {
        for (k, v) in ann {
            if let Some(attr) = k.strip_prefix(a::OTEL_RESOURCE_PREFIX) {
                tracing.labels.insert(attr.to_string(), v.clone());
            }
        }
    }
    w
}

/// Merges a `proxy-additional-env` JSON list into `values.proxy.additionalEnv`: an entry
/// replaces the one with the same name in place, otherwise it is appended.
pub fn merge_additional_env(values: &mut Values, json: &str) -> Result<(), String> {
    let list: Vec<Value> = serde_json::from_str(json).map_err(|e| {
        format!(
            "invalid JSON in {} annotation: {e}",
            a::PROXY_ADDITIONAL_ENV
        )
    })?;
    if let Some(bad) = list
        .iter()
        .position(|e| !e.get("name").is_some_and(Value::is_string))
    {
        return Err(format!(
            "invalid JSON in {} annotation: entry {bad} has no string \"name\"",
            a::PROXY_ADDITIONAL_ENV
        ));
    }
    let dst = &mut values.proxy.additional_env;
    for entry in list {
        let name = entry.get("name").cloned();
        match dst.iter_mut().find(|d| d.get("name") == name.as_ref()) {
            Some(slot) => *slot = entry,
            None => dst.push(entry),
        }
    }
    Ok(())
}

/// Resolves an `opaque-ports` value (A.5): named container ports become numbers, ranges are
/// checked, invalid entries are dropped with a warning; order and duplicates are kept.
pub fn resolve_port_list(v: &str, ports: &dyn NamedPorts, w: &mut Vec<String>) -> String {
    let v = v.strip_suffix(',').unwrap_or(v);
    let mut out: Vec<String> = Vec::new();
    for entry in v.split(',').map(str::trim) {
        if let Some(n) = ports.port_by_name(entry).filter(|_| !entry.is_empty()) {
            out.push(n.to_string());
            continue;
        }
        match port_range(entry) {
            Some((l, u)) if l == u => out.push(l.to_string()),
            Some((l, u)) => out.push(format!("{l}-{u}")),
            None => w.push(format!(
                "{}: invalid port or range {entry:?}, ignored",
                a::OPAQUE_PORTS
            )),
        }
    }
    out.join(",")
}

/// `N` or `L-U`, each 0..=65535, `L <= U`.
pub fn port_range(s: &str) -> Option<(u16, u16)> {
    let mut parts = s.split('-');
    let lo = parts.next()?;
    let hi = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let parse = |t: &str| -> Option<u16> {
        let t = t.strip_prefix('+').unwrap_or(t);
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let l = parse(lo)?;
    let u = match hi {
        Some(h) => parse(h)?,
        None => l,
    };
    (l <= u).then_some((l, u))
}

fn unrecognized(key: &str, v: &str) -> String {
    format!("unrecognized value used for the {key} annotation: {v}")
}

fn unparsable(key: &str, v: &str, what: &str) -> String {
    format!("unrecognized value used for the {key} annotation, {v:?} is not {what}")
}
