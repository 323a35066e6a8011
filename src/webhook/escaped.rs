//! Pods that escaped injection (docs/escaped.md): with `failurePolicy: Ignore`, a pod created
//! while the webhook is unreachable starts without a proxy. This finds such pods and says so.
//!
//! A metadata-only reflector keeps every pod's name, uid, age, owner and Linkerd
//! annotations. Every `--uninjected-scan-interval` the pods are read from memory: a pod is a
//! *suspect* when a review would inject it now by its annotations and its namespace's
//! (`escaped::suspect` in the core) and it is older than `--uninjected-grace-period`. A
//! suspect is *confirmed* by one GET of the pod and the core's whole decision on its spec
//! (`escaped::confirm`), at most `--uninjected-confirmations-per-second`; the answer is kept
//! for as long as the annotations it was made from stay the same (the spec fields it reads
//! cannot change on a running pod), so a steady state makes no API call beyond the watch.
//!
//! A confirmed pod is reported in `proxy_injector_uninjected_pods{namespace}`, in one log
//! line and one `NotInjected` Event on the pod, and in `GET /uninjected` on the admin port.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Pod};
use kube::api::{Api, PartialObjectMeta};
use kube::core::Selector;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use serde::Serialize;

use super::cache::Caches;
use super::config::ConfigStore;
use super::events::EventSink;
use super::metrics::{Metrics, NamespaceLabels};
use crate::config::overrides::Annotations;
use crate::escaped::{self, Escape};

/// The detection's settings, from the flags.
#[derive(Clone, Debug)]
pub struct Settings {
    pub grace_period: Duration,
    pub scan_interval: Duration,
    pub confirmations_per_second: NonZeroU32,
    /// The webhook configuration's selectors: what it never reviews is never reported.
    pub namespace_selector: Selector,
    pub object_selector: Selector,
}

/// One pod that runs without a proxy although the webhook would inject it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Uninjected {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// The pod's controller, as its `ownerReferences` name it (empty for a bare pod).
    pub owner_kind: String,
    pub owner_name: String,
    /// `creationTimestamp`, RFC 3339.
    pub created: String,
    pub why: String,
}

/// What was decided about one suspect pod, and from which annotations.
struct Checked {
    inputs: (String, String),
    found: Option<Uninjected>,
}

#[derive(Clone)]
pub struct Detector {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    pods: Store<PartialObjectMeta<Pod>>,
    /// The namespaces the webhook configuration selects (names only).
    namespaces: Store<PartialObjectMeta<Namespace>>,
    caches: Caches,
    config: Arc<ConfigStore>,
    events: Option<EventSink>,
    metrics: Arc<Metrics>,
    settings: Settings,
    bucket: governor::DefaultDirectRateLimiter,
    /// Suspect pods, by uid.
    checked: Mutex<HashMap<String, Checked>>,
    /// The namespaces in the gauge.
    published: Mutex<BTreeSet<String>>,
}

