//! The override registry: every annotation that changes how one pod's proxy is rendered,
//! each defined once, in Linkerd's order (docs/behaviour.md §6.2).
//!
//! An [`Override`] says everything about its annotation: its key, whether a pod inherits it
//! from its namespace in the webhook (docs/behaviour.md §6.1), how its value is parsed and
//! applied to the Values (a bad value is ignored, with a [`Warning`] where upstream logs one),
//! and how a change the CLI's flags made to the Values is written back as the annotation
//! (docs/behaviour.md §6.4), so that the cluster's injector renders the same proxy. [`apply`],
//! [`write_back`], [`is_inherited`] and `check`'s annotation lint are loops over [`OVERRIDES`].
//!
//! Adding an override means adding one entry here (plus the Values field and the renderer, if
//! the setting is new) and its cases in `tests.rs` beside this file.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::Values;
use crate::annotations as a;
use crate::parse;
use crate::render::RenderError;

/// The annotations of one pod as strings, keyed by name.
pub type Annotations = BTreeMap<String, String>;

/// Looks up a container port by name (for `opaque-ports` entries like `mysql`).
pub trait NamedPorts {
    fn port_by_name(&self, name: &str) -> Option<i64>;
}

// Keys that code outside this registry names (the decision, the webhook's default list, the
// CLI's own flags, `check`'s port lint); every other key appears only in its entry below.

/// Ports whose traffic the proxy does not try to detect; also the webhook's default list.
pub const OPAQUE_PORTS: &str = "config.linkerd.io/opaque-ports";
/// Inbound ports the init container leaves alone (`check` lints entries against the pod).
pub const SKIP_INBOUND_PORTS: &str = "config.linkerd.io/skip-inbound-ports";
/// Adds the `linkerd-debug` container (written by the CLI's `--enable-debug-sidecar`).
pub const ENABLE_DEBUG_SIDECAR: &str = "config.linkerd.io/enable-debug-sidecar";
/// The init container's close-wait timeout (written by the CLI's `--close-wait-timeout`).
pub const CLOSE_WAIT_TIMEOUT: &str = "config.linkerd.io/close-wait-timeout";
const LOG_HTTP_HEADERS: &str = "config.linkerd.io/proxy-log-http-headers";
const NATIVE_SIDECAR: &str = "config.linkerd.io/proxy-enable-native-sidecar";
const NATIVE_SIDECAR_BETA: &str = "config.beta.linkerd.io/proxy-enable-native-sidecar";
const ADDITIONAL_ENV: &str = "config.linkerd.io/proxy-additional-env";

/// Default inbound policies a pod may ask for.
pub const INBOUND_POLICIES: &[&str] = &[
    "all-unauthenticated",
    "all-authenticated",
    "cluster-unauthenticated",
    "cluster-authenticated",
    "deny",
    "audit",
];

/// One annotation that overrides the Values for one pod.
pub struct Override {
    pub key: &'static str,
    /// A pod inherits the namespace's value when it has none of its own (webhook only).
    pub inherited: bool,
    /// Keys whose presence hides this one, even with an invalid value (the native-sidecar
    /// switch is read from the stable key, else beta, else alpha: docs/differences.md Q-29).
    pub hidden_by: &'static [&'static str],
    /// Parses the value and applies it; problems go to [`Target::warn`].
    apply: fn(&mut Target<'_>, &str),
    /// The annotation value that carries a difference the CLI's flags made to the Values, or
    /// `None` when the setting did not change (or no flag can change it).
    write_back: Option<fn(&Values, &Values) -> Option<String>>,
}

impl Override {
    /// Whether a CLI flag's change to the setting is written back as this annotation.
    pub fn is_written_back(&self) -> bool {
        self.write_back.is_some()
    }
}

/// What an override's `apply` works on: the pod's Values so far, and what it may read.
pub struct Target<'a> {
    pub values: Values,
    /// `enable-debug-sidecar`: not a Values setting, a per-pod switch.
    pub debug_sidecar: bool,
    ports: &'a dyn NamedPorts,
    namespace: Option<&'a Annotations>,
    key: &'static str,
    warnings: Vec<Warning>,
}

