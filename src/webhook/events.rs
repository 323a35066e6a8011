//! Events about injection, sent in the background so they never slow a review down.
//!
//! A review only queues its Event (`try_send`, never waiting); one task sends them to the
//! API, one at a time. Like client-go's event recorder, which upstream uses, a per-object
//! spam filter lets a burst of 25 Events through and then one every 5 minutes, so a
//! Deployment scaled to 1,000 replicas does not cost 1,000 API calls. What the queue or the
//! filter refuses is counted in `proxy_injector_events_dropped_total`, never waited for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use tokio::sync::mpsc;

use super::metrics::Metrics;

/// Events waiting to be sent; more are dropped.
const QUEUE: usize = 1024;
/// client-go's spam filter: burst and refill interval per object and reason.
const BURST: f64 = 25.0;
const REFILL: Duration = Duration::from_secs(300);
/// Objects the filter remembers; past this, it forgets those with a full bucket.
const MAX_TRACKED: usize = 10_000;

/// The sending end that reviews use.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<(ObjectReference, Event)>,
    metrics: Arc<Metrics>,
}

impl EventSink {
    /// Starts the sender task.
    pub fn start(recorder: Recorder, metrics: Arc<Metrics>) -> EventSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(send_all(recorder, rx, metrics.clone()));
        EventSink { tx, metrics }
    }

    /// Queues `event` about `reference`; drops it if the queue is full.
    pub fn record(&self, reference: ObjectReference, event: Event) {
        if self.tx.try_send((reference, event)).is_err() {
            self.metrics.event_dropped("queue_full");
        }
    }
}

async fn send_all(
    recorder: Recorder,
    mut rx: mpsc::Receiver<(ObjectReference, Event)>,
    metrics: Arc<Metrics>,
) {
    let mut filter = SpamFilter::default();
    while let Some((reference, event)) = rx.recv().await {
        let key = format!(
            "{}/{}/{}/{}/{}",
            reference.namespace.as_deref().unwrap_or(""),
            reference.kind.as_deref().unwrap_or(""),
            reference.name.as_deref().unwrap_or(""),
            reference.uid.as_deref().unwrap_or(""),
            event.reason
        );
        if !filter.allow(key, Instant::now()) {
            metrics.event_dropped("rate_limited");
            continue;
        }
        if let Err(error) = recorder.publish(&event, &reference).await {
            tracing::warn!(%error, "could not record an event");
        }
    }
}

/// A token bucket per key.
#[derive(Default)]
struct SpamFilter {
    buckets: HashMap<String, (f64, Instant)>,
}

impl SpamFilter {
    fn allow(&mut self, key: String, now: Instant) -> bool {
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(&key) {
            self.buckets
                .retain(|_, (tokens, at)| refilled(*tokens, *at, now) < BURST);
        }
        let (tokens, at) = self.buckets.entry(key).or_insert((BURST, now));
        let available = refilled(*tokens, *at, now);
        *at = now;
        if available >= 1.0 {
            *tokens = available - 1.0;
            true
        } else {
            *tokens = available;
            false
        }
    }
}

fn refilled(tokens: f64, at: Instant, now: Instant) -> f64 {
    let earned = now.saturating_duration_since(at).as_secs_f64() / REFILL.as_secs_f64();
    (tokens + earned).min(BURST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_one_per_refill() {
        let mut f = SpamFilter::default();
        let t0 = Instant::now();
        let passed = (0..100).filter(|_| f.allow("a".into(), t0)).count();
        assert_eq!(passed, 25);
        assert!(f.allow("b".into(), t0), "another object has its own bucket");
        assert!(!f.allow("a".into(), t0 + REFILL / 2));
        assert!(f.allow("a".into(), t0 + REFILL + REFILL / 2));
        assert!(!f.allow("a".into(), t0 + REFILL + REFILL / 2));
    }

    #[test]
    fn the_filter_forgets_full_buckets_when_it_tracks_too_many() {
        let mut f = SpamFilter::default();
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED {
            f.allow(format!("k{i}"), t0);
        }
        assert_eq!(f.buckets.len(), MAX_TRACKED);
        // Much later every bucket is full again, so all are forgotten but the new one.
        assert!(f.allow("new".into(), t0 + REFILL * 30));
        assert_eq!(f.buckets.len(), 1);
    }
}
