//! Namespaces, ReplicaSets and Jobs from the Kubernetes API, through metadata-only
//! reflectors: reviews read them from memory, never with a GET on the hot path.
//!
//! The one exception is a miss. A new namespace, or the ReplicaSet a Deployment has just
//! created, can reach us in a review before its watch event does; then we make one direct
//! GET (upstream denies the pod for a namespace it has not cached, docs/differences.md Q-8). Misses
//! are what a client controls (any namespace name in a review), so they cannot be amplified:
//! concurrent misses on one object share one GET, its answer (found or not) is kept for
//! `--miss-cache-ttl` in a bounded cache (moka), and GETs pass a token bucket (governor,
//! `--miss-lookups-per-second` and `--miss-lookup-burst`); past it the review is answered as
//! for a failed lookup. `/ready` stays false until the three caches have done their initial
//! list.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::verdict::{Lookup, OwnerKind};
use crate::config::overrides::Annotations;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PartialObjectMeta};
use kube::core::Selector;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;

/// The cluster could not tell us what we need; the review is answered as a fault.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CacheError {
    #[error("namespace {0:?} not found")]
    NamespaceNotFound(String),
    #[error("looking up {what}: {message}")]
    Api { what: String, message: String },
    #[error(
        "looking up {what}: not cached, and direct lookups are over their rate \
         (--miss-lookups-per-second)"
    )]
    RateLimited { what: String },
}

/// Bounds on direct GETs for objects not (yet) in the caches.
#[derive(Clone, Copy, Debug)]
pub struct MissLimits {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
    pub ttl: Duration,
}

/// Entries kept of direct GETs' answers; a name costs ~100 bytes, so 10,000 is ~1 MB.
const MISS_CACHE_ENTRIES: u64 = 10_000;

/// Direct GETs, coalesced, remembered for a while and rate-limited.
struct Misses {
    answers: moka::future::Cache<String, Option<Arc<kube::core::ObjectMeta>>>,
    bucket: governor::DefaultDirectRateLimiter,
}

#[derive(Clone)]
pub struct Caches {
    client: Client,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    replicasets: Store<PartialObjectMeta<ReplicaSet>>,
    jobs: Store<PartialObjectMeta<Job>>,
    misses: Arc<Misses>,
    synced: Arc<AtomicBool>,
}

impl Caches {
    /// Starts the three reflectors; `synced()` turns true once all have listed.
    pub fn start(client: Client, limits: MissLimits) -> Caches {
        let all = Selector::default();
        let namespaces = run_reflector::<Namespace>(&client, "namespaces", keep_annotations, &all);
        let replicasets = run_reflector::<ReplicaSet>(&client, "replicasets", keep_owners, &all);
        let jobs = run_reflector::<Job>(&client, "jobs", keep_owners, &all);
        let synced = Arc::new(AtomicBool::new(false));
        let quota = governor::Quota::per_second(limits.per_second).allow_burst(limits.burst);
        let misses = Arc::new(Misses {
            answers: moka::future::Cache::builder()
                .max_capacity(MISS_CACHE_ENTRIES)
                .time_to_live(limits.ttl)
                .build(),
            bucket: governor::RateLimiter::direct(quota),
        });
        let caches = Caches {
            client,
            namespaces,
            replicasets,
            jobs,
            misses,
            synced: synced.clone(),
        };
        let c = caches.clone();
        tokio::spawn(async move {
            let ok = c.namespaces.wait_until_ready().await.is_ok()
                && c.replicasets.wait_until_ready().await.is_ok()
                && c.jobs.wait_until_ready().await.is_ok();
            if ok {
                tracing::info!("namespace, replicaset and job caches synced");
                synced.store(true, Ordering::SeqCst);
            }
        });
        caches
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// The annotations of namespace `ns`.
    pub async fn namespace_annotations(&self, ns: &str) -> Result<Annotations, CacheError> {
        if let Some(cached) = self.namespaces.get(&ObjectRef::new(ns)) {
            return Ok(annotations_of(&cached.metadata));
        }
        let api = Api::<Namespace>::all(self.client.clone());
        let found = self
            .miss(format!("namespace {ns}"), api, ns, keep_annotations)
            .await?;
        let meta = found.ok_or_else(|| CacheError::NamespaceNotFound(ns.to_string()))?;
        Ok(annotations_of(&meta))
    }

    /// The annotations of namespace `ns` if the cache has it; never a GET.
    pub fn cached_namespace_annotations(&self, ns: &str) -> Option<Annotations> {
        let cached = self.namespaces.get(&ObjectRef::new(ns))?;
        Some(annotations_of(&cached.metadata))
    }

    /// One direct GET of `name` for an object not in the caches, shared by concurrent
    /// reviews, remembered for the TTL, and within the token bucket.
    async fn miss<K>(
        &self,
        what: String,
        api: Api<K>,
        name: &str,
        keep: fn(&mut kube::core::ObjectMeta),
    ) -> Result<Option<Arc<kube::core::ObjectMeta>>, CacheError>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let misses = self.misses.clone();
        let lookup = async {
            if misses.bucket.check().is_err() {
                return Err(CacheError::RateLimited { what: what.clone() });
            }
            let found = api
                .get_metadata_opt(name)
                .await
                .map_err(|e| CacheError::Api {
                    what: what.clone(),
                    message: e.to_string(),
                })?;
            Ok(found.map(|mut o| {
                keep(&mut o.metadata);
                Arc::new(o.metadata)
            }))
        };
        self.misses
            .answers
            .try_get_with(what.clone(), lookup)
            .await
            .map_err(|e| (*e).clone())
    }

