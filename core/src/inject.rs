//! The core entry point: one object in, a report and an RFC 6902 patch out.
//!
//! [`inject`] is what both front-ends call. It never mutates or re-serialises the object: the
//! CLI applies the patch to its parsed document, the webhook returns it to the API server.
//! Everything about the caller — CLI or webhook, annotate-only or full, which annotations the
//! CLI's flags add — arrives in a [`Request`], built by [`Request::cli`] or
//! [`Request::webhook`].
//!
//! Three steps: [`inject`] takes the decision (`decide.rs`) and, for what is not injected, the
//! caller's rule (the CLI refuses or passes it through, the webhook adds at most the
//! opaque-ports annotation); [`resolve`] computes what an injected pod gets — its effective
//! Values, annotations and labels — once; [`emit`] renders the containers and writes the
//! patch in Linkerd's op order. `check` uses the decision and [`resolve`] directly.

mod cache;

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use cache::{Config, Containers, Counts, RenderCache};

use crate::annotations as a;
use crate::config::overrides::{self, Annotations, Warning};
use crate::config::Values;
use crate::decide::{self, Origin, Report, SkipReason};
use crate::patch::{Added, Patch, PatchBuilder, Shared};
use crate::render::{self, PodFacts, RenderError};
use crate::workload::{self, Category, Identity, PodTemplate, ShapeError};

/// How much to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Proxy, init container, volumes, metadata (webhook; CLI `--manual`).
    Full,
    /// Only `linkerd.io/inject: enabled` and the override annotations (CLI default).
    AnnotateOnly,
}

/// Everything the core needs besides the object. Built by [`Request::cli`] or
/// [`Request::webhook`]: what differs between the two callers is in [`Caller`], and the core
/// reads it in [`inject`] (what to do) and [`resolve`] (what to write).
#[derive(Clone, Debug)]
pub struct Request<'a> {
    values: &'a Values,
    /// The Linkerd control-plane namespace.
    control_plane_ns: &'a str,
    /// The value of `linkerd.io/created-by`.
    created_by: &'a str,
    caller: Caller<'a>,
    /// Where configs and containers are remembered across requests, if anywhere, with the
    /// `Arc` that `values` points into (the cache knows its Values by it).
    cache: Option<(&'a RenderCache, &'a Arc<Values>)>,
}

/// Who asks, and what only that caller knows.
#[derive(Clone, Debug)]
pub enum Caller<'a> {
    /// `inject` on a manifest: no namespace, no cluster.
    Cli {
        mode: Mode,
        /// Written into every annotated or injected pod template without being read back:
        /// the flags' override annotations, which the Values already carry. Where a pod
        /// template has its own value for one of these keys, the flag wins
        /// (docs/differences.md Q-18).
        overrides: &'a Annotations,
        /// Written into every pod template and read as if the pod had them (the CLI's
        /// `enable-debug-sidecar` and `close-wait-timeout`).
        scheduled: &'a Annotations,
    },
    /// An admission review: a Pod or a Service, in a namespace the cluster knows.
    Webhook {
        /// The admission request's namespace (for `linkerd.io/workload-ns`).
        namespace: &'a str,
        namespace_annotations: &'a Annotations,
        /// The pod's owner `(lower-cased kind, name)` for `linkerd.io/proxy-<kind>`.
        owner: Option<(&'a str, &'a str)>,
    },
}

