//! Healing pods that escaped injection (`--heal-uninjected`, off by default; docs/escaped.md):
//! the pods the detector reports (`escaped.rs`) are evicted, so that their controller
//! re-creates them through a webhook that answers.
//!
//! - Only pods a controller re-creates (owned by a ReplicaSet, StatefulSet, DaemonSet or Job)
//!   are evicted; a bare pod, or one owned by anything else, is only reported.
//! - Through the Eviction API, so PodDisruptionBudgets hold: a 429 is tried again later, after
//!   a backoff that doubles per refusal (from `--heal-interval`, at most 5 minutes).
//! - At most one eviction per `--heal-interval` (10 s), and none while this webhook is not
//!   ready: the re-created pod must meet a working webhook.
//! - By one replica at a time: the holder of the Lease `proxy-injector-healer` in the
//!   webhook's namespace (kube-lease-manager). The others detect only.
//!
//! Each eviction is counted in `proxy_injector_heal_evictions_total{result}` and recorded as
//! an Event on the pod's owner.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, EvictParams};
use kube::runtime::events::{Event, EventType};
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::time::Instant;

use super::escaped::{Detector, Uninjected};
use super::events::EventSink;
use super::metrics::Metrics;

/// The Lease whose holder heals.
pub const LEASE: &str = "proxy-injector-healer";

/// How long a holder keeps the Lease without renewing it, and how early it renews.
const LEASE_SECONDS: u64 = 15;
const LEASE_GRACE_SECONDS: u64 = 5;

/// The longest wait before an eviction refused by a disruption budget is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Owners that re-create an evicted pod.
const CONTROLLERS: &[&str] = &["ReplicaSet", "StatefulSet", "DaemonSet", "Job"];

#[derive(Clone, Debug)]
pub struct Settings {
    /// One eviction at most per interval.
    pub interval: Duration,
    /// Where the Lease is.
    pub namespace: String,
    /// This replica's name in the Lease and in Events.
    pub identity: String,
}

/// Whether the pod is one a controller re-creates.
pub fn healable(u: &Uninjected) -> bool {
    CONTROLLERS.contains(&u.owner_kind.as_str())
}

/// What became of one eviction, the `result` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Evicted,
    /// 429: a PodDisruptionBudget does not allow it now.
    Refused,
    /// The pod is gone already.
    Gone,
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Evicted => "evicted",
            Outcome::Refused => "refused_by_disruption_budget",
            Outcome::Gone => "gone",
            Outcome::Failed => "failed",
        }
    }
}

/// Starts the Lease and the healing loop.
pub fn start(
    client: Client,
    detector: Detector,
    ready: Arc<dyn Fn() -> bool + Send + Sync>,
    events: Option<EventSink>,
    metrics: Arc<Metrics>,
    settings: Settings,
) {
    let healer = Healer {
        client,
        detector,
        ready,
        events,
        metrics,
        settings,
        attempts: HashMap::new(),
    };
    tokio::spawn(healer.run());
}

async fn lease(
    client: &Client,
    settings: &Settings,
) -> Result<tokio::sync::watch::Receiver<bool>, kube_lease_manager::LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client.clone(), LEASE)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(LEASE_GRACE_SECONDS)
        .build()
        .await?;
    // The task runs for the life of the process (it ends when the receiver is dropped).
    let (leader, _task) = manager.watch().await;
    Ok(leader)
}

struct Healer {
    client: Client,
    detector: Detector,
    ready: Arc<dyn Fn() -> bool + Send + Sync>,
    events: Option<EventSink>,
    metrics: Arc<Metrics>,
    settings: Settings,
    /// Refused or failed evictions by pod uid: how many, and when to try again.
    attempts: HashMap<String, (u32, Instant)>,
}

impl Healer {
    async fn run(mut self) {
        let leader = match lease(&self.client, &self.settings).await {
            Ok(leader) => leader,
            Err(error) => {
                tracing::error!(%error, lease = LEASE, "cannot take part in the healer election: healing is off in this replica");
                return;
            }
        };
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_leader = false;
        loop {
            tick.tick().await;
            let leader = *leader.borrow();
            if leader != was_leader {
                tracing::info!(identity = %self.settings.identity, leader, lease = LEASE, "healer election");
                was_leader = leader;
            }
            if !leader || !(self.ready)() {
                continue;
            }
            let found = self.detector.uninjected();
            self.attempts
                .retain(|uid, _| found.iter().any(|u| u.uid == *uid));
            let now = Instant::now();
            let next = found.into_iter().find(|u| {
                healable(u)
                    && !self.detector.evicted(&u.uid)
                    && self.attempts.get(&u.uid).is_none_or(|(_, at)| *at <= now)
            });
            if let Some(pod) = next {
                self.evict(&pod).await;
            }
        }
    }

    async fn evict(&mut self, u: &Uninjected) {
        let api = Api::<Pod>::namespaced(self.client.clone(), &u.namespace);
        let outcome = match api.evict(&u.pod, &EvictParams::default()).await {
            Ok(_) => Outcome::Evicted,
            Err(kube::Error::Api(e)) if e.code == 429 => Outcome::Refused,
            Err(kube::Error::Api(e)) if e.code == 404 => Outcome::Gone,
            Err(error) => {
                tracing::warn!(namespace = %u.namespace, pod = %u.pod, %error, "evicting a pod that escaped injection failed");
                Outcome::Failed
            }
        };
        self.metrics.heal_eviction(outcome.label());
        match outcome {
            Outcome::Evicted => {
                self.detector.mark_evicted(&u.uid);
                tracing::info!(namespace = %u.namespace, pod = %u.pod, owner_kind = %u.owner_kind, owner_name = %u.owner_name, "evicted a pod that escaped injection, to be re-created through the webhook");
                self.record(u);
            }
            Outcome::Gone => self.detector.mark_evicted(&u.uid),
            Outcome::Refused | Outcome::Failed => {
                let tries = self.attempts.get(&u.uid).map_or(0, |(n, _)| *n) + 1;
                let wait = backoff(self.settings.interval, tries);
                tracing::info!(namespace = %u.namespace, pod = %u.pod, result = outcome.label(), retry_in = ?wait, "eviction not done; trying again later");
                self.attempts
                    .insert(u.uid.clone(), (tries, Instant::now() + wait));
            }
        }
    }

    /// The Event on the pod's owner.
    fn record(&self, u: &Uninjected) {
        let (Some(events), Some(owner)) = (&self.events, &u.owner) else {
            return;
        };
        let reference = ObjectReference {
            namespace: Some(u.namespace.clone()),
            ..owner.clone()
        };
        let event = Event {
            type_: EventType::Normal,
            reason: "EvictedForInjection".into(),
            note: Some(format!(
                "Evicted pod {} to re-create it with the Linkerd sidecar proxy: {}",
                u.pod, u.why
            )),
            action: "Evict".into(),
            secondary: None,
        };
        events.record(reference, event);
    }
}

/// The wait after the `tries`th refusal: the interval, doubled per refusal, at most
/// [`MAX_BACKOFF`].
fn backoff(interval: Duration, tries: u32) -> Duration {
    let factor = 1u32 << tries.saturating_sub(1).min(16);
    interval.saturating_mul(factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_five_minutes() {
        let s = Duration::from_secs(10);
        assert_eq!(backoff(s, 1), Duration::from_secs(10));
        assert_eq!(backoff(s, 2), Duration::from_secs(20));
        assert_eq!(backoff(s, 4), Duration::from_secs(80));
        assert_eq!(backoff(s, 6), MAX_BACKOFF);
        assert_eq!(backoff(s, 1000), MAX_BACKOFF);
    }
}
