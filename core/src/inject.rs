//! The core entry point: one object in, a report and an RFC 6902 patch out.
//!
//! [`inject`] is what both front-ends call. It never mutates or re-serialises the object: the
//! CLI applies the patch to its parsed document, the webhook returns it to the API server.
//! Everything about the caller — CLI or webhook, annotate-only or full, which annotations the
//! CLI's flags add — arrives in a [`Request`].

use json_patch::PatchOperation;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::annotations as a;
use crate::config::overrides::{self, Annotations, Warning};
use crate::config::Values;
use crate::decide::{self, Origin, Report, SkipReason};
use crate::patch::PatchBuilder;
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

/// Everything the core needs besides the object.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The configured Values (for the CLI, with its flags already applied).
    pub values: &'a Values,
    pub mode: Mode,
    pub origin: Origin<'a>,
    /// The Linkerd control-plane namespace.
    pub control_plane_ns: &'a str,
    /// The value of `linkerd.io/created-by`.
    pub created_by: &'a str,
    /// Annotations written into every annotated or injected pod template without being read
    /// back: the CLI's flag overrides, which the Values already carry. Where a pod template
    /// has its own value for one of these keys, the flag wins (docs/differences.md Q-18).
    pub overrides: &'a Annotations,
    /// Annotations written into every pod template and read as if the pod had them
    /// (the CLI's `enable-debug-sidecar` and `close-wait-timeout`).
    pub scheduled: &'a Annotations,
    /// Webhook: the pod's owner `(lower-cased kind, name)` for `linkerd.io/proxy-<kind>`.
    /// CLI: `None`, the manifest's own kind and name are used.
    pub owner: Option<(&'a str, &'a str)>,
    /// Webhook: the admission request's namespace (for `linkerd.io/workload-ns`).
    pub namespace: Option<&'a str>,
}

/// What the core decided, and the patch that carries it out.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub patch: Vec<PatchOperation>,
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
    let mut report = decide::assess(identity, &pod, req.values, req.origin);
    let cli = matches!(req.origin, Origin::Cli);
    if cli && req.mode != Mode::Full && pod.labels().contains_key(a::CONTROL_PLANE_COMPONENT_LABEL)
    {
        return Err(InjectError::ControlPlaneNeedsManual);
    }
    if !report.injectable() {
        if cli {
            refuse_unless_opted_out(&report)?;
            return Ok(untouched(report));
        }
        let patch = match req.origin {
            Origin::Webhook {
                namespace_annotations,
            } => opaque_ports_patch_for_pod(&pod, namespace_annotations, req.values),
            Origin::Cli => Vec::new(),
        };
        return Ok(Outcome {
            report,
            patch,
            warnings: Vec::new(),
        });
    }
    if cli && !req.overrides.is_empty() {
        report.annotated = true;
    }
    let mut b = PatchBuilder::new(tokens);
    let warnings = match req.mode {
        Mode::AnnotateOnly => {
            let mut added: Annotations = req.overrides.clone();
            added.extend(req.scheduled.iter().map(|(k, v)| (k.clone(), v.clone())));
            if !req.values.proxy.is_ingress {
                added.insert(a::INJECT.into(), a::INJECT_ENABLED.into());
            }
            metadata_ops(&mut b, &pod, &added, None);
            Vec::new()
        }
        Mode::Full => full(&mut b, &pod, &report, req)?,
    };
    Ok(Outcome {
        report,
        patch: b.finish(),
        warnings,
    })
}

