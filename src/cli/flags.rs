//! Proxy flags of `inject` (docs/behaviour.md §6.4): they change the Values, and every change
//! becomes an override annotation written into the pod templates, so that the cluster's injector
//! (in the default, annotate-only mode) renders the same proxy.

use super::args::InjectArgs;
use super::UsageError;
use crate::annotations as a;
use crate::config::overrides::Annotations;
use crate::config::Values;
use crate::parse;

/// Applies the flags to `values` in Linkerd's order.
pub fn apply(args: &InjectArgs, values: &mut Values) -> Result<(), UsageError> {
    if args.disable_identity == Some(true) {
        return Err(UsageError::Flag(
            "--disable-identity is no longer supported; identity is always required".into(),
        ));
    }
    let p = &mut values.proxy;
    if let Some(v) = &args.proxy_image {
        p.image.name = v.clone();
    }
    if let Some(v) = &args.image_pull_policy {
        values.image_pull_policy = v.clone();
        values.proxy.image.pull_policy = v.clone();
        values.debug_container.image.pull_policy = v.clone();
    }
    let p = &mut values.proxy;
    for (flag, v, port) in [
        ("--inbound-port", args.inbound_port, &mut p.ports.inbound),
        ("--outbound-port", args.outbound_port, &mut p.ports.outbound),
    ] {
        if let Some(v) = v {
            *port = port_flag(flag, v)?;
        }
    }
    if !args.skip_inbound_ports.is_empty() {
        values.proxy_init.ignore_inbound_ports = args.skip_inbound_ports.join(",");
    }
    if !args.skip_outbound_ports.is_empty() {
        values.proxy_init.ignore_outbound_ports = args.skip_outbound_ports.join(",");
    }
    let p = &mut values.proxy;
    if let Some(v) = args.proxy_uid {
        p.uid = v;
    }
    if let Some(v) = args.proxy_gid {
        p.gid = v;
    }
    if let Some(v) = &args.proxy_log_level {
        p.log_level = v.clone();
    }
    for (flag, v, port) in [
        ("--control-port", args.control_port, &mut p.ports.control),
        ("--admin-port", args.admin_port, &mut p.ports.admin),
    ] {
        if let Some(v) = v {
            *port = port_flag(flag, v)?;
        }
    }
    if let Some(v) = &args.proxy_cpu_request {
        p.resources.cpu.request = v.clone();
        p.runtime.workers.minimum = cores("--proxy-cpu-request", v)?;
    }
    if let Some(v) = &args.proxy_cpu_limit {
        p.resources.cpu.limit = v.clone();
        p.runtime.workers.maximum = cores("--proxy-cpu-limit", v)?;
    }
    if let Some(v) = &args.proxy_memory_request {
        p.resources.memory.request = quantity("--proxy-memory-request", v)?;
    }
    if let Some(v) = &args.proxy_memory_limit {
        p.resources.memory.limit = quantity("--proxy-memory-limit", v)?;
    }
    if let Some(v) = args.enable_external_profiles {
        p.enable_external_profiles = v;
    }
    if let Some(v) = &args.default_inbound_policy {
        p.default_inbound_policy = v.clone();
    }
    if let Some(v) = &args.proxy_memory {
        p.resources.memory.request = quantity("--proxy-memory", v)?;
    }
    if let Some(v) = &args.proxy_cpu {
        p.resources.cpu.request = quantity("--proxy-cpu", v)?;
    }
    if let Some(v) = &args.proxy_version {
        p.image.version = v.clone();
    }
    if let Some(registry) = &args.registry {
        let registry = registry.trim_end_matches('/');
        let rebase = |name: &str| format!("{registry}/{}", name.rsplit('/').next().unwrap_or(name));
        values.proxy.image.name = rebase(&values.proxy.image.name);
        values.debug_container.image.name = rebase(&values.debug_container.image.name);
    }
    let p = &mut values.proxy;
    if let Some(v) = args.native_sidecar {
        p.native_sidecar = v;
    }
    if let Some(v) = args.wait_before_exit_seconds {
        // Upstream stores the int64 as unsigned, so -1 wraps (docs/differences.md Q-31): refuse it
        // instead.
        p.wait_before_exit_seconds = u64::try_from(v).map_err(|_| {
            UsageError::Flag(format!(
                "--wait-before-exit-seconds must not be negative, got {v}"
            ))
        })?;
    }
    if !args.require_identity_on_inbound_ports.is_empty() {
        p.require_identity_on_inbound_ports = args.require_identity_on_inbound_ports.join(",");
    }
    if let Some(v) = args.ingress {
        p.is_ingress = v;
    }
    if !args.opaque_ports.is_empty() {
        p.opaque_ports = args.opaque_ports.join(",");
    }
    Ok(())
}

