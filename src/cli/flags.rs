//! Proxy flags of `inject` (docs/behaviour.md §6.4): they change the Values, and every change
//! becomes an override annotation written into the pod templates (the override registry's
//! `write_back`, in `core/src/config/overrides.rs`), so that the cluster's injector (in the
//! default, annotate-only mode) renders the same proxy.

use super::args::{InjectArgs, ProxyFlags};
use super::UsageError;
use crate::config::overrides::{self, Annotations};
use crate::config::Values;
use crate::parse;

/// Applies the flags to `values` in Linkerd's order.
pub fn apply(args: &ProxyFlags, values: &mut Values) -> Result<(), UsageError> {
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

/// Annotations the CLI writes and then reads back like the pod's own (docs/behaviour.md §9.5 step
/// 1).
pub fn scheduled_annotations(args: &InjectArgs) -> Result<Annotations, UsageError> {
    let mut s = Annotations::new();
    if args.enable_debug_sidecar == Some(true) {
        s.insert(overrides::ENABLE_DEBUG_SIDECAR.into(), "true".into());
    }
    if let Some(v) = &args.close_wait_timeout {
        let d = parse::go_duration(v).ok_or_else(|| {
            UsageError::Flag(format!(
                "invalid argument {v:?} for --close-wait-timeout: not a duration"
            ))
        })?;
        if d.0 != 0 {
            s.insert(overrides::CLOSE_WAIT_TIMEOUT.into(), d.to_string());
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::cli::args::{Cli, Command};
    use crate::cli::pipeline::InjectPlan;

    /// Arguments that are not proxy settings: inputs, config, mode, output, cluster access.
    const NOT_PROXY_FLAGS: &[&str] = &[
        "inputs",
        "values",
        "manual",
        "ignore_cluster",
        "disable_identity",
        "linkerd_namespace",
        "verbose",
        "output",
        "kubeconfig",
        "context",
        "impersonate",
        "impersonate_group",
        "api_addr",
        "cni_namespace",
        "help",
        "version",
    ];

    /// Each proxy flag with a sample value, and the annotations it must write into pod
    /// templates (the registry's write-back, or the CLI's own two).
    const FLAGS: &[(&str, &str, &[&str])] = &[
        (
            "registry",
            "example.com/l5d",
            &[
                "config.linkerd.io/proxy-image",
                "config.linkerd.io/debug-image",
            ],
        ),
        (
            "proxy_image",
            "example/proxy",
            &["config.linkerd.io/proxy-image"],
        ),
        ("proxy_version", "v9", &["config.linkerd.io/proxy-version"]),
        (
            "image_pull_policy",
            "Always",
            &["config.linkerd.io/image-pull-policy"],
        ),
        ("inbound_port", "5143", &["config.linkerd.io/inbound-port"]),
        (
            "outbound_port",
            "5140",
            &["config.linkerd.io/outbound-port"],
        ),
        ("admin_port", "5191", &["config.linkerd.io/admin-port"]),
        ("control_port", "5190", &["config.linkerd.io/control-port"]),
        (
            "skip_inbound_ports",
            "80",
            &["config.linkerd.io/skip-inbound-ports"],
        ),
        (
            "skip_outbound_ports",
            "3306",
            &["config.linkerd.io/skip-outbound-ports"],
        ),
        (
            "require_identity_on_inbound_ports",
            "8080",
            &["config.linkerd.io/proxy-require-identity-inbound-ports"],
        ),
        ("opaque_ports", "3000", &["config.linkerd.io/opaque-ports"]),
        ("proxy_uid", "2103", &["config.linkerd.io/proxy-uid"]),
        ("proxy_gid", "2103", &["config.linkerd.io/proxy-gid"]),
        (
            "proxy_log_level",
            "debug",
            &["config.linkerd.io/proxy-log-level"],
        ),
        (
            "proxy_cpu_request",
            "1",
            &["config.linkerd.io/proxy-cpu-request"],
        ),
        (
            "proxy_cpu_limit",
            "2",
            &["config.linkerd.io/proxy-cpu-limit"],
        ),
        (
            "proxy_memory_request",
            "64Mi",
            &["config.linkerd.io/proxy-memory-request"],
        ),
        (
            "proxy_memory_limit",
            "1Gi",
            &["config.linkerd.io/proxy-memory-limit"],
        ),
        ("proxy_cpu", "1", &["config.linkerd.io/proxy-cpu-request"]),
        (
            "proxy_memory",
            "64Mi",
            &["config.linkerd.io/proxy-memory-request"],
        ),
        (
            "enable_external_profiles",
            "true",
            &["config.linkerd.io/enable-external-profiles"],
        ),
        (
            "default_inbound_policy",
            "deny",
            &["config.linkerd.io/default-inbound-policy"],
        ),
        (
            "native_sidecar",
            "false",
            &["config.linkerd.io/proxy-enable-native-sidecar"],
        ),
        (
            "wait_before_exit_seconds",
            "10",
            &["config.alpha.linkerd.io/proxy-wait-before-exit-seconds"],
        ),
        ("ingress", "true", &["linkerd.io/inject"]),
        (
            "enable_debug_sidecar",
            "true",
            &["config.linkerd.io/enable-debug-sidecar"],
        ),
        (
            "close_wait_timeout",
            "1m",
            &["config.linkerd.io/close-wait-timeout"],
        ),
    ];

    /// A flag that sets a proxy setting and is not written back would be dropped silently in
    /// annotate-only mode: every flag of `inject` is either listed above, with what it writes,
    /// or not a proxy setting.
    #[test]
    fn every_proxy_flag_is_written_into_the_pod_templates() {
        let cli = Cli::command();
        let inject = cli.find_subcommand("inject").expect("an inject subcommand");
        for arg in inject.get_arguments() {
            let id = arg.get_id().as_str();
            assert!(
                NOT_PROXY_FLAGS.contains(&id) || FLAGS.iter().any(|(f, _, _)| *f == id),
                "--{id} is neither a proxy flag with its write-back in FLAGS nor listed as \
                 not a proxy setting"
            );
        }
        for (flag, value, keys) in FLAGS {
            let arg = format!("--{}={value}", flag.replace('_', "-"));
            let cli = Cli::try_parse_from(["proxy-injector", "inject", &arg, "-"])
                .unwrap_or_else(|e| panic!("{arg}: {e}"));
            let Command::Inject(args) = cli.command else {
                panic!("{arg}: not inject");
            };
            let plan = InjectPlan::from_args(&args).unwrap_or_else(|e| panic!("{arg}: {e}"));
            let mut written: Vec<&str> = plan
                .overrides
                .keys()
                .chain(plan.scheduled.keys())
                .map(String::as_str)
                .collect();
            written.sort_unstable();
            let mut expected = keys.to_vec();
            expected.sort_unstable();
            assert_eq!(written, expected, "{arg}");
        }
    }
}
