//! The webhook's decision on one decoded review, as a value.
//!
//! [`verdict`] goes from the review, the config and a [`Lookup`] (what the cluster knows:
//! namespaces and pod owners) to a [`Verdict`]: the response, the outcome, the metric labels
//! and the Event to record. It sends nothing, counts nothing and reads no clock; the handler
//! (`admission.rs`) carries the verdict out. The caches (`cache.rs`) implement [`Lookup`] from
//! their reflectors; the unit tests (`verdict/tests.rs`) implement it over kube-runtime stores
//! they fill themselves, and decide reviews in-process.
//!
//! The work is split in two so that the handler can run the CPU-bound half on the blocking
//! pool for large reviews: [`prepare`] does the lookups, [`judge`] calls the core.

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::{DynamicObject, ObjectMeta};
use kube::runtime::events::{Event, EventType};
use serde_json::Value;

use super::admission::Decoded;
use super::cache::CacheError;
use super::metrics::{RequestLabels, ResponseLabels};
use crate::config::overrides::{self, Annotations, Warning};
use crate::config::Values;
use crate::inject::{self, InjectError, Outcome, Request};
use crate::render::RenderError;
use crate::workload;

/// The owners whose metadata owner resolution reads (docs/behaviour.md §10.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerKind {
    ReplicaSet,
    Job,
}

/// What a review needs from the cluster.
pub trait Lookup: Sync {
    /// Whether the caches have done their initial list; reviews wait for that.
    fn synced(&self) -> bool;
    /// The annotations of namespace `ns`; an error when it does not exist.
    fn namespace_annotations(
        &self,
        ns: &str,
    ) -> impl Future<Output = Result<Annotations, CacheError>> + Send;
    /// The metadata of the ReplicaSet or Job `ns/name`; `None` when it does not exist.
    fn owner_metadata(
        &self,
        kind: OwnerKind,
        ns: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ObjectMeta>, CacheError>> + Send;
}

/// A fault that is not the pod's: answered as `--on-error` says.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("the Linkerd config has not been loaded from the config directory")]
    NoConfig,
    #[error("the namespace, replicaset and job caches have not synced yet")]
    NotSynced,
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot inject: {0}")]
    Core(String),
    #[error("review worker failed: {0}")]
    Join(String),
    #[error("review deadline of {0:?} passed")]
    Deadline(std::time::Duration),
}

impl Fault {
    /// The `reason` label of `proxy_injector_review_faults_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Fault::NoConfig => "no_config",
            Fault::NotSynced => "not_synced",
            Fault::Cache(CacheError::RateLimited { .. }) => "lookup_rate_limited",
            Fault::Cache(_) => "lookup_failed",
            Fault::Core(_) => "render_failed",
            Fault::Join(_) => "worker_failed",
            Fault::Deadline(_) => "deadline",
        }
    }
}

/// The pod's owner as Linkerd resolves it (docs/behaviour.md §10.5).
#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    /// Lower-cased kind: `deployment`, `cronjob`, `replicaset`, `pod`, …
    pub kind: String,
    pub name: String,
    /// Where to record Events; `None` for a bare pod (it does not exist yet).
    pub reference: Option<ObjectReference>,
}

/// Kinds upstream's resource table knows; other owners get `owner_kind=""` and no events.
const KNOWN_OWNER_KINDS: &[&str] = &[
    "cronjob",
    "configmap",
    "deployment",
    "daemonset",
    "endpoints",
    "endpointslices",
    "job",
    "mutatingwebhookconfig",
    "namespace",
    "node",
    "pod",
    "replicationcontroller",
    "replicaset",
    "serverauthorization",
    "secret",
    "serviceprofile",
    "service",
    "statefulset",
    "server",
];

impl Owner {
    /// The `owner_kind` metric label.
    pub fn metric_kind(&self) -> &str {
        if KNOWN_OWNER_KINDS.contains(&self.kind.as_str()) {
            &self.kind
        } else {
            ""
        }
    }
}