    async fn replicaset(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<kube::core::ObjectMeta>, CacheError> {
        cached_or_get(self, &self.replicasets, ns, name, "replicaset").await
    }

    async fn job(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<kube::core::ObjectMeta>, CacheError> {
        cached_or_get(self, &self.jobs, ns, name, "job").await
    }
}

/// What reviews ask of the cluster, answered from the reflectors (and a bounded GET on a miss).
impl Lookup for Caches {
    fn synced(&self) -> bool {
        Caches::synced(self)
    }

    async fn namespace_annotations(&self, ns: &str) -> Result<Annotations, CacheError> {
        Caches::namespace_annotations(self, ns).await
    }

    async fn owner_metadata(
        &self,
        kind: OwnerKind,
        ns: &str,
        name: &str,
    ) -> Result<Option<kube::core::ObjectMeta>, CacheError> {
        match kind {
            OwnerKind::ReplicaSet => self.replicaset(ns, name).await,
            OwnerKind::Job => self.job(ns, name).await,
        }
    }
}

/// The metadata of `ns/name` from the cache, or, on a miss, from one direct GET.
async fn cached_or_get<K>(
    caches: &Caches,
    store: &Store<PartialObjectMeta<K>>,
    ns: &str,
    name: &str,
    what: &str,
) -> Result<Option<kube::core::ObjectMeta>, CacheError>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    if let Some(obj) = store.get(&ObjectRef::new(name).within(ns)) {
        return Ok(Some(obj.metadata.clone()));
    }
    let api = Api::<K>::namespaced(caches.client.clone(), ns);
    let found = caches
        .miss(format!("{what} {ns}/{name}"), api, name, keep_owners)
        .await?;
    Ok(found.map(|m| (*m).clone()))
}

fn annotations_of(meta: &kube::core::ObjectMeta) -> Annotations {
    meta.annotations
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A namespace as the cache keeps it: its name and its Linkerd annotations, the only ones
/// injection inherits. With 10,000 namespaces, the rest is memory for nothing.
fn keep_annotations(meta: &mut kube::core::ObjectMeta) {
    let annotations = meta.annotations.take().map(|a| {
        a.into_iter()
            .filter(|(k, _)| crate::annotations::is_linkerd_key(k))
            .collect()
    });
    *meta = kube::core::ObjectMeta {
        name: meta.name.take(),
        annotations,
        ..Default::default()
    };
}

/// A ReplicaSet or Job as the cache keeps it: what owner resolution reads.
fn keep_owners(meta: &mut kube::core::ObjectMeta) {
    *meta = kube::core::ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        owner_references: meta.owner_references.take(),
        ..Default::default()
    };
}

/// A metadata-only reflector that runs for the life of the process; `keep` trims each
/// object to what the webhook reads before it is stored. Lists are paginated (500 a page);
/// the API server sends only the objects `selector` selects.
pub(super) fn run_reflector<K>(
    client: &Client,
    what: &'static str,
    keep: fn(&mut kube::core::ObjectMeta),
    selector: &Selector,
) -> Store<PartialObjectMeta<K>>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    // `Api<PartialObjectMeta<K>>` lists and watches metadata only.
    let api = Api::<PartialObjectMeta<K>>::all(client.clone());
    let config = watcher::Config::default()
        .page_size(500)
        .labels_from(selector);
    let objects = watcher(api, config).modify(move |o| keep(&mut o.metadata));
    let stream = reflector::reflector(writer, objects)
        .default_backoff()
        .touched_objects();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Err(error) = item {
                tracing::warn!(%error, cache = what, "watch failed; retrying");
            }
        }
    });
    reader
}