impl<'a> Request<'a> {
    /// The CLI's request: `values` with the flags applied, their override annotations, and
    /// the annotations it writes and reads back.
    pub fn cli(
        values: &'a Values,
        control_plane_ns: &'a str,
        created_by: &'a str,
        mode: Mode,
        overrides: &'a Annotations,
        scheduled: &'a Annotations,
    ) -> Request<'a> {
        Request {
            values,
            control_plane_ns,
            created_by,
            caller: Caller::Cli {
                mode,
                overrides,
                scheduled,
            },
            cache: None,
        }
    }

    /// The webhook's request for an object in `namespace`, always full injection.
    pub fn webhook(
        values: &'a Values,
        control_plane_ns: &'a str,
        created_by: &'a str,
        namespace: &'a str,
        namespace_annotations: &'a Annotations,
        owner: Option<(&'a str, &'a str)>,
    ) -> Request<'a> {
        Request {
            values,
            control_plane_ns,
            created_by,
            caller: Caller::Webhook {
                namespace,
                namespace_annotations,
                owner,
            },
            cache: None,
        }
    }

    /// The same request for `values` (which it held by reference, now by its `Arc`),
    /// rendering once per config through `cache` (`inject/cache.rs`).
    pub fn cached(self, cache: &'a RenderCache, values: &'a Arc<Values>) -> Request<'a> {
        Request {
            values,
            cache: Some((cache, values)),
            ..self
        }
    }

    /// The decision's view of the caller (docs/behaviour.md §5.3).
    pub fn origin(&self) -> Origin<'a> {
        match self.caller {
            Caller::Cli { .. } => Origin::Cli,
            Caller::Webhook {
                namespace_annotations,
                ..
            } => Origin::Webhook {
                namespace_annotations,
            },
        }
    }
}

/// What the core decided, and the patch that carries it out.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub patch: Patch,
    /// Bad annotation values that were ignored, as upstream logs them.
    pub warnings: Vec<Warning>,
}

/// Why an object could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The CLI refuses to pass over a workload it was asked to inject (docs/behaviour.md §5.7).
    #[error("failed to inject {res_name}: {}", .errors.join(", "))]
    Refused {
        res_name: String,
        errors: Vec<&'static str>,
    },
    #[error("--manual must be set when injecting control plane components")]
    ControlPlaneNeedsManual,
}

/// Decides and renders the injection of `obj`.
pub fn inject(obj: &Value, req: &Request<'_>) -> Result<Outcome, InjectError> {
    let identity = Identity::of(obj);
    let tokens = match workload::category(&identity.kind) {
        Category::Unsupported => return Ok(untouched(Report::without_template(identity, false))),
        Category::Annotatable => return annotate(obj, identity, req),
        Category::Injectable(tokens) => tokens,
    };
    let Some(pod) = workload::locate(obj, tokens)? else {
        return Ok(untouched(Report::without_template(identity, false)));
    };
    let mut report = decide::assess(identity, &pod, req.values, req.origin());
    let mut b = PatchBuilder::new(tokens);
    match req.caller {
        Caller::Webhook {
            namespace_annotations,
            ..
        } if !report.injectable() => {
            let patch = opaque_ports_patch_for_pod(&pod, namespace_annotations, req.values);
            return Ok(Outcome {
                report,
                patch,
                warnings: Vec::new(),
            });
        }
        Caller::Webhook { .. } => {}
        Caller::Cli {
            mode, overrides, ..
        } => {
            let control_plane = pod.labels().contains_key(a::CONTROL_PLANE_COMPONENT_LABEL);
            if mode != Mode::Full && control_plane {
                return Err(InjectError::ControlPlaneNeedsManual);
            }
            if !report.injectable() {
                refuse_unless_opted_out(&report)?;
                return Ok(untouched(report));
            }
            if !overrides.is_empty() {
                report.annotated = true;
            }
            if mode == Mode::AnnotateOnly {
                annotate_only(&mut b, &pod, req);
                return Ok(Outcome {
                    report,
                    patch: b.finish(),
                    warnings: Vec::new(),
                });
            }
        }
    }
    let resolved = resolve(&pod, &report, req);
    emit(
        &mut b,
        &pod,
        &resolved,
        req.control_plane_ns,
        req.cache.map(|(c, _)| c),
    )?;
    Ok(Outcome {
        report,
        patch: b.finish(),
        warnings: resolved.config.warnings.clone(),
    })
}