impl Target<'_> {
    fn warn(&mut self, problem: Problem) {
        self.warnings.push(Warning {
            annotation: self.key,
            problem,
        });
    }
}

/// An annotation value that was ignored (in part or in whole), and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Warning {
    pub annotation: &'static str,
    pub problem: Problem,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// Not one of the values the annotation takes.
    Unrecognized(String),
    /// Does not parse as `what` ("a duration", "a quantity", ...).
    NotA { value: String, what: &'static str },
    /// Not a JSON list of EnvVar objects.
    InvalidJson(String),
    /// Anything else, said in full.
    Other(String),
}

/// Upstream's log texts, kept so that operators' searches still match.
impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.annotation;
        match &self.problem {
            Problem::Unrecognized(v) => {
                write!(f, "unrecognized value used for the {key} annotation: {v}")
            }
            Problem::NotA { value, what } => write!(
                f,
                "unrecognized value used for the {key} annotation, {value:?} is not {what}"
            ),
            Problem::InvalidJson(e) => write!(f, "invalid JSON in {key} annotation: {e}"),
            Problem::Other(text) => write!(f, "{key}: {text}"),
        }
    }
}

/// One pod's Values after its overrides, and what was ignored on the way.
#[derive(Clone, Debug)]
pub struct Effective {
    pub values: Values,
    pub debug_sidecar: bool,
    pub warnings: Vec<Warning>,
}

/// Applies the overrides in `ann` (the pod's effective annotations) to `values`, in registry
/// order. `namespace` is the namespace's annotations in the webhook (its additional env is
/// merged before the pod's), `None` in the CLI.
pub fn apply(
    values: Values,
    ann: &Annotations,
    ports: &dyn NamedPorts,
    namespace: Option<&Annotations>,
) -> Effective {
    let mut t = Target {
        values,
        debug_sidecar: false,
        ports,
        namespace,
        key: "",
        warnings: Vec::new(),
    };
    for o in OVERRIDES {
        if o.hidden_by.iter().any(|k| ann.contains_key(*k)) {
            continue;
        }
        if let Some(v) = ann.get(o.key) {
            t.key = o.key;
            (o.apply)(&mut t, v);
        }
    }
    // Not a `config.linkerd.io/*` key: a family of trace attributes, read only with tracing on.
    if let Some(tracing) = t.values.proxy.tracing.as_mut() {
        for (k, v) in ann {
            if let Some(attr) = k.strip_prefix(a::OTEL_RESOURCE_PREFIX) {
                tracing.labels.insert(attr.to_string(), v.clone());
            }
        }
    }
    Effective {
        values: t.values,
        debug_sidecar: t.debug_sidecar,
        warnings: t.warnings,
    }
}

/// The override annotations for the differences between `before` and `after` (the CLI's
/// Values before and after its flags), one per setting that changed.
pub fn write_back(before: &Values, after: &Values) -> Annotations {
    OVERRIDES
        .iter()
        .filter_map(|o| {
            let value = (o.write_back?)(before, after)?;
            Some((o.key.to_string(), value))
        })
        .collect()
}

/// Whether [`apply`] reads `key`, from the pod's annotations or its namespace's: the
/// annotations that decide a pod's effective Values (and so whether two pods share one).
pub fn reads(key: &str) -> bool {
    key.starts_with(a::OTEL_RESOURCE_PREFIX)
        || OVERRIDES
            .iter()
            .any(|o| o.key == key || o.hidden_by.contains(&key))
}

/// Whether a pod inherits `key` from its namespace (docs/behaviour.md §6.1).
pub fn is_inherited(key: &str) -> bool {
    OVERRIDES.iter().any(|o| o.inherited && o.key == key)
}

/// Every key [`apply`] reads from a pod's annotations, in registry order (the trace
/// attributes' prefix aside; they are read only with tracing on).
pub fn keys() -> impl Iterator<Item = &'static str> {
    OVERRIDES
        .iter()
        .flat_map(|o| std::iter::once(o.key).chain(o.hidden_by.iter().copied()))
}

/// Whether a namespace's annotation `key` reaches its pods' rendering: inherited by a pod
/// that lacks it, or read beside the pod's own value (`proxy-additional-env`).
pub fn reads_from_namespace(key: &str) -> bool {
    is_inherited(key) || key == ADDITIONAL_ENV
}

