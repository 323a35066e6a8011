//! Every pod's metadata, kept small: what the detection of pods that escaped injection reads
//! (`escaped.rs`). kube's reflector store keeps each pod as a full `ObjectMeta` behind an
//! `Arc`, with its key's strings again: ~1.4 KB a pod, 139 MiB for 100,000 pods
//! (BENCHMARKS.md §8). This index keeps a pod in about a tenth of that: its name, uid and
//! creation time, its `linkerd.io/inject` value, whether it has `linkerd.io/proxy-version`,
//! and its controller, with namespaces and owner kinds shared.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PartialObjectMeta};
use kube::core::Selector;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use tokio::sync::watch;

use crate::annotations as a;

/// One pod.
#[derive(Clone, Debug)]
pub struct Seen {
    pub namespace: Arc<str>,
    pub name: Box<str>,
    /// `creationTimestamp`, Unix seconds.
    pub created: Option<i64>,
    /// `linkerd.io/inject`, if set.
    pub inject: Option<Box<str>>,
    /// Has `linkerd.io/proxy-version`.
    pub injected: bool,
    pub owner: Option<Owner>,
}

/// A pod's controller.
#[derive(Clone, Debug)]
pub struct Owner {
    pub api_version: Arc<str>,
    pub kind: Arc<str>,
    pub name: Box<str>,
    pub uid: Box<str>,
}

#[derive(Default)]
struct Pods {
    /// By uid.
    pods: HashMap<Box<str>, Seen>,
    /// A relist in progress (kube's watcher lists again after a watch is lost).
    relist: Option<HashMap<Box<str>, Seen>>,
    /// Namespaces, owner kinds and API versions, stored once.
    names: HashSet<Arc<str>>,
}

impl Pods {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.names.get(s) {
            return found.clone();
        }
        let shared: Arc<str> = Arc::from(s);
        self.names.insert(shared.clone());
        shared
    }

    fn seen(&mut self, pod: &PartialObjectMeta<Pod>) -> Option<(Box<str>, Seen)> {
        let meta = &pod.metadata;
        let uid = meta.uid.as_deref()?;
        let annotations = meta.annotations.as_ref();
        let owner = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| Owner {
                api_version: self.intern(&o.api_version),
                kind: self.intern(&o.kind),
                name: o.name.as_str().into(),
                uid: o.uid.as_str().into(),
            });
        let seen = Seen {
            namespace: self.intern(meta.namespace.as_deref().unwrap_or_default()),
            name: meta.name.as_deref().unwrap_or_default().into(),
            created: meta.creation_timestamp.as_ref().map(|t| t.0.as_second()),
            inject: annotations
                .and_then(|m| m.get(a::INJECT))
                .map(|v| v.as_str().into()),
            injected: annotations.is_some_and(|m| m.contains_key(a::PROXY_VERSION)),
            owner,
        };
        Some((uid.into(), seen))
    }

    fn apply(&mut self, event: watcher::Event<PartialObjectMeta<Pod>>) -> bool {
        match event {
            watcher::Event::Apply(pod) => {
                if let Some((uid, seen)) = self.seen(&pod) {
                    self.pods.insert(uid, seen);
                }
            }
            watcher::Event::Delete(pod) => {
                if let Some(uid) = pod.metadata.uid.as_deref() {
                    self.pods.remove(uid);
                }
            }
            watcher::Event::Init => self.relist = Some(HashMap::new()),
            watcher::Event::InitApply(pod) => {
                if let Some((uid, seen)) = self.seen(&pod) {
                    self.relist.get_or_insert_default().insert(uid, seen);
                }
            }
            watcher::Event::InitDone => {
                self.pods = self.relist.take().unwrap_or_default();
                // Names no pod uses any more are dropped with the old list.
                let used: HashSet<*const u8> = self
                    .pods
                    .values()
                    .flat_map(|p| {
                        let owner = p.owner.as_ref();
                        [
                            Some(&p.namespace),
                            owner.map(|o| &o.kind),
                            owner.map(|o| &o.api_version),
                        ]
                    })
                    .flatten()
                    .map(|s| s.as_ptr())
                    .collect();
                self.names.retain(|n| used.contains(&n.as_ptr()));
                return true;
            }
        }
        false
    }
}

/// The pods a label selector selects, kept up to date by a metadata-only watch.
#[derive(Clone)]
pub struct PodIndex {
    pods: Arc<Mutex<Pods>>,
    synced: watch::Receiver<bool>,
}

impl PodIndex {
    /// Lists (500 a page) and watches the pods `selector` selects, for the life of the process.
    pub fn start(client: &Client, selector: &Selector) -> PodIndex {
        let api = Api::<PartialObjectMeta<Pod>>::all(client.clone());
        let config = watcher::Config::default()
            .page_size(500)
            .labels_from(selector);
        let stream = watcher(api, config).default_backoff();
        let pods = Arc::new(Mutex::new(Pods::default()));
        let (tx, synced) = watch::channel(false);
        let index = PodIndex { pods, synced };
        let writer = index.pods.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => {
                        let listed = lock(&writer).apply(event);
                        if listed {
                            tx.send_replace(true);
                        }
                    }
                    Err(error) => tracing::warn!(%error, cache = "pods", "watch failed; retrying"),
                }
            }
        });
        index
    }

    /// Waits for the first full list.
    pub async fn synced(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Calls `f` on every pod, under the index's lock (keep `f` short).
    pub fn for_each(&self, mut f: impl FnMut(&str, &Seen)) {
        let pods = lock(&self.pods);
        for (uid, pod) in &pods.pods {
            f(uid, pod);
        }
    }

    pub fn contains(&self, uid: &str) -> bool {
        lock(&self.pods).pods.contains_key(uid)
    }

    pub fn len(&self) -> usize {
        lock(&self.pods).pods.len()
    }
}

fn lock(pods: &Mutex<Pods>) -> std::sync::MutexGuard<'_, Pods> {
    // A panic while holding the lock leaves plain data behind, still consistent.
    pods.lock().unwrap_or_else(|e| e.into_inner())
}