impl Detector {
    /// Starts the pod reflector and the scans.
    pub fn start(
        client: Client,
        caches: Caches,
        config: Arc<ConfigStore>,
        events: Option<EventSink>,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Detector {
        let pods = super::cache::run_reflector::<Pod>(
            &client,
            "pods",
            keep_pod,
            &settings.object_selector,
        );
        let namespaces = super::cache::run_reflector::<Namespace>(
            &client,
            "selected namespaces",
            keep_name,
            &settings.namespace_selector,
        );
        let quota = governor::Quota::per_second(settings.confirmations_per_second);
        let detector = Detector {
            inner: Arc::new(Inner {
                client,
                pods,
                namespaces,
                caches,
                config,
                events,
                metrics,
                settings,
                bucket: governor::RateLimiter::direct(quota),
                checked: Mutex::new(HashMap::new()),
                published: Mutex::new(BTreeSet::new()),
            }),
        };
        let d = detector.clone();
        tokio::spawn(async move { d.run().await });
        detector
    }

    /// The pods found so far, by namespace and name.
    pub fn uninjected(&self) -> Vec<Uninjected> {
        let checked = self.inner.lock();
        let mut found: Vec<Uninjected> = checked.values().filter_map(|c| c.found.clone()).collect();
        found.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
        found
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    async fn run(self) {
        let ready = self.inner.pods.wait_until_ready().await.is_ok()
            && self.inner.namespaces.wait_until_ready().await.is_ok();
        if !ready {
            return;
        }
        tracing::info!("pod cache synced: looking for pods that escaped injection");
        let mut tick = tokio::time::interval(self.inner.settings.scan_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.scan().await;
        }
    }

    /// One pass over the pods in memory.
    async fn scan(&self) {
        let inner = &self.inner;
        let Some(values) = inner.config.current() else {
            return;
        };
        if !inner.caches.synced() {
            return;
        }
        let now = k8s_openapi::jiff::Timestamp::now();
        let pods = inner.pods.state();
        let mut alive = HashSet::with_capacity(pods.len());
        let mut namespaces: HashMap<&str, Option<Annotations>> = HashMap::new();
        let mut budget = true;
        for pod in &pods {
            let meta = &pod.metadata;
            let (Some(uid), Some(ns), Some(name)) = (&meta.uid, &meta.namespace, &meta.name) else {
                continue;
            };
            alive.insert(uid.as_str());
            let ns_annotations = namespaces.entry(ns).or_insert_with(|| {
                let selected = inner.namespaces.get(&ObjectRef::new(ns)).is_some();
                selected
                    .then(|| inner.caches.cached_namespace_annotations(ns))
                    .flatten()
            });
            let Some(ns_annotations) = ns_annotations else {
                continue;
            };
            let own = annotations_of(meta);
            if escaped::suspect(&own, ns_annotations).is_none() {
                inner.lock().remove(uid);
                continue;
            }
            let inputs = inputs(&own, ns_annotations);
            if inner.lock().get(uid).is_some_and(|c| c.inputs == inputs) {
                continue;
            }
            let age = meta
                .creation_timestamp
                .as_ref()
                .map(|t| now.duration_since(t.0));
            let grace = inner.settings.grace_period.as_secs_f64();
            if !age.is_some_and(|a| a.as_secs_f64() >= grace) {
                continue;
            }
            // Past the rate, the rest waits for the next scans.
            budget = budget && inner.bucket.check().is_ok();
            if !budget {
                continue;
            }
            let found = match self.confirm(ns, name, ns_annotations, &values).await {
                Ok(found) => found.map(|escape| uninjected(meta, escape)),
                Err(error) => {
                    tracing::warn!(namespace = %ns, pod = %name, %error, "could not confirm whether the pod escaped injection; retrying later");
                    continue;
                }
            };
            if let Some(u) = &found {
                self.report(u);
            }
            inner.lock().insert(uid.clone(), Checked { inputs, found });
        }
        inner.lock().retain(|uid, _| alive.contains(uid.as_str()));
        self.publish();
    }

    /// The core's whole decision on the pod as it runs.
    async fn confirm(
        &self,
        ns: &str,
        name: &str,
        ns_annotations: &Annotations,
        values: &crate::config::Values,
    ) -> Result<Option<Escape>, String> {
        let api = Api::<Pod>::namespaced(self.inner.client.clone(), ns);
        let Some(pod) = api.get_opt(name).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let value = serde_json::to_value(&pod).map_err(|e| e.to_string())?;
        // The pod as read now decides, whatever its metadata said at the scan.
        escaped::confirm(&value, ns_annotations, values).map_err(|e| e.to_string())
    }

    /// The log line and the Event, once per pod.
    fn report(&self, u: &Uninjected) {
        tracing::warn!(namespace = %u.namespace, pod = %u.pod, owner_kind = %u.owner_kind, owner_name = %u.owner_name, why = %u.why, "pod escaped injection: it runs without a proxy");
        let Some(events) = &self.inner.events else {
            return;
        };
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(u.pod.clone()),
            namespace: Some(u.namespace.clone()),
            uid: Some(u.uid.clone()),
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "NotInjected".into(),
            note: Some(format!(
                "Linkerd sidecar proxy not injected: {}; it was created while the injector \
                 did not answer (failurePolicy: Ignore). Re-create the pod to inject it.",
                u.why
            )),
            action: "Detected".into(),
            secondary: None,
        };
        events.record(reference, event);
    }

    /// The gauge, per namespace; namespaces with none left are removed from it.
    fn publish(&self) {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for u in self.uninjected() {
            *counts.entry(u.namespace).or_default() += 1;
        }
        let gauge = &self.inner.metrics.uninjected;
        let mut published = self
            .inner
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for namespace in published.iter() {
            if !counts.contains_key(namespace) {
                gauge.remove(&NamespaceLabels {
                    namespace: namespace.clone(),
                });
            }
        }
        *published = counts.keys().cloned().collect();
        for (namespace, n) in counts {
            gauge.get_or_create(&NamespaceLabels { namespace }).set(n);
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Checked>> {
        // A panic while holding the lock leaves plain data behind, still consistent.
        self.checked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the decision about a suspect pod is made from, besides its spec (which cannot change
/// on a running pod in any way the decision reads): its `linkerd.io/inject` and its
/// namespace's.
fn inputs(own: &Annotations, ns: &Annotations) -> (String, String) {
    let inject = |m: &Annotations| {
        m.get(crate::annotations::INJECT)
            .cloned()
            .unwrap_or_default()
    };
    (inject(own), inject(ns))
}

fn uninjected(meta: &kube::core::ObjectMeta, escape: Escape) -> Uninjected {
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let namespace = meta.namespace.clone().unwrap_or_default();
    Uninjected {
        why: escape.why(&namespace),
        namespace,
        pod: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        owner_kind: owner.map(|o| o.kind.clone()).unwrap_or_default(),
        owner_name: owner.map(|o| o.name.clone()).unwrap_or_default(),
        created: meta
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
    }
}

fn annotations_of(meta: &kube::core::ObjectMeta) -> Annotations {
    meta.annotations
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A namespace as the selected-namespaces reflector keeps it: its name.
fn keep_name(meta: &mut kube::core::ObjectMeta) {
    *meta = kube::core::ObjectMeta {
        name: meta.name.take(),
        ..Default::default()
    };
}

/// A pod as the reflector keeps it: what detection reads. With 100,000 pods, the rest
/// (labels, managed fields, other annotations) is memory for nothing.
fn keep_pod(meta: &mut kube::core::ObjectMeta) {
    let annotations = meta.annotations.take().map(|a| {
        a.into_iter()
            .filter(|(k, _)| {
                k == crate::annotations::INJECT || k == crate::annotations::PROXY_VERSION
            })
            .collect()
    });
    let owner_references = meta.owner_references.take().map(|o| {
        o.into_iter()
            .filter(|o| o.controller == Some(true))
            .collect()
    });
    *meta = kube::core::ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        creation_timestamp: meta.creation_timestamp.take(),
        annotations,
        owner_references,
        ..Default::default()
    };
}