/// The keys a pod inherits from its namespace, in registry order.
pub fn inherited() -> impl Iterator<Item = &'static str> {
    OVERRIDES.iter().filter(|o| o.inherited).map(|o| o.key)
}

/// The annotation a rendering error comes from, when a pod's annotation can cause it: the
/// webhook then denies the pod naming it, rather than blaming the config (docs/behaviour.md
/// D-2).
pub fn blamed_annotation(e: &RenderError) -> Option<&'static str> {
    match e {
        RenderError::LogHttpHeaders => Some(LOG_HTTP_HEADERS),
        RenderError::CloseWaitNeedsRoot => Some(CLOSE_WAIT_TIMEOUT),
        _ => None,
    }
}

/// `Some(after)` as text when the setting changed.
fn changed<T: PartialEq + ToString>(before: &T, after: &T) -> Option<String> {
    (before != after).then(|| after.to_string())
}

/// A value that does not parse is ignored silently, as upstream does for these settings.
fn set_or_ignore<T>(t: &mut Target<'_>, parsed: Option<T>, field: fn(&mut Values) -> &mut T) {
    if let Some(value) = parsed {
        *field(&mut t.values) = value;
    }
}

fn set_bool(t: &mut Target<'_>, v: &str, field: fn(&mut Values) -> &mut bool) {
    match parse::go_bool(v) {
        Some(b) => *field(&mut t.values) = b,
        None => t.warn(Problem::NotA {
            value: v.into(),
            what: "a boolean",
        }),
    }
}

/// `enabled` / `disabled`.
fn set_switch(t: &mut Target<'_>, v: &str, field: fn(&mut Values) -> &mut bool) {
    match v {
        "enabled" => *field(&mut t.values) = true,
        "disabled" => *field(&mut t.values) = false,
        _ => t.warn(Problem::Unrecognized(v.into())),
    }
}

/// A Go duration, stored as `<N>ms` or (`seconds`) as whole `<N>s`.
fn set_duration(t: &mut Target<'_>, v: &str, seconds: bool, field: fn(&mut Values) -> &mut String) {
    match parse::go_duration(v) {
        Some(d) if seconds => *field(&mut t.values) = d.seconds_text(),
        Some(d) => *field(&mut t.values) = d.millis_text(),
        None => t.warn(Problem::NotA {
            value: v.into(),
            what: "a duration",
        }),
    }
}

/// A Kubernetes quantity, validated and kept as written.
fn set_quantity(t: &mut Target<'_>, v: &str, field: fn(&mut Values) -> &mut String) {
    match parse::quantity(v) {
        Some(_) => *field(&mut t.values) = v.to_string(),
        None => t.warn(Problem::NotA {
            value: v.into(),
            what: "a quantity",
        }),
    }
}

/// A CPU quantity: kept as written, and rounded up into a worker count.
fn set_cpu(t: &mut Target<'_>, v: &str, field: fn(&mut Values) -> (&mut String, &mut i64)) {
    let Some(q) = parse::quantity(v) else {
        return t.warn(Problem::NotA {
            value: v.into(),
            what: "a quantity",
        });
    };
    let cores = q.ceil();
    let (quantity, workers) = field(&mut t.values);
    *quantity = v.to_string();
    *workers = cores.unwrap_or(0);
    if cores.is_none() {
        t.warn(Problem::Other(format!(
            "cannot round {v:?} to a core count"
        )));
    }
}

/// The fields an entry that needs nothing special leaves at their defaults.
const BASE: Override = Override {
    key: "",
    inherited: true,
    hidden_by: &[],
    apply: |_, _| {},
    write_back: None,
};

