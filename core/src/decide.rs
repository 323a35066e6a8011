//! Inject or skip, and why (docs/behaviour.md §5).
//!
//! The reasons carry Linkerd's codes (metric label values) and texts (events, errors) verbatim,
//! and are collected in Linkerd's order. The CLI and the webhook read `linkerd.io/inject`
//! differently — the CLI never consults a namespace — so the caller says which it is.

use crate::annotations as a;
use crate::config::overrides::{self, Annotations};
use crate::config::Values;
use crate::workload::{Identity, PodTemplate};

/// Why a pod is not injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    HostNetwork,
    SidecarExists,
    Unsupported,
    /// Neither the namespace nor the pod enables injection.
    InjectAnnotationAbsent,
    /// The pod opts out in an enabling namespace.
    InjectDisabledAnnotation,
    InvalidInjectAtNamespace,
    InvalidInjectAtWorkload,
    /// `automountServiceAccountToken: false` while token projection is off.
    AutomountDisabled,
    /// The CLI's opt-out (`linkerd.io/inject: disabled` on the template). Upstream's CLI has
    /// no text for it (an empty string).
    CliDisabled,
}

impl SkipReason {
    /// Every reason the webhook gives (all but the CLI's own opt-out), in the order of
    /// [`Report::reasons`].
    pub const WEBHOOK: [SkipReason; 8] = [
        SkipReason::HostNetwork,
        SkipReason::SidecarExists,
        SkipReason::Unsupported,
        SkipReason::InjectAnnotationAbsent,
        SkipReason::InjectDisabledAnnotation,
        SkipReason::InvalidInjectAtNamespace,
        SkipReason::InvalidInjectAtWorkload,
        SkipReason::AutomountDisabled,
    ];

    /// The metric label value.
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::HostNetwork => "host_network_enabled",
            SkipReason::SidecarExists => "sidecar_already_exists",
            SkipReason::Unsupported => "unsupported_resource",
            SkipReason::InjectAnnotationAbsent => "injection_enable_annotation_absent",
            SkipReason::InjectDisabledAnnotation => "injection_disable_annotation_present",
            SkipReason::InvalidInjectAtNamespace => "invalid_inject_annotation_at_ns",
            SkipReason::InvalidInjectAtWorkload => "invalid_inject_annotation_at_workload",
            SkipReason::AutomountDisabled => "disabled_automount_service_account_token_account",
            SkipReason::CliDisabled => "",
        }
    }

    /// The human text, exactly as Linkerd words it.
    pub fn text(self) -> &'static str {
        match self {
            SkipReason::HostNetwork => "hostNetwork is enabled",
            SkipReason::SidecarExists => "pod has a sidecar injected already",
            SkipReason::Unsupported => "this resource kind is unsupported",
            SkipReason::InjectAnnotationAbsent => {
                "neither the namespace nor the pod have the annotation \"linkerd.io/inject:enabled\""
            }
            SkipReason::InjectDisabledAnnotation => {
                "pod has the annotation \"linkerd.io/inject:disabled\""
            }
            SkipReason::InvalidInjectAtNamespace => {
                "invalid value for annotation \"linkerd.io/inject\" at namespace"
            }
            SkipReason::InvalidInjectAtWorkload => {
                "invalid value for annotation \"linkerd.io/inject\" at workload"
            }
            SkipReason::AutomountDisabled => AUTOMOUNT_TEXT,
            SkipReason::CliDisabled => "",
        }
    }
}

pub const AUTOMOUNT_TEXT: &str = "automountServiceAccountToken set to \"false\", with Values.identity.serviceAccountTokenProjection set to \"false\"";
pub const UDP_TEXT: &str = "UDP port(s) configured on pod spec";

/// Where the enabling `linkerd.io/inject` was found (a metric label).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AnnotationAt {
    #[default]
    None,
    Namespace,
    Workload,
}

impl AnnotationAt {
    pub fn label(self) -> &'static str {
        match self {
            AnnotationAt::None => "",
            AnnotationAt::Namespace => "namespace",
            AnnotationAt::Workload => "workload",
        }
    }
}

/// Who asks: the CLI reads only the template; the webhook also the namespace.
#[derive(Clone, Copy, Debug)]
pub enum Origin<'a> {
    Cli,
    Webhook {
        namespace_annotations: &'a Annotations,
    },
}

/// Everything known about one object's injection, as the report and metrics show it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub identity: Identity,
    pub host_network: bool,
    pub sidecar: bool,
    pub udp: bool,
    pub unsupported: bool,
    /// Set when `linkerd.io/inject` rules injection out (then `disabled_reason` says how).
    pub disabled_reason: Option<SkipReason>,
    pub annotation_at: AnnotationAt,
    /// False only when token projection is off and the pod does not mount its token.
    pub automount: bool,
    /// Has a pod template, or is a Namespace or Service.
    pub annotatable: bool,
    /// The CLI wrote annotations into it without injecting.
    pub annotated: bool,
    /// `uninject` removed something.
    pub uninjected: bool,
}

impl Report {
    /// A report for an object without a pod template.
    pub fn without_template(identity: Identity, annotatable: bool) -> Report {
        Report {
            identity,
            unsupported: true,
            automount: true,
            annotatable,
            ..Report::default()
        }
    }

