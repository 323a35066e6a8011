//! `check`: what the webhook would do to each workload of a manifest stream, offline.
//!
//! The decision is the webhook's, not the CLI's: a workload is meshed when its pod template or
//! its namespace enables injection, with the namespace's annotations inherited. Namespaces come
//! from `Namespace` objects in the stream, from the caller (annotations of namespaces that live
//! in the cluster), or default. Beyond the decision, lints catch the mistakes that leave a
//! workload silently unmeshed or misconfigured, each with a one-line fix.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::annotations as a;
use crate::config::overrides::{self, port_range, Annotations, NamedPorts};
use crate::config::Values;
use crate::decide::{self, SkipReason};
use crate::inject::{self, Request};
use crate::workload::{self, string_map, Category, Identity, PodTemplate};

/// How bad a finding is; `--fail-on` picks the level that fails the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Why a workload is not meshed, when that is what its annotations ask for.
    Info,
    /// A likely mistake: the setting is ignored, or the workload is not meshed by accident.
    Warning,
    /// The webhook would refuse the pod, or cannot mesh it at all.
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub level: Level,
    /// Stable identifier (a Linkerd reason code, or a lint name).
    pub code: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Meshed {
    Yes,
    No,
    /// A proxy is already in the manifest.
    Already,
}

impl Meshed {
    pub fn as_str(self) -> &'static str {
        match self {
            Meshed::Yes => "yes",
            Meshed::No => "no",
            Meshed::Already => "already",
        }
    }
}

/// One workload's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `kind/name`, kind lower-cased as Linkerd prints it.
    pub workload: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub meshed: Meshed,
    /// `<serviceAccount>.<namespace>` when meshed.
    pub identity: Option<String>,
    pub debug: bool,
    /// Whether the MutatingAdmissionPolicy of `proxy-injector policy` injects it.
    pub policy: PolicyCoverage,
    pub messages: Vec<Message>,
}

/// The policy's verdict on one workload (`policy.rs`, `coverage`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyCoverage {
    pub covered: bool,
    /// The matchCondition that turns it away (the webhook handles it then, if installed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl PolicyCoverage {
    fn of(pod: &PodTemplate<'_>, namespace: &Annotations, values: &Values) -> PolicyCoverage {
        match crate::policy::coverage(pod, namespace, values) {
            Ok(()) => PolicyCoverage {
                covered: true,
                condition: None,
                reason: None,
            },
            Err(u) => PolicyCoverage {
                covered: false,
                condition: Some(u.condition.to_string()),
                reason: Some(u.text),
            },
        }
    }

    /// `yes`, or `no (<condition>)`.
    pub fn summary(&self) -> String {
        match &self.condition {
            None => "yes".into(),
            Some(c) => format!("no ({c})"),
        }
    }
}

/// What `check` needs besides the documents.
pub struct Options<'a> {
    pub values: &'a Values,
    pub control_plane_ns: &'a str,
    /// Annotations of namespaces not in the stream (`--namespace-annotation`).
    pub namespaces: &'a BTreeMap<String, Annotations>,
    /// Namespace of objects that have none (`--namespace`).
    pub default_namespace: &'a str,
}

fn msg(level: Level, code: &str, text: impl Into<String>, hint: Option<&str>) -> Message {
    Message {
        level,
        code: code.into(),
        text: text.into(),
        hint: hint.map(str::to_string),
    }
}

/// Checks every workload among `docs` (List items included), in order.
pub fn check(docs: &[Value], opts: &Options<'_>) -> Vec<Row> {
    let objects: Vec<&Value> = docs
        .iter()
        .flat_map(|d| match d.get("kind").and_then(Value::as_str) {
            Some("List") => d
                .get("items")
                .and_then(Value::as_array)
                .map(|l| l.iter().collect())
                .unwrap_or_default(),
            _ => vec![d],
        })
        .filter(|d| d.is_object())
        .collect();
    // Namespaces in the stream override those given on the command line.
    let mut namespaces = opts.namespaces.clone();
    for o in &objects {
        let id = Identity::of(o);
        if id.kind == "namespace" {
            let ann = string_map(
                o.get("metadata")
                    .and_then(|m| m.get("annotations"))
                    .and_then(Value::as_object),
            );
            namespaces.insert(id.name, ann);
        }
    }
    let mut rows = Vec::new();
    // Each row's namespace and pod template, for the Service lint.
    let mut workloads: Vec<(String, PodTemplate<'_>)> = Vec::new();
    for o in &objects {
        let id = Identity::of(o);
        let Category::Injectable(tokens) = workload::category(&id.kind) else {
            continue;
        };
        let Ok(Some(pod)) = workload::locate(o, tokens) else {
            continue;
        };
        let ns = id
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| opts.default_namespace.to_string());
        let ns_ann = namespaces.get(&ns).cloned().unwrap_or_default();
        let row = if opts.values.identity.service_account_token_projection
            || pod.automount_service_account_token() == Some(false)
        {
            check_workload(o, &id, &pod, &ns, &ns_ann, opts)
        } else {
            // In the cluster, the ServiceAccount admission plugin mounts the token before the
            // webhook runs; a manifest does not show that mount yet.
            let admitted = with_token_mount(o, tokens);
            let Ok(Some(admitted_pod)) = workload::locate(&admitted, tokens) else {
                continue;
            };
            check_workload(&admitted, &id, &admitted_pod, &ns, &ns_ann, opts)
        };
        rows.push(row);
        workloads.push((ns, pod));
    }
    service_lints(&objects, &workloads, &mut rows, opts.default_namespace);
    rows
}