/// Resolves the owner of `pod` in namespace `ns` (docs/behaviour.md §10.5): a Job's single
/// owner (a CronJob), a ReplicaSet's single owner when it is a workload kind, else the direct
/// owner; a pod with no owner, or several, is its own.
pub async fn resolve_owner(
    lookup: &impl Lookup,
    pod: &Value,
    ns: &str,
) -> Result<Owner, CacheError> {
    let meta = pod.get("metadata");
    let refs: Vec<OwnerReference> = meta
        .and_then(|m| m.get("ownerReferences"))
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    let [single] = refs.as_slice() else {
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return Ok(Owner {
            kind: "pod".into(),
            name: name.to_string(),
            reference: None,
        });
    };
    let direct = owner_of(single, ns);
    let (kind, parent_kinds): (_, &[&str]) = match single.kind.as_str() {
        "Job" => (OwnerKind::Job, &[]),
        "ReplicaSet" => (
            OwnerKind::ReplicaSet,
            &["job", "statefulset", "daemonset", "deployment"],
        ),
        _ => return Ok(direct),
    };
    let meta = lookup.owner_metadata(kind, ns, &single.name).await?;
    let parent = meta.as_ref().and_then(single_owner).filter(|p| {
        parent_kinds.is_empty() || parent_kinds.contains(&p.kind.to_lowercase().as_str())
    });
    Ok(parent.map(|p| owner_of(&p, ns)).unwrap_or(direct))
}

fn single_owner(meta: &ObjectMeta) -> Option<OwnerReference> {
    match meta.owner_references.as_deref() {
        Some([one]) => Some(one.clone()),
        _ => None,
    }
}

fn owner_of(r: &OwnerReference, ns: &str) -> Owner {
    Owner {
        kind: r.kind.to_lowercase(),
        name: r.name.clone(),
        reference: Some(ObjectReference {
            api_version: Some(r.api_version.clone()),
            kind: Some(r.kind.clone()),
            name: Some(r.name.clone()),
            namespace: Some(ns.to_string()),
            uid: Some(r.uid.clone()),
            ..ObjectReference::default()
        }),
    }
}

/// What the webhook says about itself in every review.
#[derive(Debug)]
pub struct Context {
    pub control_plane_ns: String,
    /// The value of `linkerd.io/created-by`.
    pub created_by: String,
    /// What the reviews of one config share: rendered once, reused by every review after.
    pub renders: inject::RenderCache,
}

/// The decision on one review, and everything the handler does with it.
pub struct Verdict {
    pub response: AdmissionResponse,
    /// The `outcome` label: `ignored`, `skipped`, `injected`, `patched`, `denied`.
    pub outcome: &'static str,
    /// `proxy_injector_requests_total`'s labels, for pods and services that were decided.
    pub request: Option<RequestLabels>,
    /// `proxy_injector_responses_total`'s labels, for pods answered with or without a patch.
    pub response_labels: Option<ResponseLabels>,
    /// The Event for the pod's owner (none on dry runs or for owners upstream does not know).
    pub event: Option<(ObjectReference, Event)>,
    /// Annotation values that were ignored, for the log.
    pub warnings: Vec<Warning>,
}

impl Verdict {
    fn plain(response: AdmissionResponse, outcome: &'static str) -> Verdict {
        Verdict {
            response,
            outcome,
            request: None,
            response_labels: None,
            event: None,
            warnings: Vec::new(),
        }
    }
}

/// A review whose lookups are done and whose decision is the core's.
pub struct Prepared {
    req: AdmissionRequest<DynamicObject>,
    obj: Value,
    kind: String,
    values: Arc<Values>,
    ns: String,
    namespace_annotations: Annotations,
    owner: Option<Owner>,
}

/// Either the review is decided already, or the core decides it.
pub enum Step {
    Decided(Box<Verdict>),
    Core(Box<Prepared>),
}

/// The review's lookups: the namespace's annotations and, for a pod, its owner. Reviews
/// other than the creation of a Pod or a Service are allowed untouched here.
pub async fn prepare(
    decoded: Decoded,
    values: Option<Arc<Values>>,
    lookup: &impl Lookup,
) -> Result<Step, Fault> {
    let Decoded { req, object } = decoded;
    let allow = AdmissionResponse::from(&req);
    if req.operation != Operation::Create {
        return Ok(Step::Decided(Box::new(Verdict::plain(allow, "ignored"))));
    }
    let Some(object) = object else {
        return Ok(Step::Decided(Box::new(Verdict::plain(allow, "ignored"))));
    };
    let obj = object_value(object, &req.kind.kind);
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    if kind != "pod" && kind != "service" {
        return Ok(Step::Decided(Box::new(Verdict::plain(allow, "ignored"))));
    }
    let values = values.ok_or(Fault::NoConfig)?;
    if !lookup.synced() {
        return Err(Fault::NotSynced);
    }
    let ns = req.namespace.clone().unwrap_or_default();
    let namespace_annotations = lookup.namespace_annotations(&ns).await?;
    let owner = match kind.as_str() {
        "pod" => Some(resolve_owner(lookup, &obj, &ns).await?),
        _ => None,
    };
    Ok(Step::Core(Box::new(Prepared {
        req,
        obj,
        kind,
        values,
        ns,
        namespace_annotations,
        owner,
    })))
}

