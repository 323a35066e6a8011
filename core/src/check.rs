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

/// A kind of finding: its code, how bad it is, what it means and how to fix it. Every message
/// `check` gives is an instance of one rule ([`rules`]); `-o sarif` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub code: &'static str,
    pub level: Level,
    /// What the finding means, in one sentence.
    pub summary: &'static str,
    pub hint: Option<&'static str>,
}

impl Rule {
    /// A finding of this rule about one workload.
    pub fn message(&self, text: impl Into<String>) -> Message {
        Message {
            level: self.level,
            code: self.code.into(),
            text: text.into(),
            hint: self.hint.map(str::to_string),
        }
    }
}

pub const INVALID_ANNOTATION_VALUE: Rule = Rule {
    code: "invalid_annotation_value",
    level: Level::Warning,
    summary: "A config.linkerd.io annotation has a value the webhook cannot use, so the config default is used instead.",
    hint: Some("fix the value (see the annotation reference) or remove the annotation; the config default is used"),
};

pub const RENDER_ERROR: Rule = Rule {
    code: "render_error",
    level: Level::Error,
    summary: "The webhook would deny the pod: the proxy cannot be rendered from its annotations and the config.",
    hint: Some("fix the annotation or value named in the message"),
};

pub const UDP_PORTS_ENABLED: Rule = Rule {
    code: "udp_ports_enabled",
    level: Level::Warning,
    summary: "The pod declares UDP ports, which the proxy does not proxy.",
    hint: Some(
        "UDP is not proxied: mark the port in config.linkerd.io/skip-inbound-ports, or accept it",
    ),
};

pub const PORT_NOT_FOUND: Rule = Rule {
    code: "port_not_found",
    level: Level::Warning,
    summary: "An opaque-ports or skip-inbound-ports entry matches no container port of the pod.",
    hint: Some(
        "name a containerPort (number, range or port name) of this pod, or remove the entry",
    ),
};

pub const INJECT_ANNOTATION_ON_WORKLOAD: Rule = Rule {
    code: "inject_annotation_on_workload",
    level: Level::Warning,
    summary:
        "linkerd.io/inject is on the workload's own metadata, where the webhook never sees it.",
    hint: Some("move it to the pod template: spec.template.metadata.annotations"),
};

pub const SERVICE_TARGET_PORT_NOT_FOUND: Rule = Rule {
    code: "service_target_port_not_found",
    level: Level::Warning,
    summary: "A Service targets a port that no container of a workload it selects exposes.",
    hint: Some("add the containerPort, or fix the Service's targetPort"),
};

/// Not a finding of [`check`] itself: the CLI's `--require-meshed` turns an unmeshed workload
/// into a failure of this rule.
pub const NOT_MESHED: Rule = Rule {
    code: "not_meshed",
    level: Level::Error,
    summary: "The workload will not be meshed, and --require-meshed asks that every workload be.",
    hint: Some("enable injection on its pod template or namespace (linkerd.io/inject: enabled), or exempt it with --allow-unmeshed KIND/NAME"),
};

/// The rule of each reason the webhook skips a pod for (Linkerd's reason codes).
pub fn skip_rule(r: SkipReason) -> Rule {
    let (level, hint) = match r {
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
    };
    Rule {
        code: r.code(),
        level,
        summary: r.text(),
        hint,
    }
}

/// Every rule a `check` run can report, the CLI's [`NOT_MESHED`] included.
pub fn rules() -> Vec<Rule> {
    let skips = SkipReason::WEBHOOK.iter().map(|&r| skip_rule(r));
    skips
        .chain([
            INVALID_ANNOTATION_VALUE,
            RENDER_ERROR,
            UDP_PORTS_ENABLED,
            PORT_NOT_FOUND,
            INJECT_ANNOTATION_ON_WORKLOAD,
            SERVICE_TARGET_PORT_NOT_FOUND,
            NOT_MESHED,
        ])
        .collect()
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
    /// Where in the input it is (not part of the JSON report).
    #[serde(skip)]
    pub source: Source,
}

/// Which object of `check`'s input a row is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// Index into the documents given to [`check`].
    pub document: usize,
    /// Index into that document's `items` when it is a `List`.
    pub item: Option<usize>,
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

/// Checks every workload among `docs` (List items included), in order.
pub fn check(docs: &[Value], opts: &Options<'_>) -> Vec<Row> {
    let sourced = objects(docs);
    let objects: Vec<&Value> = sourced.iter().map(|(_, o)| *o).collect();
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
    for &(source, o) in &sourced {
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
        let mut row = if opts.values.identity.service_account_token_projection
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
        row.source = source;
        rows.push(row);
        workloads.push((ns, pod));
    }
    service_lints(&objects, &workloads, &mut rows, opts.default_namespace);
    rows
}

/// The objects among `docs` (a List's items in its place), each with where it is.
fn objects(docs: &[Value]) -> Vec<(Source, &Value)> {
    let mut out = Vec::new();
    for (document, d) in docs.iter().enumerate() {
        let at = |item| Source { document, item };
        if d.get("kind").and_then(Value::as_str) == Some("List") {
            let items = d.get("items").and_then(Value::as_array);
            let items = items.map(Vec::as_slice).unwrap_or_default();
            out.extend(items.iter().enumerate().map(|(i, o)| (at(Some(i)), o)));
        } else {
            out.push((at(None), d));
        }
    }
    out.retain(|(_, o)| o.is_object());
    out
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
    let bad_values = resolved
        .config
        .warnings
        .iter()
        .map(|w| INVALID_ANNOTATION_VALUE.message(w.to_string()));
    let mut messages = Vec::new();
    let meshed = if !report.injectable() {
        let linkerd_proxy = pod
            .all_containers()
            .any(|c| workload::str_field(c, "name") == a::PROXY_CONTAINER);
        for r in report.reasons() {
            if r == SkipReason::SidecarExists && linkerd_proxy {
                continue;
            }
            messages.push(skip_rule(r).message(r.text()));
        }
        if linkerd_proxy {
            Meshed::Already
        } else {
            Meshed::No
        }
    } else if let Err(e) = inject::renderable(&resolved) {
        messages.push(RENDER_ERROR.message(format!("the webhook would deny this pod: {e}")));
        Meshed::No
    } else {
        messages.extend(bad_values.clone());
        Meshed::Yes
    };
    if pod.has_udp() {
        messages.push(UDP_PORTS_ENABLED.message(crate::decide::UDP_TEXT));
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
        messages.push(INJECT_ANNOTATION_ON_WORKLOAD.message(format!(
            "{} is on the {}'s own metadata, where the webhook never sees it",
            a::INJECT,
            id.kind
        )));
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
        source: Source::default(),
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
                messages.push(
                    PORT_NOT_FOUND.message(format!("{key}: {entry:?} matches no container port")),
                );
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
                    rows[i].messages.push(SERVICE_TARGET_PORT_NOT_FOUND.message(format!(
                        "service/{} targets port {target} that no container of this workload exposes",
                        id.name
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_its_own_code_and_says_what_it_means() {
        let rules = rules();
        let mut codes: Vec<&str> = rules.iter().map(|r| r.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), rules.len(), "a code named twice");
        for r in &rules {
            assert!(!r.code.is_empty() && !r.summary.is_empty(), "{r:?}");
        }
    }
}