/// Every override, in the order Linkerd applies them (it matters only for CPU: the request
/// sets the minimum worker count, the limit the maximum).
pub static OVERRIDES: &[Override] = &[
    Override {
        // Decides injection (docs/behaviour.md §5.3); `ingress` also turns on ingress mode,
        // which is never turned off again.
        key: a::INJECT,
        apply: |t, v| {
            if v == a::INJECT_INGRESS {
                t.values.proxy.is_ingress = true;
            }
        },
        write_back: Some(|b, n| {
            (!b.proxy.is_ingress && n.proxy.is_ingress).then(|| a::INJECT_INGRESS.to_string())
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-image",
        apply: |t, v| t.values.proxy.image.name = v.into(),
        write_back: Some(|b, n| changed(&b.proxy.image.name, &n.proxy.image.name)),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-version",
        apply: |t, v| t.values.proxy.image.version = v.into(),
        write_back: Some(|b, n| changed(&b.proxy.image.version, &n.proxy.image.version)),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/image-pull-policy",
        apply: |t, v| t.values.proxy.image.pull_policy = v.into(),
        write_back: Some(|b, n| changed(&b.proxy.image.pull_policy, &n.proxy.image.pull_policy)),
        ..BASE
    },
    // The four ports.
    Override {
        key: "config.linkerd.io/control-port",
        apply: |t, v| set_or_ignore(t, parse::go_i32(v), |x| &mut x.proxy.ports.control),
        write_back: Some(|b, n| changed(&b.proxy.ports.control, &n.proxy.ports.control)),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/inbound-port",
        apply: |t, v| set_or_ignore(t, parse::go_i32(v), |x| &mut x.proxy.ports.inbound),
        write_back: Some(|b, n| changed(&b.proxy.ports.inbound, &n.proxy.ports.inbound)),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/admin-port",
        apply: |t, v| set_or_ignore(t, parse::go_i32(v), |x| &mut x.proxy.ports.admin),
        write_back: Some(|b, n| changed(&b.proxy.ports.admin, &n.proxy.ports.admin)),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/outbound-port",
        apply: |t, v| set_or_ignore(t, parse::go_i32(v), |x| &mut x.proxy.ports.outbound),
        write_back: Some(|b, n| changed(&b.proxy.ports.outbound, &n.proxy.ports.outbound)),
        ..BASE
    },
    Override {
        // Upstream parses it, then overwrites it with the ports it computes: no effect
        // (docs/differences.md Q-1). Inherited all the same.
        key: "config.linkerd.io/pod-inbound-ports",
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-admin-shutdown",
        apply: |t, v| set_switch(t, v, |x| &mut x.proxy.enable_shutdown_endpoint),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-log-level",
        apply: |t, v| t.values.proxy.log_level = v.into(),
        write_back: Some(|b, n| changed(&b.proxy.log_level, &n.proxy.log_level)),
        ..BASE
    },
    Override {
        // Anything but `insecure`, `off` or empty fails rendering ([`blamed_annotation`]).
        key: LOG_HTTP_HEADERS,
        apply: |t, v| t.values.proxy.log_http_headers = v.into(),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-log-format",
        apply: |t, v| t.values.proxy.log_format = v.into(),
        write_back: Some(|b, n| changed(&b.proxy.log_format, &n.proxy.log_format)),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-require-identity-inbound-ports",
        apply: |t, v| t.values.proxy.require_identity_on_inbound_ports = v.into(),
        write_back: Some(|b, n| {
            changed(
                &b.proxy.require_identity_on_inbound_ports,
                &n.proxy.require_identity_on_inbound_ports,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-metrics-hostname-labels",
        apply: |t, v| {
            set_or_ignore(t, parse::go_bool(v), |x| {
                &mut x.proxy.metrics.hostname_labels
            })
        },
        write_back: Some(|b, n| {
            changed(
                &b.proxy.metrics.hostname_labels,
                &n.proxy.metrics.hostname_labels,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-outbound-connect-timeout",
        apply: |t, v| set_duration(t, v, false, |x| &mut x.proxy.outbound_connect_timeout),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-inbound-connect-timeout",
        apply: |t, v| set_duration(t, v, false, |x| &mut x.proxy.inbound_connect_timeout),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-outbound-discovery-cache-unused-timeout",
        apply: |t, v| {
            set_duration(t, v, true, |x| {
                &mut x.proxy.outbound_discovery_cache_unused_timeout
            })
        },
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-inbound-discovery-cache-unused-timeout",
        apply: |t, v| {
            set_duration(t, v, true, |x| {
                &mut x.proxy.inbound_discovery_cache_unused_timeout
            })
        },
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-disable-outbound-protocol-detect-timeout",
        apply: |t, v| {
            set_bool(t, v, |x| {
                &mut x.proxy.disable_outbound_protocol_detect_timeout
            })
        },
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-disable-inbound-protocol-detect-timeout",
        apply: |t, v| {
            set_bool(t, v, |x| {
                &mut x.proxy.disable_inbound_protocol_detect_timeout
            })
        },
        ..BASE
    },
    Override {
        key: "config.linkerd.io/shutdown-grace-period",
        apply: |t, v| set_duration(t, v, false, |x| &mut x.proxy.shutdown_grace_period),
        write_back: Some(|b, n| {
            changed(
                &b.proxy.shutdown_grace_period,
                &n.proxy.shutdown_grace_period,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/enable-gateway",
        inherited: false,
        apply: |t, v| set_or_ignore(t, parse::go_bool(v), |x| &mut x.proxy.is_gateway),
        ..BASE
    },
    Override {
        key: "config.alpha.linkerd.io/proxy-wait-before-exit-seconds",
        apply: |t, v| match parse::go_u64(v) {
            Some(n) => t.values.proxy.wait_before_exit_seconds = n,
            None => t.warn(Problem::NotA {
                value: v.into(),
                what: "an unsigned integer",
            }),
        },
        write_back: Some(|b, n| {
            changed(
                &b.proxy.wait_before_exit_seconds,
                &n.proxy.wait_before_exit_seconds,
            )
        }),
        ..BASE
    },
    // The native-sidecar switch: stable, else beta, else alpha, by presence. A bad value is
    // ignored silently.
    Override {
        key: NATIVE_SIDECAR,
        apply: |t, v| set_or_ignore(t, parse::go_bool(v), |x| &mut x.proxy.native_sidecar),
        write_back: Some(|b, n| changed(&b.proxy.native_sidecar, &n.proxy.native_sidecar)),
        ..BASE
    },
    Override {
        key: NATIVE_SIDECAR_BETA,
        inherited: false,
        hidden_by: &[NATIVE_SIDECAR],
        apply: |t, v| set_or_ignore(t, parse::go_bool(v), |x| &mut x.proxy.native_sidecar),
        ..BASE
    },
    Override {
        key: "config.alpha.linkerd.io/proxy-enable-native-sidecar",
        hidden_by: &[NATIVE_SIDECAR, NATIVE_SIDECAR_BETA],
        apply: |t, v| set_or_ignore(t, parse::go_bool(v), |x| &mut x.proxy.native_sidecar),
        ..BASE
    },
    Override {
        // Also the minimum worker count, rounded up.
        key: "config.linkerd.io/proxy-cpu-request",
        apply: |t, v| {
            set_cpu(t, v, |x| {
                let p = &mut x.proxy;
                (&mut p.resources.cpu.request, &mut p.runtime.workers.minimum)
            })
        },
        write_back: Some(|b, n| {
            changed(
                &b.proxy.resources.cpu.request,
                &n.proxy.resources.cpu.request,
            )
        }),
        ..BASE
    },
    Override {
        // Also the maximum worker count, rounded up.
        key: "config.linkerd.io/proxy-cpu-limit",
        apply: |t, v| {
            set_cpu(t, v, |x| {
                let p = &mut x.proxy;
                (&mut p.resources.cpu.limit, &mut p.runtime.workers.maximum)
            })
        },
        write_back: Some(|b, n| {
            changed(&b.proxy.resources.cpu.limit, &n.proxy.resources.cpu.limit)
        }),
        ..BASE
    },
    Override {
        // Strictly between 0 and 1; NaN is refused (docs/differences.md Q-36).
        key: "config.linkerd.io/proxy-cpu-ratio-limit",
        inherited: false,
        apply: |t, v| match parse::go_f64(v) {
            Some(r) if r > 0.0 && r < 1.0 => t.values.proxy.runtime.workers.maximum_cpu_ratio = r,
            Some(_) => t.warn(Problem::Other(format!(
                "{v:?} must be greater than 0 and less than 1"
            ))),
            None => t.warn(Problem::NotA {
                value: v.into(),
                what: "a number",
            }),
        },
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-memory-request",
        apply: |t, v| set_quantity(t, v, |x| &mut x.proxy.resources.memory.request),
        write_back: Some(|b, n| {
            changed(
                &b.proxy.resources.memory.request,
                &n.proxy.resources.memory.request,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-memory-limit",
        apply: |t, v| set_quantity(t, v, |x| &mut x.proxy.resources.memory.limit),
        write_back: Some(|b, n| {
            changed(
                &b.proxy.resources.memory.limit,
                &n.proxy.resources.memory.limit,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-ephemeral-storage-request",
        apply: |t, v| set_quantity(t, v, |x| &mut x.proxy.resources.ephemeral_storage.request),
        write_back: Some(|b, n| {
            changed(
                &b.proxy.resources.ephemeral_storage.request,
                &n.proxy.resources.ephemeral_storage.request,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-ephemeral-storage-limit",
        apply: |t, v| set_quantity(t, v, |x| &mut x.proxy.resources.ephemeral_storage.limit),
        write_back: Some(|b, n| {
            changed(
                &b.proxy.resources.ephemeral_storage.limit,
                &n.proxy.resources.ephemeral_storage.limit,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-uid",
        apply: |t, v| set_or_ignore(t, parse::go_i64(v), |x| &mut x.proxy.uid),
        write_back: Some(|b, n| changed(&b.proxy.uid, &n.proxy.uid)),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-gid",
        apply: |t, v| set_or_ignore(t, parse::go_i64(v), |x| &mut x.proxy.gid),
        // A negative gid means "none": written only when a real gid is set or changed.
        write_back: Some(|b, n| {
            let (old, new) = (b.proxy.gid, n.proxy.gid);
            (new >= 0 && (old < 0 || old != new)).then(|| new.to_string())
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/enable-external-profiles",
        apply: |t, v| {
            set_or_ignore(t, parse::go_bool(v), |x| {
                &mut x.proxy.enable_external_profiles
            })
        },
        write_back: Some(|b, n| {
            changed(
                &b.proxy.enable_external_profiles,
                &n.proxy.enable_external_profiles,
            )
        }),
        ..BASE
    },
    Override {
        // Not validated, as upstream: the init container gets the text.
        key: SKIP_INBOUND_PORTS,
        apply: |t, v| t.values.proxy_init.ignore_inbound_ports = v.into(),
        write_back: Some(|b, n| {
            changed(
                &b.proxy_init.ignore_inbound_ports,
                &n.proxy_init.ignore_inbound_ports,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/skip-outbound-ports",
        apply: |t, v| t.values.proxy_init.ignore_outbound_ports = v.into(),
        write_back: Some(|b, n| {
            changed(
                &b.proxy_init.ignore_outbound_ports,
                &n.proxy_init.ignore_outbound_ports,
            )
        }),
        ..BASE
    },
    Override {
        // Named ports are resolved against the pod; invalid entries are dropped with a
        // warning each. (A flag's list reaches the Values verbatim: docs/differences.md Q-12.)
        key: OPAQUE_PORTS,
        apply: |t, v| {
            let (list, bad) = resolve_port_list(v, t.ports);
            t.values.proxy.opaque_ports = list;
            for entry in bad {
                t.warn(Problem::Other(format!(
                    "invalid port or range {entry:?}, ignored"
                )));
            }
        },
        write_back: Some(|b, n| changed(&b.proxy.opaque_ports, &n.proxy.opaque_ports)),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/debug-image",
        inherited: false,
        apply: |t, v| t.values.debug_container.image.name = v.into(),
        write_back: Some(|b, n| {
            changed(&b.debug_container.image.name, &n.debug_container.image.name)
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/debug-image-version",
        inherited: false,
        apply: |t, v| t.values.debug_container.image.version = v.into(),
        write_back: Some(|b, n| {
            changed(
                &b.debug_container.image.version,
                &n.debug_container.image.version,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/debug-image-pull-policy",
        inherited: false,
        apply: |t, v| t.values.debug_container.image.pull_policy = v.into(),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/proxy-await",
        apply: |t, v| set_switch(t, v, |x| &mut x.proxy.r#await),
        write_back: Some(|b, n| {
            (b.proxy.r#await != n.proxy.r#await).then(|| {
                if n.proxy.r#await {
                    "enabled"
                } else {
                    "disabled"
                }
                .to_string()
            })
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/default-inbound-policy",
        apply: |t, v| {
            if INBOUND_POLICIES.contains(&v) {
                t.values.proxy.default_inbound_policy = v.into();
            } else {
                t.warn(Problem::Unrecognized(v.into()));
            }
        },
        write_back: Some(|b, n| {
            changed(
                &b.proxy.default_inbound_policy,
                &n.proxy.default_inbound_policy,
            )
        }),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/skip-subnets",
        apply: |t, v| t.values.proxy_init.skip_subnets = v.into(),
        ..BASE
    },
    Override {
        key: "config.linkerd.io/access-log",
        apply: |t, v| t.values.proxy.access_log = v.into(),
        write_back: Some(|b, n| changed(&b.proxy.access_log, &n.proxy.access_log)),
        ..BASE
    },
    Override {
        // Merged into the Helm list by name; in the webhook the namespace's list first, then
        // the pod's (an inherited value is then merged twice, which changes nothing).
        key: ADDITIONAL_ENV,
        apply: |t, v| {
            if let Some(ns) = t.namespace.and_then(|ns| ns.get(ADDITIONAL_ENV)).cloned() {
                merge_additional_env(t, &ns);
            }
            merge_additional_env(t, v);
        },
        ..BASE
    },
    Override {
        // Read only when not empty; a bad value means no debug container.
        key: ENABLE_DEBUG_SIDECAR,
        apply: |t, v| {
            if v.is_empty() {
                return;
            }
            match parse::go_bool(v) {
                Some(b) => t.debug_sidecar = b,
                None => t.warn(Problem::Unrecognized(v.into())),
            }
        },
        ..BASE
    },
    Override {
        // Read only when not empty; needs `proxyInit.runAsRoot` ([`blamed_annotation`]).
        key: CLOSE_WAIT_TIMEOUT,
        inherited: false,
        apply: |t, v| {
            if v.is_empty() {
                return;
            }
            match parse::go_duration(v) {
                Some(d) => t.values.proxy_init.close_wait_timeout_secs = d.whole_seconds(),
                None => t.warn(Problem::NotA {
                    value: v.into(),
                    what: "a duration",
                }),
            }
        },
        ..BASE
    },
];

/// Merges a `proxy-additional-env` JSON list into `proxy.additionalEnv`: an entry replaces the
/// one with the same name in place, otherwise it is appended. A bad list is ignored whole.
fn merge_additional_env(t: &mut Target<'_>, json: &str) {
    let list: Vec<Value> = match serde_json::from_str(json) {
        Ok(list) => list,
        Err(e) => return t.warn(Problem::InvalidJson(e.to_string())),
    };
    if let Some(bad) = list
        .iter()
        .position(|e| !e.get("name").is_some_and(Value::is_string))
    {
        return t.warn(Problem::InvalidJson(format!(
            "entry {bad} has no string \"name\""
        )));
    }
    let dst = &mut t.values.proxy.additional_env;
    for entry in list {
        let name = entry.get("name").cloned();
        match dst.iter_mut().find(|d| d.get("name") == name.as_ref()) {
            Some(slot) => *slot = entry,
            None => dst.push(entry),
        }
    }
}

/// Resolves an `opaque-ports` value (docs/behaviour.md A.5): named container ports become
/// numbers, ranges are checked; returns the list (order and duplicates kept) and the entries
/// that were dropped.
pub fn resolve_port_list<'v>(v: &'v str, ports: &dyn NamedPorts) -> (String, Vec<&'v str>) {
    let v = v.strip_suffix(',').unwrap_or(v);
    let mut out: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    for entry in v.split(',').map(str::trim) {
        if let Some(n) = ports.port_by_name(entry).filter(|_| !entry.is_empty()) {
            out.push(n.to_string());
            continue;
        }
        match port_range(entry) {
            Some((l, u)) if l == u => out.push(l.to_string()),
            Some((l, u)) => out.push(format!("{l}-{u}")),
            None => bad.push(entry),
        }
    }
    (out.join(","), bad)
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

#[cfg(test)]
mod tests;
