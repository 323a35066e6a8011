//! Pods that escaped injection (docs/escaped.md): with `failurePolicy: Ignore`, a pod created
//! while the webhook is unreachable starts without a proxy. This finds such pods and says so.
//!
//! A compact index fed by a metadata-only watch (`pod_index.rs`) keeps every pod's name,
//! uid, age, owner and Linkerd annotations. Every `--uninjected-scan-interval` the pods are read from memory: a pod is a
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
use super::pod_index::{PodIndex, Seen};
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
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Uninjected {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// The pod's controller, as its `ownerReferences` name it (empty for a bare pod).
    pub owner_kind: String,
    pub owner_name: String,
    /// `creationTimestamp`, Unix seconds (written with the age when asked, `mod.rs`).
    #[serde(skip)]
    pub created: Option<i64>,
    pub why: String,
    /// The controller, for Events on it.
    #[serde(skip)]
    pub owner: Option<ObjectReference>,
}

/// A pod to confirm: a review would inject it by its annotations and its namespace's, which
/// are `inputs` (its `linkerd.io/inject` and its namespace's).
struct Suspect {
    uid: String,
    pod: Seen,
    inputs: (String, String),
}

/// What was decided about one suspect pod, and from which annotations (the spec it was
/// confirmed on cannot change on a running pod in any way the decision reads).
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
    pods: PodIndex,
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
    /// Pods evicted by the healer (`heal.rs`), by uid, until they are gone.
    evicted: Mutex<HashSet<String>>,
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
        let pods = PodIndex::start(&client, &settings.object_selector);
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
                evicted: Mutex::new(HashSet::new()),
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

    /// Whether the healer has evicted the pod already.
    pub fn evicted(&self, uid: &str) -> bool {
        let evicted = self.inner.evicted.lock();
        evicted.unwrap_or_else(|e| e.into_inner()).contains(uid)
    }

    pub fn mark_evicted(&self, uid: &str) {
        let evicted = self.inner.evicted.lock();
        evicted
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_string());
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    async fn run(self) {
        self.inner.pods.synced().await;
        if self.inner.namespaces.wait_until_ready().await.is_err() {
            return;
        }
        let pods = self.inner.pods.len();
        tracing::info!(
            pods,
            "pod cache synced: looking for pods that escaped injection"
        );
        let mut tick = tokio::time::interval(self.inner.settings.scan_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.scan().await;
        }
    }

    /// One pass over the pods in memory, then confirmations of the new suspects.
    async fn scan(&self) {
        let inner = &self.inner;
        let Some(values) = inner.config.current() else {
            return;
        };
        if !inner.caches.synced() {
            return;
        }
        for s in self.suspects() {
            // Past the rate, the rest waits for the next scans.
            if inner.bucket.check().is_err() {
                break;
            }
            let found = match self.confirm(&s, &values).await {
                Ok(found) => found.map(|escape| uninjected(&s.uid, &s.pod, escape)),
                Err(error) => {
                    tracing::warn!(namespace = %s.pod.namespace, pod = %s.pod.name, %error, "could not confirm whether the pod escaped injection; retrying later");
                    continue;
                }
            };
            if let Some(u) = &found {
                self.report(u);
            }
            let inputs = s.inputs;
            inner.lock().insert(s.uid, Checked { inputs, found });
        }
        inner.lock().retain(|uid, _| inner.pods.contains(uid));
        let evicted = inner.evicted.lock();
        evicted
            .unwrap_or_else(|e| e.into_inner())
            .retain(|uid| inner.pods.contains(uid));
        self.publish();
    }

    /// The pods past their grace period that a review would inject now by their annotations
    /// and that were not decided from the same annotations before; the decisions about pods
    /// no longer suspect are dropped.
    fn suspects(&self) -> Vec<Suspect> {
        let inner = &self.inner;
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        let grace = i64::try_from(inner.settings.grace_period.as_secs()).unwrap_or(i64::MAX);
        let mut namespaces: HashMap<Arc<str>, Option<Annotations>> = HashMap::new();
        let mut suspects = Vec::new();
        let mut checked = inner.lock();
        inner.pods.for_each(|uid, pod| {
            let ns = namespaces.entry(pod.namespace.clone()).or_insert_with(|| {
                let ns = &*pod.namespace;
                let selected = inner.namespaces.get(&ObjectRef::new(ns)).is_some();
                selected
                    .then(|| inner.caches.cached_namespace_annotations(ns))
                    .flatten()
            });
            let Some(ns) = ns else {
                return;
            };
            let ns_inject = ns
                .get(crate::annotations::INJECT)
                .map_or("", String::as_str);
            let pod_inject = pod.inject.as_deref().unwrap_or_default();
            if escaped::suspect_by(pod_inject, pod.injected, ns_inject).is_none() {
                checked.remove(uid);
                return;
            }
            let inputs = (pod_inject.to_string(), ns_inject.to_string());
            if checked.get(uid).is_some_and(|c| c.inputs == inputs) {
                return;
            }
            if pod.created.is_none_or(|c| now.saturating_sub(c) < grace) {
                return;
            }
            suspects.push(Suspect {
                uid: uid.to_string(),
                pod: pod.clone(),
                inputs,
            });
        });
        suspects
    }

    /// The core's whole decision on the pod as it runs.
    async fn confirm(
        &self,
        s: &Suspect,
        values: &crate::config::Values,
    ) -> Result<Option<Escape>, String> {
        let ns = &*s.pod.namespace;
        let Some(ns_annotations) = self.inner.caches.cached_namespace_annotations(ns) else {
            return Ok(None);
        };
        let api = Api::<Pod>::namespaced(self.inner.client.clone(), ns);
        let Some(pod) = api.get_opt(&s.pod.name).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let value = serde_json::to_value(&pod).map_err(|e| e.to_string())?;
        // The pod as read now decides, whatever its metadata said at the scan.
        escaped::confirm(&value, &ns_annotations, values).map_err(|e| e.to_string())
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

fn uninjected(uid: &str, pod: &Seen, escape: Escape) -> Uninjected {
    let owner = pod.owner.as_ref();
    Uninjected {
        why: escape.why(&pod.namespace),
        namespace: pod.namespace.to_string(),
        pod: pod.name.to_string(),
        uid: uid.to_string(),
        owner_kind: owner.map(|o| o.kind.to_string()).unwrap_or_default(),
        owner_name: owner.map(|o| o.name.to_string()).unwrap_or_default(),
        created: pod.created,
        owner: owner.map(|o| ObjectReference {
            api_version: Some(o.api_version.to_string()),
            kind: Some(o.kind.to_string()),
            name: Some(o.name.to_string()),
            uid: Some(o.uid.to_string()),
            ..Default::default()
        }),
    }
}

/// A namespace as the selected-namespaces reflector keeps it: its name.
fn keep_name(meta: &mut kube::core::ObjectMeta) {
    *meta = kube::core::ObjectMeta {
        name: meta.name.take(),
        ..Default::default()
    };
}