fn untouched(report: Report) -> Outcome {
    Outcome {
        report,
        patch: Patch::default(),
        warnings: Vec::new(),
    }
}

/// D-4 (docs/behaviour.md): the CLI fails on hostNetwork, a sidecar or automount only for workloads
/// that are not opted out by annotation; UDP never fails.
fn refuse_unless_opted_out(report: &Report) -> Result<(), InjectError> {
    if report.inject_disabled() {
        return Ok(());
    }
    let mut errors = Vec::new();
    if !report.automount {
        errors.push(decide::AUTOMOUNT_TEXT);
    }
    if report.host_network {
        errors.push(SkipReason::HostNetwork.text());
    }
    if report.sidecar {
        errors.push(SkipReason::SidecarExists.text());
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(InjectError::Refused {
        res_name: report.identity.res_name(),
        errors,
    })
}

/// Namespaces and Services: annotations only.
fn annotate(obj: &Value, identity: Identity, req: &Request<'_>) -> Result<Outcome, InjectError> {
    let mut report = Report::without_template(identity, true);
    let meta = obj.get("metadata");
    let existing = match meta.and_then(|m| m.get("annotations")) {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            return Err(ShapeError {
                path: "metadata.annotations".into(),
                expected: "a mapping",
                found: crate::config::json_type(other),
            }
            .into())
        }
    };
    let mut added = Annotations::new();
    match (report.identity.kind.as_str(), &req.caller) {
        ("namespace", Caller::Cli { overrides, .. }) => {
            added.insert(a::INJECT.into(), a::INJECT_ENABLED.into());
            added.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        ("service", Caller::Cli { overrides, .. }) => {
            if let Some(v) = overrides.get(overrides::OPAQUE_PORTS) {
                added.insert(overrides::OPAQUE_PORTS.into(), v.clone());
            }
        }
        (
            "service",
            Caller::Webhook {
                namespace_annotations,
                ..
            },
        ) => {
            let patch =
                opaque_ports_patch_for_service(obj, existing, namespace_annotations, req.values);
            return Ok(Outcome {
                report,
                patch,
                warnings: Vec::new(),
            });
        }
        _ => {}
    }
    if added.is_empty() {
        return Ok(untouched(report));
    }
    report.annotated = true;
    let mut b = PatchBuilder::new(&[]);
    if meta.is_none_or(|m| m.as_object().is_none_or(Map::is_empty)) {
        b.add(&["metadata"], Value::Object(Map::new()));
    }
    map_ops(&mut b, "annotations", existing, &added);
    Ok(Outcome {
        report,
        patch: b.finish(),
        warnings: Vec::new(),
    })
}

/// Ops 1–3 (and 4–5 when `labels` is given) of docs/behaviour.md §8.1: create the metadata maps if
/// needed and add each key.
fn metadata_ops(
    b: &mut PatchBuilder,
    pod: &PodTemplate<'_>,
    annotations: &Annotations,
    labels: Option<&Annotations>,
) {
    if pod.metadata_is_empty() {
        b.add(&["metadata"], Value::Object(Map::new()));
    }
    map_ops(b, "annotations", pod.raw_annotations(), annotations);
    if let Some(labels) = labels {
        map_ops(b, "labels", pod.raw_labels(), labels);
    }
}

/// Creates `metadata.<field>` if it is absent or empty, then adds each key (sorted). Values
/// already in the map that are not strings become strings (docs/behaviour.md D-1): the API server
/// refuses them.
fn map_ops(
    b: &mut PatchBuilder,
    field: &str,
    existing: Option<&Map<String, Value>>,
    add: &Annotations,
) {
    match existing {
        Some(m) if !m.is_empty() => {
            for (k, v) in m {
                if !v.is_string() && !add.contains_key(k) {
                    b.add(
                        &["metadata", field, k],
                        Value::String(workload::scalar_text(v)),
                    );
                }
            }
        }
        _ => b.add(&["metadata", field], Value::Object(Map::new())),
    }
    for (k, v) in add {
        b.add(&["metadata", field, k], Value::String(v.clone()));
    }
}

/// docs/behaviour.md §8.2: the CLI's default mode writes only annotations (its overrides, the
/// scheduled ones and `linkerd.io/inject: enabled`, unless ingress mode says `ingress`
/// instead); the cluster's injector does the rest.
fn annotate_only(b: &mut PatchBuilder, pod: &PodTemplate<'_>, req: &Request<'_>) {
    let mut added = Annotations::new();
    if let Caller::Cli {
        overrides,
        scheduled,
        ..
    } = req.caller
    {
        added.extend(
            overrides
                .iter()
                .chain(scheduled)
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    if !req.values.proxy.is_ingress {
        added.insert(a::INJECT.into(), a::INJECT_ENABLED.into());
    }
    metadata_ops(b, pod, &added, None);
}

/// One pod's injection, resolved: everything [`emit`] needs, computed once.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The Values after the pod's overrides (docs/behaviour.md §6.3), the debug switch, and
    /// the override values that were ignored.
    pub config: Arc<Config>,
    /// The annotations the patch writes into the pod (docs/behaviour.md §7.1).
    pub annotations: Annotations,
    /// The labels the patch writes into the pod.
    pub labels: Annotations,
    /// The first app container's capabilities and service-account mount, the inbound ports.
    pub facts: PodFacts,
}

impl Resolved {
    pub fn values(&self) -> &Values {
        &self.config.values
    }
}

/// Computes what injecting `pod` takes, for an injectable `report`: the annotations the caller
/// adds (docs/behaviour.md §6.1), the Values they and the pod's own annotations give
/// (the override registry), and the labels.
pub fn resolve(pod: &PodTemplate<'_>, report: &Report, req: &Request<'_>) -> Resolved {
    // What the caller adds; `read` is what rendering reads: the pod's own annotations and the
    // added ones, minus the CLI's flag overrides (the Values already carry them).
    let mut added = Annotations::new();
    let mut read = pod.annotations();
    let (namespace_annotations, owner, workload_ns) = match req.caller {
        Caller::Cli {
            overrides,
            scheduled,
            ..
        } => {
            added.extend(scheduled.iter().map(|(k, v)| (k.clone(), v.clone())));
            added.insert(a::CREATED_BY.into(), req.created_by.into());
            read.extend(added.iter().map(|(k, v)| (k.clone(), v.clone())));
            read.retain(|k, _| !overrides.contains_key(k));
            // The overrides are written over the pod's own values: the flag wins in both
            // (docs/differences.md Q-18).
            added.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
            let id = &report.identity;
            let owner = (id.kind != "pod").then(|| (id.kind.clone(), id.name.clone()));
            (None, owner, id.namespace.clone().unwrap_or_default())
        }
        Caller::Webhook {
            namespace,
            namespace_annotations,
            owner,
        } => {
            added = decide::injector_annotations(
                pod,
                namespace_annotations,
                req.values,
                req.created_by,
            );
            read.extend(added.iter().map(|(k, v)| (k.clone(), v.clone())));
            let owner = owner.filter(|(kind, _)| OWNER_LABEL_KINDS.contains(kind));
            let owner = owner.map(|(k, n)| (k.to_string(), n.to_string()));
            (Some(namespace_annotations), owner, namespace.to_string())
        }
    };
    let config = match req.cache {
        Some((cache, values)) => cache.config(values, &read, pod, namespace_annotations),
        None => Arc::new(Config::compute(
            req.values,
            &read,
            pod,
            namespace_annotations,
        )),
    };
    let values = &config.values;
    added.insert(a::PROXY_VERSION.into(), values.proxy_version().into());
    added.insert(
        a::TRUST_ROOT_SHA256.into(),
        config.trust_root_sha256.clone(),
    );
    let mut labels = Annotations::new();
    labels.insert(
        a::CONTROL_PLANE_NS_LABEL.into(),
        req.control_plane_ns.into(),
    );
    if let Some((kind, name)) = owner {
        labels.insert(format!("{}{kind}", a::PROXY_OWNER_LABEL_PREFIX), name);
    }
    labels.insert(a::WORKLOAD_NS_LABEL.into(), workload_ns);
    Resolved {
        facts: PodFacts::of(pod, values),
        config,
        annotations: added,
        labels,
    }
}

/// Whether `resolved` can be rendered, trust anchors aside (they live in the cluster, and
/// `check` does not have them): what the webhook would deny or fail on. [`emit`] checks the
/// same, in the same order, as it renders.
pub fn renderable(resolved: &Resolved) -> Result<(), RenderError> {
    let values = resolved.values();
    render::check(values)?;
    if !values.cni_enabled {
        render::init_container(values, &resolved.facts)?;
    }
    Ok(())
}

/// Turns `resolved` into the patch, in Linkerd's op order (docs/behaviour.md §8.1):
///
/// 1. the pod's metadata, annotations and labels (each map created first if it is missing,
///    keys sorted), because the API server applies ops in order and an op cannot add below a
///    parent that does not exist;
/// 2. the empty `volumes` and `initContainers` lists, for the same reason;
/// 3. the xtables-lock volume and the init container (or the CNI network validator) at the
///    front of `initContainers` when the proxy is a native sidecar (it must start after it),
///    appended otherwise;
/// 4. the debug container, appended;
/// 5. the identity volumes, appended;
/// 6. the proxy: right after the init container as a native sidecar; first among
///    `containers` when the app must await it; appended otherwise.
pub fn emit(
    b: &mut PatchBuilder,
    pod: &PodTemplate<'_>,
    resolved: &Resolved,
    control_plane_ns: &str,
    cache: Option<&RenderCache>,
) -> Result<(), RenderError> {
    let config = &resolved.config;
    let rendered = match cache {
        Some(cache) => cache.containers(config, &resolved.facts, control_plane_ns),
        None => Arc::new(Containers::render(
            config,
            &resolved.facts,
            control_plane_ns,
        )),
    };
    let c = rendered.as_ref().as_ref().map_err(Clone::clone)?;
    let values = &config.values;
    metadata_ops(b, pod, &resolved.annotations, Some(&resolved.labels));

    // A pod with no `spec` at all (found by fuzzing) gets one first, or every op below would
    // point into nothing.
    if pod.spec().is_none() {
        b.add(&["spec"], Value::Object(Map::new()));
    }
    if pod.volumes().is_empty() {
        b.add(&["spec", "volumes"], Value::Array(Vec::new()));
    }
    if pod.init_containers().is_empty() {
        b.add(&["spec", "initContainers"], Value::Array(Vec::new()));
    }
    let native = values.proxy.native_sidecar;
    let vols = &c.volumes;
    let shared = |v: &Arc<Shared>| Added::Shared(v.clone(), String::new());
    if let Some(v) = &vols.xtables_lock {
        b.add(&["spec", "volumes", "-"], shared(v));
    }
    b.add(
        &["spec", "initContainers", if native { "0" } else { "-" }],
        Added::Shared(c.init.clone(), String::new()),
    );
    let has_containers = pod
        .spec()
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .is_some();
    if let Some(debug) = &c.debug {
        if !has_containers {
            b.add(&["spec", "containers"], Value::Array(Vec::new()));
        }
        b.add(
            &["spec", "containers", "-"],
            Added::Shared(debug.clone(), String::new()),
        );
    }
    b.add(&["spec", "volumes", "-"], shared(&vols.end_entity));
    if let Some(v) = &vols.podinfo {
        b.add(&["spec", "volumes", "-"], shared(v));
    }
    if let Some(v) = &vols.token {
        b.add(&["spec", "volumes", "-"], shared(v));
    }
    let proxy = c.proxy(&resolved.facts.inbound_ports);
    if native {
        b.add(&["spec", "initContainers", "1"], proxy);
    } else {
        if !has_containers && c.debug.is_none() {
            b.add(&["spec", "containers"], Value::Array(Vec::new()));
        }
        let slot = if values.proxy.r#await { "0" } else { "-" };
        b.add(&["spec", "containers", slot], proxy);
    }
    Ok(())
}

/// Owner kinds that get a `linkerd.io/proxy-<kind>` label from the webhook (docs/behaviour.md
/// §7.1).
pub const OWNER_LABEL_KINDS: &[&str] = &[
    "deployment",
    "replicationcontroller",
    "replicaset",
    "job",
    "daemonset",
    "statefulset",
];

/// Lower-case hex SHA-256 of the raw trust-anchor bytes.
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// docs/behaviour.md §8.3 for a Pod that is not injected: the opaque-ports annotation, if it lacks
/// one.
fn opaque_ports_patch_for_pod(pod: &PodTemplate<'_>, ns: &Annotations, values: &Values) -> Patch {
    let own = pod.raw_annotations();
    if own.is_some_and(|m| m.contains_key(overrides::OPAQUE_PORTS)) {
        return Patch::default();
    }
    let value = match ns.get(overrides::OPAQUE_PORTS) {
        Some(v) => v.clone(),
        None => pod.ports_in(&values.proxy.opaque_ports).join(","),
    };
    let has_metadata = pod.metadata().is_some();
    opaque_ops(has_metadata, own, value)
}

/// docs/behaviour.md §8.3 for a Service: its ports whose (target) port is in the default opaque
/// list.
fn opaque_ports_patch_for_service(
    svc: &Value,
    own: Option<&Map<String, Value>>,
    ns: &Annotations,
    values: &Values,
) -> Patch {
    if own.is_some_and(|m| m.contains_key(overrides::OPAQUE_PORTS)) {
        return Patch::default();
    }
    let value = match ns.get(overrides::OPAQUE_PORTS) {
        Some(v) => v.clone(),
        None => {
            let defaults: Vec<&str> = values.proxy.opaque_ports.split(',').collect();
            let ports = svc
                .get("spec")
                .and_then(|s| s.get("ports"))
                .and_then(Value::as_array);
            let mut out = Vec::new();
            for p in ports.map(Vec::as_slice).unwrap_or(&[]) {
                let Some(port) = p.get("port").and_then(Value::as_i64) else {
                    continue;
                };
                let port = port.to_string();
                match p.get("targetPort") {
                    None | Some(Value::Null) => {
                        if defaults.contains(&port.as_str()) {
                            out.push(port);
                        }
                    }
                    Some(t) if t.as_i64() == Some(0) => {
                        if defaults.contains(&port.as_str()) {
                            out.push(port);
                        }
                    }
                    Some(t) => {
                        if let Some(n) = t.as_i64() {
                            if defaults.contains(&n.to_string().as_str()) {
                                out.push(port);
                            }
                        }
                    }
                }
            }
            out.join(",")
        }
    };
    opaque_ops(
        svc.get("metadata").is_some_and(Value::is_object),
        own,
        value,
    )
}

/// The opaque-ports annotation, creating `metadata` (found by fuzzing: an object without
/// one) and `metadata.annotations` when they are missing.
fn opaque_ops(has_metadata: bool, own: Option<&Map<String, Value>>, value: String) -> Patch {
    if value.is_empty() {
        return Patch::default();
    }
    let mut b = PatchBuilder::new(&[]);
    if !has_metadata {
        b.add(&["metadata"], Value::Object(Map::new()));
    }
    if own.is_none_or(Map::is_empty) {
        b.add(&["metadata", "annotations"], Value::Object(Map::new()));
    }
    b.add(
        &["metadata", "annotations", overrides::OPAQUE_PORTS],
        Value::String(value),
    );
    b.finish()
}

#[cfg(test)]
mod tests;