fn port_flag(flag: &str, v: u32) -> Result<i32, UsageError> {
    i32::try_from(v).map_err(|_| UsageError::Flag(format!("invalid {flag} {v}: out of range")))
}

fn quantity(flag: &str, v: &str) -> Result<String, UsageError> {
    match parse::quantity(v) {
        Some(_) => Ok(v.to_string()),
        None => Err(UsageError::Flag(format!(
            "invalid argument {v:?} for {flag}: quantities must match the regular expression \
             '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        ))),
    }
}

fn cores(flag: &str, v: &str) -> Result<i64, UsageError> {
    quantity(flag, v)?;
    parse::quantity(v)
        .and_then(|q| q.ceil())
        .ok_or_else(|| UsageError::Flag(format!("invalid argument {v:?} for {flag}: out of range")))
}

/// The override annotations: one for each Values difference the flags made (docs/behaviour.md
/// §6.4).
pub fn override_annotations(before: &Values, after: &Values) -> Annotations {
    let mut o = Annotations::new();
    let (b, n) = (&before.proxy, &after.proxy);
    let mut set = |key: &str, changed: bool, v: String| {
        if changed {
            o.insert(key.to_string(), v);
        }
    };
    set(
        a::PROXY_IMAGE,
        b.image.name != n.image.name,
        n.image.name.clone(),
    );
    set(
        a::IMAGE_PULL_POLICY,
        b.image.pull_policy != n.image.pull_policy,
        n.image.pull_policy.clone(),
    );
    set(
        a::PROXY_VERSION_OVERRIDE,
        b.image.version != n.image.version,
        n.image.version.clone(),
    );
    set(
        a::INBOUND_PORT,
        b.ports.inbound != n.ports.inbound,
        n.ports.inbound.to_string(),
    );
    set(
        a::OUTBOUND_PORT,
        b.ports.outbound != n.ports.outbound,
        n.ports.outbound.to_string(),
    );
    set(
        a::CONTROL_PORT,
        b.ports.control != n.ports.control,
        n.ports.control.to_string(),
    );
    set(
        a::ADMIN_PORT,
        b.ports.admin != n.ports.admin,
        n.ports.admin.to_string(),
    );
    let (bi, ni) = (&before.proxy_init, &after.proxy_init);
    set(
        a::SKIP_INBOUND_PORTS,
        bi.ignore_inbound_ports != ni.ignore_inbound_ports,
        ni.ignore_inbound_ports.clone(),
    );
    set(
        a::SKIP_OUTBOUND_PORTS,
        bi.ignore_outbound_ports != ni.ignore_outbound_ports,
        ni.ignore_outbound_ports.clone(),
    );
    set(a::PROXY_UID, b.uid != n.uid, n.uid.to_string());
    set(
        a::PROXY_GID,
        n.gid >= 0 && (b.gid < 0 || b.gid != n.gid),
        n.gid.to_string(),
    );
    set(
        a::PROXY_LOG_LEVEL,
        b.log_level != n.log_level,
        n.log_level.clone(),
    );
    set(
        a::PROXY_LOG_FORMAT,
        b.log_format != n.log_format,
        n.log_format.clone(),
    );
    let (br, nr) = (&b.resources, &n.resources);
    set(
        a::PROXY_CPU_REQUEST,
        br.cpu.request != nr.cpu.request,
        nr.cpu.request.clone(),
    );
    set(
        a::PROXY_CPU_LIMIT,
        br.cpu.limit != nr.cpu.limit,
        nr.cpu.limit.clone(),
    );
    set(
        a::PROXY_MEMORY_REQUEST,
        br.memory.request != nr.memory.request,
        nr.memory.request.clone(),
    );
    set(
        a::PROXY_MEMORY_LIMIT,
        br.memory.limit != nr.memory.limit,
        nr.memory.limit.clone(),
    );
    set(
        a::PROXY_EPHEMERAL_STORAGE_REQUEST,
        br.ephemeral_storage.request != nr.ephemeral_storage.request,
        nr.ephemeral_storage.request.clone(),
    );
    set(
        a::PROXY_EPHEMERAL_STORAGE_LIMIT,
        br.ephemeral_storage.limit != nr.ephemeral_storage.limit,
        nr.ephemeral_storage.limit.clone(),
    );
    set(
        a::ENABLE_EXTERNAL_PROFILES,
        b.enable_external_profiles != n.enable_external_profiles,
        n.enable_external_profiles.to_string(),
    );
    set(
        a::DEFAULT_INBOUND_POLICY,
        b.default_inbound_policy != n.default_inbound_policy,
        n.default_inbound_policy.clone(),
    );
    set(
        a::PROXY_ENABLE_NATIVE_SIDECAR,
        b.native_sidecar != n.native_sidecar,
        n.native_sidecar.to_string(),
    );
    set(
        a::PROXY_WAIT_BEFORE_EXIT_SECONDS,
        b.wait_before_exit_seconds != n.wait_before_exit_seconds,
        n.wait_before_exit_seconds.to_string(),
    );
    set(
        a::PROXY_REQUIRE_IDENTITY_INBOUND_PORTS,
        b.require_identity_on_inbound_ports != n.require_identity_on_inbound_ports,
        n.require_identity_on_inbound_ports.clone(),
    );
    set(
        a::INJECT,
        !b.is_ingress && n.is_ingress,
        a::INJECT_INGRESS.to_string(),
    );
    set(
        a::OPAQUE_PORTS,
        b.opaque_ports != n.opaque_ports,
        n.opaque_ports.clone(),
    );
    set(
        a::PROXY_METRICS_HOSTNAME_LABELS,
        b.metrics.hostname_labels != n.metrics.hostname_labels,
        n.metrics.hostname_labels.to_string(),
    );
    set(
        a::PROXY_AWAIT,
        b.r#await != n.r#await,
        if n.r#await { "enabled" } else { "disabled" }.to_string(),
    );
    set(
        a::ACCESS_LOG,
        b.access_log != n.access_log,
        n.access_log.clone(),
    );
    set(
        a::SHUTDOWN_GRACE_PERIOD,
        b.shutdown_grace_period != n.shutdown_grace_period,
        n.shutdown_grace_period.clone(),
    );
    let (bd, nd) = (&before.debug_container.image, &after.debug_container.image);
    set(a::DEBUG_IMAGE, bd.name != nd.name, nd.name.clone());
    set(
        a::DEBUG_IMAGE_VERSION,
        bd.version != nd.version,
        nd.version.clone(),
    );
    o
}

/// Annotations the CLI writes and then reads back like the pod's own (docs/behaviour.md §9.5 step
/// 1).
pub fn scheduled_annotations(args: &InjectArgs) -> Result<Annotations, UsageError> {
    let mut s = Annotations::new();
    if args.enable_debug_sidecar == Some(true) {
        s.insert(a::ENABLE_DEBUG_SIDECAR.into(), "true".into());
    }
    if let Some(v) = &args.close_wait_timeout {
        let d = parse::go_duration(v).ok_or_else(|| {
            UsageError::Flag(format!(
                "invalid argument {v:?} for --close-wait-timeout: not a duration"
            ))
        })?;
        if d.0 != 0 {
            s.insert(a::CLOSE_WAIT_TIMEOUT.into(), d.to_string());
        }
    }
    Ok(s)
}