/// The core's decision on a prepared review, and what follows from it.
pub fn judge(p: &Prepared, ctx: &Context) -> Result<Verdict, Fault> {
    let allow = AdmissionResponse::from(&p.req);
    let request = Request::webhook(
        &p.values,
        &ctx.control_plane_ns,
        &ctx.created_by,
        &p.ns,
        &p.namespace_annotations,
        p.owner.as_ref().map(|o| (o.kind.as_str(), o.name.as_str())),
    )
    .cached(&ctx.renders, &p.values);
    let outcome = match inject::inject(&p.obj, &request) {
        Ok(o) => o,
        Err(InjectError::Render(e)) => {
            return match annotation_cause(&e, &p.obj, &p.namespace_annotations) {
                Some(message) => Ok(Verdict::plain(allow.deny(message), "denied")),
                None => Err(Fault::Core(e.to_string())),
            };
        }
        Err(e) => return Err(Fault::Core(e.to_string())),
    };
    let Outcome {
        report,
        patch,
        warnings,
    } = outcome;
    let owner_kind = p
        .owner
        .as_ref()
        .map(|o| o.metric_kind().to_string())
        .unwrap_or_default();
    let annotation_at = report.annotation_at.label().to_string();
    let injected = report.injectable();
    let event = match &p.owner {
        Some(owner) if !p.req.dry_run => event_for(owner, injected, &report.reason_texts()),
        _ => None,
    };
    let response_labels = |skip: bool, skip_reason: String| ResponseLabels {
        owner_kind: owner_kind.clone(),
        namespace: p.ns.clone(),
        skip: skip.to_string(),
        skip_reason,
        annotation_at: annotation_at.clone(),
    };
    let mut verdict = Verdict {
        request: Some(RequestLabels {
            owner_kind: owner_kind.clone(),
            namespace: p.ns.clone(),
            annotation_at: annotation_at.clone(),
        }),
        event,
        warnings,
        ..Verdict::plain(allow, "skipped")
    };
    if patch.is_empty() {
        if p.kind == "pod" {
            verdict.response_labels = Some(response_labels(true, report.reason_codes()));
        }
        return Ok(verdict);
    }
    verdict.response_labels = Some(response_labels(false, String::new()));
    verdict.outcome = if injected { "injected" } else { "patched" };
    verdict.response = super::admission::with_patch(verdict.response, &patch)
        .map_err(|e| Fault::Core(format!("encoding the patch: {e}")))?;
    Ok(verdict)
}

/// The object for the core: as sent, with `kind` from the request when the object lacks it.
pub fn object_value(mut obj: Value, fallback_kind: &str) -> Value {
    if let Value::Object(map) = &mut obj {
        map.entry("kind")
            .or_insert_with(|| Value::String(fallback_kind.to_string()));
    }
    obj
}

/// docs/behaviour.md D-2: when a rendering error comes from an annotation the pod carries (or
/// inherits), the pod is denied with a message naming it; otherwise the config is at fault.
fn annotation_cause(e: &RenderError, obj: &Value, ns: &Annotations) -> Option<String> {
    let key = overrides::blamed_annotation(e)?;
    let own = workload::string_map(
        obj.get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object),
    );
    let value = own.get(key).or_else(|| ns.get(key))?;
    Some(format!("{e} (annotation {key}: {value:?})"))
}

/// The Event for the owner: `Injected`, or `InjectionSkipped` with the reasons. Owners
/// upstream does not know, and bare pods, get none (docs/differences.md Q-24).
fn event_for(owner: &Owner, injected: bool, reasons: &str) -> Option<(ObjectReference, Event)> {
    let reference = owner.reference.clone()?;
    if owner.metric_kind().is_empty() {
        return None;
    }
    let (reason, note) = if injected {
        ("Injected", "Linkerd sidecar proxy injected".to_string())
    } else {
        (
            "InjectionSkipped",
            format!("Linkerd sidecar proxy injection skipped: {reasons}"),
        )
    };
    let event = Event {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    Some((reference, event))
}

#[cfg(test)]
mod tests;