    /// The reasons not to inject, in Linkerd's order; empty means inject.
    pub fn reasons(&self) -> Vec<SkipReason> {
        let mut r = Vec::new();
        if self.host_network {
            r.push(SkipReason::HostNetwork);
        }
        if self.sidecar {
            r.push(SkipReason::SidecarExists);
        }
        if self.unsupported {
            r.push(SkipReason::Unsupported);
        }
        if let Some(d) = self.disabled_reason {
            r.push(d);
        }
        if !self.automount {
            r.push(SkipReason::AutomountDisabled);
        }
        r
    }

    pub fn injectable(&self) -> bool {
        !(self.host_network
            || self.sidecar
            || self.unsupported
            || self.disabled_reason.is_some()
            || !self.automount)
    }

    pub fn inject_disabled(&self) -> bool {
        self.disabled_reason.is_some()
    }

    /// Reason texts joined as Linkerd's events and errors show them.
    pub fn reason_texts(&self) -> String {
        self.reasons()
            .iter()
            .map(|r| r.text())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reason codes joined as the `skip_reason` metric label.
    pub fn reason_codes(&self) -> String {
        self.reasons()
            .iter()
            .map(|r| r.code())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Builds the report for a pod template (docs/behaviour.md §5.1).
pub fn assess(
    identity: Identity,
    pod: &PodTemplate<'_>,
    values: &Values,
    origin: Origin<'_>,
) -> Report {
    let own = pod.annotations();
    let pod_inject = own.get(a::INJECT).map(String::as_str).unwrap_or("");
    let (disabled_reason, annotation_at) = match origin {
        Origin::Cli => (
            (pod_inject == a::INJECT_DISABLED).then_some(SkipReason::CliDisabled),
            AnnotationAt::None,
        ),
        Origin::Webhook {
            namespace_annotations,
        } => {
            let ns_inject = namespace_annotations
                .get(a::INJECT)
                .map(String::as_str)
                .unwrap_or("");
            webhook_decision(ns_inject, pod_inject)
        }
    };
    Report {
        identity,
        host_network: pod.host_network(),
        sidecar: pod.has_sidecar(),
        udp: pod.has_udp(),
        unsupported: false,
        disabled_reason,
        annotation_at,
        automount: automount(pod, values, matches!(origin, Origin::Webhook { .. })),
        annotatable: true,
        annotated: false,
        uninjected: false,
    }
}

fn is_valid(v: &str) -> bool {
    matches!(
        v,
        a::INJECT_ENABLED | a::INJECT_DISABLED | a::INJECT_INGRESS
    )
}

fn is_enabling(v: &str) -> bool {
    matches!(v, a::INJECT_ENABLED | a::INJECT_INGRESS)
}

/// The webhook's truth table (docs/behaviour.md §5.3), top to bottom. Empty means absent.
pub fn webhook_decision(ns: &str, pod: &str) -> (Option<SkipReason>, AnnotationAt) {
    if !ns.is_empty() && !is_valid(ns) {
        return (
            Some(SkipReason::InvalidInjectAtNamespace),
            AnnotationAt::None,
        );
    }
    if !pod.is_empty() && !is_valid(pod) {
        return (
            Some(SkipReason::InvalidInjectAtWorkload),
            AnnotationAt::None,
        );
    }
    if is_enabling(ns) {
        if pod == a::INJECT_DISABLED {
            return (
                Some(SkipReason::InjectDisabledAnnotation),
                AnnotationAt::Workload,
            );
        }
        return (None, AnnotationAt::Namespace);
    }
    if is_enabling(pod) {
        return (None, AnnotationAt::Workload);
    }
    (Some(SkipReason::InjectAnnotationAbsent), AnnotationAt::None)
}

/// docs/behaviour.md §5.5: only with token projection off can the service-account token rule skip a
/// pod.
fn automount(pod: &PodTemplate<'_>, values: &Values, webhook: bool) -> bool {
    if values.identity.service_account_token_projection {
        return true;
    }
    let mut flag = pod.automount_service_account_token().unwrap_or(true);
    if webhook && crate::render::service_account_mount(pod).is_none() {
        flag = false;
    }
    flag
}

/// The annotations the webhook adds to a pod before rendering (docs/behaviour.md §6.1): created-by,
/// the ones inherited from the namespace, and the default `opaque-ports` list filtered to the pod's
/// ports. Each is also written into the pod by the patch.
pub fn injector_annotations(
    pod: &PodTemplate<'_>,
    namespace_annotations: &Annotations,
    values: &Values,
    created_by: &str,
) -> Annotations {
    let own = pod.annotations();
    let mut added = Annotations::new();
    added.insert(a::CREATED_BY.to_string(), created_by.to_string());
    for key in overrides::inherited() {
        if let Some(v) = namespace_annotations.get(key) {
            if !own.contains_key(key) {
                added.insert(key.to_string(), v.clone());
            }
        }
    }
    if !own.contains_key(overrides::OPAQUE_PORTS) && !added.contains_key(overrides::OPAQUE_PORTS) {
        let ports = pod.ports_in(&values.proxy.opaque_ports);
        if !ports.is_empty() {
            added.insert(overrides::OPAQUE_PORTS.to_string(), ports.join(","));
        }
    }
    added
}

#[cfg(test)]
mod tests;