fn untouched(report: Report) -> Outcome {
    Outcome {
        report,
        patch: Vec::new(),
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
    let namespace_annotations = match req.origin {
        Origin::Cli => None,
        Origin::Webhook {
            namespace_annotations,
        } => Some(namespace_annotations),
    };
    match (report.identity.kind.as_str(), namespace_annotations) {
        ("namespace", None) => {
            added.insert(a::INJECT.into(), a::INJECT_ENABLED.into());
            added.extend(req.overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        ("service", None) => {
            if let Some(v) = req.overrides.get(overrides::OPAQUE_PORTS) {
                added.insert(overrides::OPAQUE_PORTS.into(), v.clone());
            }
        }
        ("service", Some(ns)) => {
            let patch = opaque_ports_patch_for_service(obj, existing, ns, req.values);
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

/// Full injection (docs/behaviour.md §7, §8.1).
fn full(
    b: &mut PatchBuilder,
    pod: &PodTemplate<'_>,
    report: &Report,
    req: &Request<'_>,
) -> Result<Vec<Warning>, InjectError> {
    let own = pod.annotations();
    // The annotations we write, and those rendering reads (own + added, minus flag overrides).
    let mut written: Annotations = req.scheduled.clone();
    let (ns_annotations, owner_label) = match req.origin {
        Origin::Cli => {
            written.insert(a::CREATED_BY.into(), req.created_by.into());
            let owner = (report.identity.kind != "pod")
                .then(|| (report.identity.kind.clone(), report.identity.name.clone()));
            (None, owner)
        }
        Origin::Webhook {
            namespace_annotations,
        } => {
            written.extend(decide::injector_annotations(
                pod,
                namespace_annotations,
                req.values,
                req.created_by,
            ));
            let owner = req.owner.filter(|(k, _)| OWNER_LABEL_KINDS.contains(k));
            (
                Some(namespace_annotations),
                owner.map(|(k, n)| (k.to_string(), n.to_string())),
            )
        }
    };
    let mut read: Annotations = own.clone();
    read.extend(written.iter().map(|(k, v)| (k.clone(), v.clone())));
    for k in req.overrides.keys() {
        read.remove(k);
    }

    let overrides::Effective {
        values,
        debug_sidecar: debug,
        warnings,
    } = overrides::apply(req.values.clone(), &read, pod, ns_annotations);
    render::check(&values)?;
    let facts = PodFacts::of(pod, &values);
    let init = if values.cni_enabled {
        render::network_validator(&values)
    } else {
        render::init_container(&values, &facts)?
    };
    let proxy = render::proxy_container(&values, &facts, req.control_plane_ns);

    // Metadata.
    written.extend(req.overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    written.insert(a::PROXY_VERSION.into(), values.proxy_version().into());
    written.insert(
        a::TRUST_ROOT_SHA256.into(),
        sha256_hex(&values.identity_trust_anchors_pem),
    );
    let mut labels = Annotations::new();
    labels.insert(
        a::CONTROL_PLANE_NS_LABEL.into(),
        req.control_plane_ns.into(),
    );
    if let Some((kind, name)) = owner_label {
        labels.insert(format!("{}{kind}", a::PROXY_OWNER_LABEL_PREFIX), name);
    }
    let workload_ns = match req.namespace {
        Some(ns) => ns.to_string(),
        None => report.identity.namespace.clone().unwrap_or_default(),
    };
    labels.insert(a::WORKLOAD_NS_LABEL.into(), workload_ns);
    metadata_ops(b, pod, &written, Some(&labels));

    // Containers and volumes, in Linkerd's op order; a pod with no `spec` at all (found by
    // fuzzing) gets one first, or every op below would point into nothing.
    let native = values.proxy.native_sidecar;
    if pod.spec().is_none() {
        b.add(&["spec"], Value::Object(Map::new()));
    }
    if pod.volumes().is_empty() {
        b.add(&["spec", "volumes"], Value::Array(Vec::new()));
    }
    if pod.init_containers().is_empty() {
        b.add(&["spec", "initContainers"], Value::Array(Vec::new()));
    }
    let first_init_slot = if native { "0" } else { "-" };
    let vols = render::volumes(&values);
    if let Some(v) = vols.xtables_lock {
        b.add(&["spec", "volumes", "-"], v);
    }
    b.add(&["spec", "initContainers", first_init_slot], init);
    if debug {
        if pod
            .spec()
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_array)
            .is_none()
        {
            b.add(&["spec", "containers"], Value::Array(Vec::new()));
        }
        b.add(
            &["spec", "containers", "-"],
            render::debug_container(&values),
        );
    }
    b.add(&["spec", "volumes", "-"], vols.end_entity);
    if let Some(v) = vols.podinfo {
        b.add(&["spec", "volumes", "-"], v);
    }
    if let Some(v) = vols.token {
        b.add(&["spec", "volumes", "-"], v);
    }
    if native {
        b.add(&["spec", "initContainers", "1"], proxy);
    } else {
        if pod
            .spec()
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_array)
            .is_none()
            && !debug
        {
            b.add(&["spec", "containers"], Value::Array(Vec::new()));
        }
        let slot = if values.proxy.r#await { "0" } else { "-" };
        b.add(&["spec", "containers", slot], proxy);
    }
    Ok(warnings)
}

/// Owner kinds that get a `linkerd.io/proxy-<kind>` label from the webhook (docs/behaviour.md
/// §7.1).
const OWNER_LABEL_KINDS: &[&str] = &[
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
fn opaque_ports_patch_for_pod(
    pod: &PodTemplate<'_>,
    ns: &Annotations,
    values: &Values,
) -> Vec<PatchOperation> {
    let own = pod.raw_annotations();
    if own.is_some_and(|m| m.contains_key(overrides::OPAQUE_PORTS)) {
        return Vec::new();
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
) -> Vec<PatchOperation> {
    if own.is_some_and(|m| m.contains_key(overrides::OPAQUE_PORTS)) {
        return Vec::new();
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
fn opaque_ops(
    has_metadata: bool,
    own: Option<&Map<String, Value>>,
    value: String,
) -> Vec<PatchOperation> {
    if value.is_empty() {
        return Vec::new();
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
