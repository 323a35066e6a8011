//! Render once per config: what injection adds is the same for every pod of one effective
//! config, so it is computed once and reused — across the documents of a CLI run, across the
//! reviews of the webhook.
//!
//! Two memories, both keyed by what the result is a pure function of:
//!
//! - **configs**: a pod's effective Values (the override registry applied, with its warnings
//!   and the trust-root digest), keyed by the annotations the registry reads
//!   ([`overrides::reads`]) on the pod and on its namespace, and valid for pods whose named
//!   ports answer the registry's lookups the same way;
//! - **containers**: the init container, the proxy, the volumes and the debug container of a
//!   config, keyed by the config, the control-plane namespace and the pod facts they copy
//!   (capabilities, the service-account mount, the trace service name). The proxy's inbound
//!   ports differ from pod to pod and are filled per pod.
//!
//! Without a cache, [`super::resolve`] and [`super::emit`] compute the same things afresh;
//! the results are identical (`cache/tests.rs` checks both ways on pods that differ in every
//! input of a rendering; the CLI goldens are written through the cache).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::sha256_hex;
use crate::config::overrides::{self, Annotations, NamedPorts, Warning};
use crate::config::Values;
use crate::patch::{Added, Shared};
use crate::render::{self, Caps, PodFacts, RenderError, Volumes};

/// Entries beyond which a memory starts over. Distinct configs come from distinct override
/// annotations, a handful in a cluster; an input whose every pod differs gains nothing from
/// remembering, and memory stays bounded.
const REMEMBERED: usize = 256;

/// What a [`RenderCache`] did, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Effective configs computed.
    pub configs: usize,
    /// Sets of containers rendered.
    pub renders: usize,
    /// Lookups answered from memory (configs and containers).
    pub reused: usize,
}

/// Effective configs and rendered containers for one base config (the Values a request
/// carries; a request with other Values empties it).
#[derive(Default)]
pub struct RenderCache {
    memo: Mutex<Memo>,
}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderCache")
            .field("counts", &self.counts())
            .finish()
    }
}

#[derive(Default)]
struct Memo {
    /// The caller's own `Arc`: while the memory holds it, no other Values can be at its
    /// address, so the next request with the same Values is known by a pointer comparison.
    base: Option<Arc<Values>>,
    configs: HashMap<ConfigKey, Vec<Arc<Config>>>,
    containers: HashMap<ContainersKey, Arc<Result<Containers, RenderError>>>,
    next_id: u64,
    counts: Counts,
}

/// The annotations the override registry reads: the pod's, then its namespace's.
type ConfigKey = (Vec<(String, String)>, Vec<(String, String)>);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ContainersKey {
    config: u64,
    control_plane_ns: String,
    proxy_capabilities: Option<Caps>,
    init_capabilities: Option<Caps>,
    sa_mount: Option<String>,
    service_name: Option<String>,
}

/// One effective config: the Values after a pod's overrides, and what follows from them.
#[derive(Debug)]
pub struct Config {
    pub values: Values,
    pub debug_sidecar: bool,
    /// Override values that were ignored.
    pub warnings: Vec<Warning>,
    /// `linkerd.io/trust-root-sha256`.
    pub trust_root_sha256: String,
    /// The named ports the overrides looked up, and the answers: a pod that gives the same
    /// answers has this config.
    asked: Vec<(String, Option<i64>)>,
    id: u64,
}

impl Config {
    /// Applies the overrides in `read` (and the namespace's) to `base`.
    pub fn compute(
        base: &Values,
        read: &Annotations,
        ports: &dyn NamedPorts,
        namespace: Option<&Annotations>,
    ) -> Config {
        let recorder = Recorder {
            ports,
            asked: RefCell::new(Vec::new()),
        };
        let effective = overrides::apply(base.clone(), read, &recorder, namespace);
        Config {
            trust_root_sha256: sha256_hex(&effective.values.identity_trust_anchors_pem),
            values: effective.values,
            debug_sidecar: effective.debug_sidecar,
            warnings: effective.warnings,
            asked: recorder.asked.into_inner(),
            id: 0,
        }
    }

    fn fits(&self, ports: &dyn NamedPorts) -> bool {
        self.asked
            .iter()
            .all(|(name, answer)| ports.port_by_name(name) == *answer)
    }
}

/// Records the named-port lookups the overrides make.
struct Recorder<'a> {
    ports: &'a dyn NamedPorts,
    asked: RefCell<Vec<(String, Option<i64>)>>,
}

impl NamedPorts for Recorder<'_> {
    fn port_by_name(&self, name: &str) -> Option<i64> {
        let answer = self.ports.port_by_name(name);
        self.asked.borrow_mut().push((name.to_string(), answer));
        answer
    }
}

/// What a config adds to a pod, rendered for one set of pod facts, shared by the patches of
/// every such pod (`patch.rs`).
#[derive(Debug)]
pub struct Containers {
    /// The init container, or the CNI network validator.
    pub init: Arc<Shared>,
    /// The proxy, with a hole for the inbound ports of each pod.
    proxy: Arc<Shared>,
    pub volumes: SharedVolumes,
    /// The debug container, when the pod asks for it.
    pub debug: Option<Arc<Shared>>,
}