/// `obj` with the service-account token mounted in its first container, as the API server's
/// ServiceAccount admission plugin does when the pod does not opt out.
fn with_token_mount(obj: &Value, tokens: &[&str]) -> Value {
    let mut v = obj.clone();
    let mut cur = &mut v;
    for t in tokens {
        match cur.get_mut(*t) {
            Some(next) => cur = next,
            None => return obj.clone(),
        }
    }
    if let Some(first) = cur
        .pointer_mut("/spec/containers/0")
        .and_then(Value::as_object_mut)
    {
        let mounts = first
            .entry("volumeMounts")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = mounts {
            list.push(serde_json::json!({"name": "kube-api-access", "mountPath": a::SERVICE_ACCOUNT_MOUNT_PATH, "readOnly": true}));
        }
    }
    v
}

fn check_workload(
    obj: &Value,
    id: &Identity,
    pod: &PodTemplate<'_>,
    ns: &str,
    ns_ann: &Annotations,
    opts: &Options<'_>,
) -> Row {
    let req = Request::webhook(
        opts.values,
        opts.control_plane_ns,
        "check",
        ns,
        ns_ann,
        None,
    );
    let report = decide::assess(id.clone(), pod, opts.values, req.origin());
    // The webhook's effective annotations and Values, computed for unmeshed workloads too, so
    // that bad values are reported before turning injection on surprises anyone.
    let resolved = inject::resolve(pod, &report, &req);
    let bad_values = resolved.config.warnings.iter().map(|w| {
        msg(Level::Warning, "invalid_annotation_value", w.to_string(), Some(
            "fix the value (see the annotation reference) or remove the annotation; the config default is used",
        ))
    });
    let mut messages = Vec::new();
    let meshed = if !report.injectable() {
        let linkerd_proxy = pod
            .all_containers()
            .any(|c| workload::str_field(c, "name") == a::PROXY_CONTAINER);
        for r in report.reasons() {
            let (level, hint) = reason_level(r);
            if r == SkipReason::SidecarExists && linkerd_proxy {
                continue;
            }
            messages.push(msg(level, r.code(), r.text(), hint));
        }
        if linkerd_proxy {
            Meshed::Already
        } else {
            Meshed::No
        }
    } else if let Err(e) = inject::renderable(&resolved) {
        messages.push(msg(
            Level::Error,
            "render_error",
            format!("the webhook would deny this pod: {e}"),
            Some("fix the annotation or value named in the message"),
        ));
        Meshed::No
    } else {
        messages.extend(bad_values.clone());
        Meshed::Yes
    };
    if pod.has_udp() {
        messages.push(msg(Level::Warning, "udp_ports_enabled", crate::decide::UDP_TEXT, Some(
            "UDP is not proxied: mark the port in config.linkerd.io/skip-inbound-ports, or accept it",
        )));
    }
    if meshed != Meshed::Yes {
        messages.extend(bad_values);
    }
    port_lints(pod, &mut messages);
    let top = string_map(
        obj.get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object),
    );
    if id.kind != "pod" && top.contains_key(a::INJECT) && !pod.annotations().contains_key(a::INJECT)
    {
        messages.push(msg(
            Level::Warning,
            "inject_annotation_on_workload",
            format!(
                "{} is on the {}'s own metadata, where the webhook never sees it",
                a::INJECT,
                id.kind
            ),
            Some("move it to the pod template: spec.template.metadata.annotations"),
        ));
    }
    let debug = meshed == Meshed::Yes && resolved.config.debug_sidecar;
    let identity = (meshed != Meshed::No).then(|| {
        format!(
            "{}.{ns}",
            pod.service_account_name()
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
        )
    });
    messages.dedup();
    Row {
        workload: id.res_name(),
        kind: obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        name: id.name.clone(),
        namespace: ns.to_string(),
        meshed,
        identity,
        debug,
        policy: PolicyCoverage::of(pod, ns_ann, opts.values),
        messages,
    }
}

