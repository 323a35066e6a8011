//! Pods that escaped injection: running without a proxy although the webhook would inject
//! them now (docs/escaped.md). With `failurePolicy: Ignore`, every moment the webhook is
//! unreachable lets such pods start.
//!
//! Two steps, so that the webhook can watch every pod's metadata and read a pod's spec only
//! when it must: [`suspect`] decides from the annotations alone (the pod's and its
//! namespace's `linkerd.io/inject`, and the sign of injection, `linkerd.io/proxy-version`);
//! [`confirm`] makes the whole decision a review makes, on the pod as it runs, so that a
//! `hostNetwork` pod, one with a proxy already or one whose token is not mounted is not
//! reported. The clock (how old a pod is) is the caller's.

use serde_json::Value;

use crate::annotations as a;
use crate::config::overrides::Annotations;
use crate::config::Values;
use crate::decide::{self, AnnotationAt, Origin};
use crate::workload::{self, Identity, ShapeError};

/// Why a pod should have been injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escape {
    /// Where the enabling `linkerd.io/inject` is.
    pub annotation_at: AnnotationAt,
}

impl Escape {
    /// The reason, for the log, the Event and `/uninjected`.
    pub fn why(&self, namespace: &str) -> String {
        let at = match self.annotation_at {
            AnnotationAt::Workload => "the pod has".to_string(),
            _ => format!("its namespace {namespace:?} has"),
        };
        format!(
            "{at} the annotation \"{}\" enabling injection, and the pod has no proxy \
             (no \"{}\" annotation)",
            a::INJECT,
            a::PROXY_VERSION
        )
    }
}

/// From the annotations alone: whether a pod that carries no sign of injection would be
/// injected by a review now.
pub fn suspect(pod: &Annotations, namespace: &Annotations) -> Option<Escape> {
    let injected = pod.contains_key(a::PROXY_VERSION);
    suspect_by(inject_of(pod), injected, inject_of(namespace))
}

/// [`suspect`], from the values it reads: the pod's and its namespace's `linkerd.io/inject`
/// (empty when absent) and whether the pod has `linkerd.io/proxy-version`.
pub fn suspect_by(pod_inject: &str, injected: bool, namespace_inject: &str) -> Option<Escape> {
    if injected {
        return None;
    }
    match decide::webhook_decision(namespace_inject, pod_inject) {
        (None, annotation_at) => Some(Escape { annotation_at }),
        (Some(_), _) => None,
    }
}

fn inject_of(annotations: &Annotations) -> &str {
    annotations.get(a::INJECT).map_or("", String::as_str)
}

/// The whole decision a review would make on `pod` (a Pod object as the API serves it) in a
/// namespace with `namespace` annotations: `Some` when it would be injected and carries no
/// sign of injection.
pub fn confirm(
    pod: &Value,
    namespace: &Annotations,
    values: &Values,
) -> Result<Option<Escape>, ShapeError> {
    let Some(template) = workload::locate(pod, &[])? else {
        return Ok(None);
    };
    if template.annotations().contains_key(a::PROXY_VERSION) {
        return Ok(None);
    }
    let mut identity = Identity::of(pod);
    identity.kind = "pod".into();
    let origin = Origin::Webhook {
        namespace_annotations: namespace,
    };
    let report = decide::assess(identity, &template, values, origin);
    Ok(report.injectable().then_some(Escape {
        annotation_at: report.annotation_at,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> Annotations {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pod(annotations: Value, spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web-1", "namespace": "shop", "annotations": annotations},
               "spec": spec})
    }

    fn app() -> Value {
        json!({"containers": [{"name": "web", "image": "web:1"}]})
    }

    #[test]
    fn suspects_follow_the_webhooks_decision() {
        let enabled = annotations(&[(a::INJECT, "enabled")]);
        let none = Annotations::new();
        let at = |p: &Annotations, n: &Annotations| suspect(p, n).map(|e| e.annotation_at);
        assert_eq!(at(&none, &enabled), Some(AnnotationAt::Namespace));
        assert_eq!(at(&enabled, &none), Some(AnnotationAt::Workload));
        assert_eq!(
            at(&annotations(&[(a::INJECT, "ingress")]), &none),
            Some(AnnotationAt::Workload)
        );
        assert_eq!(at(&none, &none), None, "nothing enables it");
        assert_eq!(
            at(&annotations(&[(a::INJECT, "disabled")]), &enabled),
            None,
            "opted out"
        );
        assert_eq!(
            at(&none, &annotations(&[(a::INJECT, "yes")])),
            None,
            "an invalid value"
        );
        let injected = annotations(&[(a::PROXY_VERSION, "edge-26.8.3")]);
        assert_eq!(at(&injected, &enabled), None, "injected");
    }

    #[test]
    fn confirmation_reads_the_spec() {
        let values = crate::config::load([]).unwrap();
        let enabled = annotations(&[(a::INJECT, "enabled")]);
        let escaped = pod(json!({}), app());
        assert_eq!(
            confirm(&escaped, &enabled, &values).unwrap(),
            Some(Escape {
                annotation_at: AnnotationAt::Namespace
            })
        );
        let mut host = app();
        host["hostNetwork"] = json!(true);
        assert_eq!(
            confirm(&pod(json!({}), host), &enabled, &values).unwrap(),
            None
        );
        let mut sidecar = app();
        sidecar["containers"] = json!([{"name": "web"}, {"name": "linkerd-proxy", "image": "p"}]);
        assert_eq!(
            confirm(&pod(json!({}), sidecar), &enabled, &values).unwrap(),
            None
        );
        let opted_out = pod(json!({"linkerd.io/inject": "disabled"}), app());
        assert_eq!(confirm(&opted_out, &enabled, &values).unwrap(), None);
        let injected = pod(json!({"linkerd.io/proxy-version": "v"}), app());
        assert_eq!(confirm(&injected, &enabled, &values).unwrap(), None);
        assert_eq!(
            confirm(&escaped, &Annotations::new(), &values).unwrap(),
            None
        );
    }

    #[test]
    fn the_reason_says_where_injection_is_enabled() {
        let ns = Escape {
            annotation_at: AnnotationAt::Namespace,
        };
        assert!(ns
            .why("shop")
            .starts_with("its namespace \"shop\" has the annotation \"linkerd.io/inject\""));
        let pod = Escape {
            annotation_at: AnnotationAt::Workload,
        };
        assert!(pod.why("shop").starts_with("the pod has"));
    }
}