/// The volumes of [`render::volumes`], shared like the containers (a writer knows them by
/// their `Arc`).
#[derive(Debug)]
pub struct SharedVolumes {
    pub xtables_lock: Option<Arc<Shared>>,
    pub end_entity: Arc<Shared>,
    pub podinfo: Option<Arc<Shared>>,
    pub token: Option<Arc<Shared>>,
}

impl From<Volumes> for SharedVolumes {
    fn from(v: Volumes) -> SharedVolumes {
        let shared = |v: Value| Arc::new(Shared::new(v));
        SharedVolumes {
            xtables_lock: v.xtables_lock.map(shared),
            end_entity: shared(v.end_entity),
            podinfo: v.podinfo.map(shared),
            token: v.token.map(shared),
        }
    }
}

impl Containers {
    /// Renders everything for `config` and `facts`, checking the config first, in the order
    /// [`super::emit`] reports errors.
    pub fn render(
        config: &Config,
        facts: &PodFacts,
        control_plane_ns: &str,
    ) -> Result<Containers, RenderError> {
        let values = &config.values;
        render::require_trust_anchors(values)?;
        render::check(values)?;
        let init = if values.cni_enabled {
            render::network_validator(values)
        } else {
            render::init_container(values, facts)?
        };
        let proxy = render::proxy_container(values, facts, control_plane_ns);
        Ok(Containers {
            init: Arc::new(Shared::new(init)),
            proxy: Arc::new(Shared::with_hole(proxy, render::set_inbound_ports)),
            volumes: SharedVolumes::from(render::volumes(values)),
            debug: config
                .debug_sidecar
                .then(|| Arc::new(Shared::new(render::debug_container(values)))),
        })
    }

    /// The proxy for a pod with these inbound ports.
    pub fn proxy(&self, inbound_ports: &str) -> Added {
        Added::Shared(self.proxy.clone(), inbound_ports.to_string())
    }
}

impl RenderCache {
    /// The effective config for a pod whose overrides are `read` (and its namespace's).
    pub fn config(
        &self,
        base: &Arc<Values>,
        read: &Annotations,
        ports: &dyn NamedPorts,
        namespace: Option<&Annotations>,
    ) -> Arc<Config> {
        let key = (relevant(read), namespace.map(relevant).unwrap_or_default());
        let mut memo = self.lock(base);
        let found = memo
            .configs
            .get(&key)
            .and_then(|list| list.iter().find(|c| c.fits(ports)).cloned());
        if let Some(config) = found {
            memo.counts.reused += 1;
            return config;
        }
        let mut config = Config::compute(base, read, ports, namespace);
        memo.counts.configs += 1;
        memo.next_id += 1;
        config.id = memo.next_id;
        let config = Arc::new(config);
        if memo.configs.len() >= REMEMBERED {
            memo.configs.clear();
        }
        memo.configs.entry(key).or_default().push(config.clone());
        config
    }

    /// What `config` adds to a pod with `facts`.
    pub fn containers(
        &self,
        config: &Config,
        facts: &PodFacts,
        control_plane_ns: &str,
    ) -> Arc<Result<Containers, RenderError>> {
        let key = ContainersKey {
            config: config.id,
            control_plane_ns: control_plane_ns.to_string(),
            proxy_capabilities: facts.proxy_capabilities.clone(),
            init_capabilities: facts.init_capabilities.clone(),
            sa_mount: facts.sa_mount.as_ref().map(Value::to_string),
            // Read only for the trace attributes.
            service_name: facts
                .service_name
                .clone()
                .filter(|_| render::tracing_enabled(&config.values)),
        };
        let mut memo = self.lock_any();
        if let Some(found) = memo.containers.get(&key) {
            let found = found.clone();
            memo.counts.reused += 1;
            return found;
        }
        let rendered = Arc::new(Containers::render(config, facts, control_plane_ns));
        memo.counts.renders += 1;
        if memo.containers.len() >= REMEMBERED {
            memo.containers.clear();
        }
        memo.containers.insert(key, rendered.clone());
        rendered
    }

    pub fn counts(&self) -> Counts {
        self.lock_any().counts
    }

    /// The memory, emptied first if its configs were computed from other base Values. (The
    /// containers go too, to free them: their keys name configs by an id that is never handed
    /// out twice, so they could not be found again anyway — which is also why looking them up
    /// needs no such check.)
    /// Values are compared by address first: the webhook passes the same `Arc` for every
    /// review of one config, and comparing the Values field by field took a twentieth of a
    /// review's CPU. Equal Values from another `Arc` (the same config loaded again) keep the
    /// memory, and that `Arc` is the one held from then on.
    fn lock(&self, base: &Arc<Values>) -> std::sync::MutexGuard<'_, Memo> {
        let mut memo = self.lock_any();
        let held = memo.base.as_ref();
        if held.is_some_and(|h| Arc::ptr_eq(h, base)) {
            return memo;
        }
        if held.is_none_or(|h| **h != **base) {
            memo.configs.clear();
            memo.containers.clear();
        }
        memo.base = Some(base.clone());
        memo
    }

    fn lock_any(&self) -> std::sync::MutexGuard<'_, Memo> {
        // A panic while holding the lock leaves plain data behind, still consistent.
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The annotations of `all` that the override registry reads, in key order.
fn relevant(all: &Annotations) -> Vec<(String, String)> {
    all.iter()
        .filter(|(k, _)| overrides::reads(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests;