fn reason_level(r: SkipReason) -> (Level, Option<&'static str>) {
    match r {
        SkipReason::InjectAnnotationAbsent => (
            Level::Info,
            Some("annotate the namespace or spec.template.metadata with linkerd.io/inject: enabled to mesh it"),
        ),
        SkipReason::InjectDisabledAnnotation | SkipReason::CliDisabled => (Level::Info, None),
        SkipReason::InvalidInjectAtNamespace | SkipReason::InvalidInjectAtWorkload => {
            (Level::Error, Some("linkerd.io/inject takes enabled, disabled or ingress"))
        }
        SkipReason::HostNetwork => (Level::Warning, Some("pods on the host network cannot be meshed; opt out with linkerd.io/inject: disabled")),
        SkipReason::SidecarExists => (Level::Warning, Some("another mesh's sidecar is present; remove it or opt out")),
        SkipReason::AutomountDisabled => (
            Level::Error,
            Some("remove automountServiceAccountToken: false, or turn identity.serviceAccountTokenProjection on"),
        ),
        SkipReason::Unsupported => (Level::Info, None),
    }
}

/// `opaque-ports` and `skip-inbound-ports` entries that match no container port.
fn port_lints(pod: &PodTemplate<'_>, messages: &mut Vec<Message>) {
    let ann = pod.annotations();
    let numbers: Vec<i64> = pod
        .all_containers()
        .flat_map(workload::ports)
        .filter_map(|p| p.get("containerPort").and_then(Value::as_i64))
        .collect();
    for key in [overrides::OPAQUE_PORTS, overrides::SKIP_INBOUND_PORTS] {
        let Some(v) = ann.get(key) else { continue };
        for entry in v
            .trim_end_matches(',')
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let found = match port_range(entry) {
                Some((l, u)) => numbers
                    .iter()
                    .any(|n| (i64::from(l)..=i64::from(u)).contains(n)),
                None => pod.port_by_name(entry).is_some(),
            };
            if !found {
                messages.push(msg(
                    Level::Warning,
                    "port_not_found",
                    format!("{key}: {entry:?} matches no container port"),
                    Some("name a containerPort (number, range or port name) of this pod, or remove the entry"),
                ));
            }
        }
    }
}

/// A Service whose targetPort matches no container port of the workloads it selects.
/// `workloads[i]` is the namespace and pod template of `rows[i]`.
fn service_lints(
    objects: &[&Value],
    workloads: &[(String, PodTemplate<'_>)],
    rows: &mut [Row],
    default_ns: &str,
) {
    for svc in objects.iter().filter(|o| Identity::of(o).kind == "service") {
        let id = Identity::of(svc);
        let ns = id
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_ns.to_string());
        let Some(selector) = svc
            .get("spec")
            .and_then(|s| s.get("selector"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        if selector.is_empty() {
            continue;
        }
        let selector = string_map(Some(selector));
        let selected: Vec<usize> = workloads
            .iter()
            .enumerate()
            .filter(|(_, (wns, pod))| {
                let labels = pod.labels();
                *wns == ns && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|(i, _)| i)
            .collect();
        let ports = svc
            .get("spec")
            .and_then(|s| s.get("ports"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for p in ports {
            let target = p
                .get("targetPort")
                .cloned()
                .or_else(|| p.get("port").cloned())
                .unwrap_or(Value::Null);
            for &i in &selected {
                let pod = &workloads[i].1;
                let exposes = |n: i64| {
                    pod.all_containers()
                        .flat_map(workload::ports)
                        .any(|cp| cp.get("containerPort").and_then(Value::as_i64) == Some(n))
                };
                let ok = match &target {
                    Value::Number(n) => n.as_i64().is_some_and(exposes),
                    Value::String(s) => match s.parse::<i64>() {
                        Ok(n) => exposes(n),
                        Err(_) => pod.port_by_name(s).is_some(),
                    },
                    _ => true,
                };
                if !ok {
                    rows[i].messages.push(msg(
                        Level::Warning,
                        "service_target_port_not_found",
                        format!("service/{} targets port {target} that no container of this workload exposes", id.name),
                        Some("add the containerPort, or fix the Service's targetPort"),
                    ));
                }
            }
        }
    }
}
