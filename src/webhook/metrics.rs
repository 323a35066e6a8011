//! Prometheus metrics of the admin server's `/metrics`.
//!
//! Linkerd's two counters keep their names and labels, minus the 40 per-annotation labels
//! (D-7 (docs/behaviour.md): their values are whatever pods carry, an unbounded cardinality). Ours
//! add the review latency, the serving certificate's expiry, and config/certificate reload
//! outcomes.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub owner_kind: String,
    pub namespace: String,
    pub annotation_at: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResponseLabels {
    pub owner_kind: String,
    pub namespace: String,
    pub skip: String,
    pub skip_reason: String,
    pub annotation_at: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `injected`, `skipped`, `patched` (opaque-ports only), `denied`, `error`, `ignored`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub namespace: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub responses: Family<ResponseLabels, Counter>,
    pub latency: Family<OutcomeLabels, Histogram>,
    pub cert_expiry: Gauge<i64, AtomicI64>,
    pub config_reloads: Family<ResultLabels, Counter>,
    pub cert_reloads: Family<ResultLabels, Counter>,
    pub events_dropped: Family<ReasonLabels, Counter>,
    pub connections_open: Gauge,
    pub connections_refused: Counter,
    pub rejected: Family<ReasonLabels, Counter>,
    pub faults: Family<ReasonLabels, Counter>,
    pub uninjected: Family<NamespaceLabels, Gauge>,
    pub heal_evictions: Family<ResultLabels, Counter>,
}

/// Latency buckets in milliseconds: sub-millisecond resolution where reviews land.
const LATENCY_BUCKETS_MS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 2500.0, 10000.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "proxy_inject_admission_requests",
            "A counter for number of admission requests to proxy injector.",
            requests.clone(),
        );
        let responses = Family::<ResponseLabels, Counter>::default();
        registry.register(
            "proxy_inject_admission_responses",
            "A counter for number of admission responses from proxy injector.",
            responses.clone(),
        );
        let latency = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS_MS.iter().copied())
        });
        registry.register_with_unit(
            "proxy_injector_review_duration",
            "Time to answer one admission review, from the request body read to the response.",
            Unit::Other("milliseconds".into()),
            latency.clone(),
        );
        let cert_expiry = Gauge::<i64, AtomicI64>::default();
        registry.register_with_unit(
            "proxy_injector_tls_certificate_expiry_timestamp",
            "When the serving certificate in use expires (Unix time).",
            Unit::Seconds,
            cert_expiry.clone(),
        );
        let config_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "proxy_injector_config_reloads",
            "Loads of the Linkerd config from the config directory, by result.",
            config_reloads.clone(),
        );
        let cert_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "proxy_injector_tls_reloads",
            "Loads of the serving certificate and key, by result.",
            cert_reloads.clone(),
        );
        let events_dropped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "proxy_injector_events_dropped",
            "Events not sent to the API: the queue was full, or the per-object rate limit hit.",
            events_dropped.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "proxy_injector_connections_open",
            "Open connections on the admission port.",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "proxy_injector_connections_refused",
            "Connections closed at once because --max-connections were open.",
            connections_refused.clone(),
        );
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "proxy_injector_requests_rejected",
            "Reviews refused before decoding: body_too_large (413), body_timeout (408), \
             buffer_full (503), decoding_queue (503), body_unreadable (400).",
            rejected.clone(),
        );
        let faults = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "proxy_injector_review_faults",
            "Reviews that met a fault of ours or of the cluster, by cause; answered as \
             --on-error says.",
            faults.clone(),
        );
        let uninjected = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "proxy_injector_uninjected_pods",
            "Pods running without a proxy although the webhook would inject them now, \
             confirmed on their spec (`GET /uninjected` on the admin port lists them).",
            uninjected.clone(),
        );
        let heal_evictions = Family::<ResultLabels, Counter>::default();
        registry.register(
            "proxy_injector_heal_evictions",
            "Evictions of pods that escaped injection (--heal-uninjected), by result: evicted, \
             refused_by_disruption_budget (429, tried again later), gone, failed.",
            heal_evictions.clone(),
        );
        Metrics {
            registry,
            requests,
            responses,
            latency,
            cert_expiry,
            config_reloads,
            cert_reloads,
            events_dropped,
            connections_open,
            connections_refused,
            rejected,
            faults,
            uninjected,
            heal_evictions,
        }
    }

    pub fn event_dropped(&self, reason: &'static str) {
        self.events_dropped
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn fault(&self, reason: &'static str) {
        self.faults.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn heal_eviction(&self, result: &'static str) {
        self.heal_evictions
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn config_reload(&self, ok: bool) {
        self.config_reloads
            .get_or_create(&ResultLabels { result: result(ok) })
            .inc();
    }

    pub fn cert_reload(&self, ok: bool) {
        self.cert_reloads
            .get_or_create(&ResultLabels { result: result(ok) })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn result(ok: bool) -> &'static str {
    if ok {
        "success"
    } else {
        "failure"
    }
}
