//! `proxy-injector webhook` flags. Each has an environment variable of the same name in
//! upper case with a `PROXY_INJECTOR_` prefix, so a Deployment can set them either way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

#[derive(Clone, Debug, Args)]
pub struct WebhookArgs {
    /// Address of the HTTPS admission server.
    #[arg(long, env = "PROXY_INJECTOR_ADDR", default_value = "0.0.0.0:8443")]
    pub addr: SocketAddr,

    /// Address of the plain-HTTP admin server (/live, /ready, /metrics).
    #[arg(
        long,
        env = "PROXY_INJECTOR_ADMIN_ADDR",
        default_value = "0.0.0.0:9995"
    )]
    pub admin_addr: SocketAddr,

    /// Serving certificate (PEM, the chain after the leaf). Re-read when it changes.
    #[arg(
        long,
        env = "PROXY_INJECTOR_TLS_CERT",
        default_value = "/var/run/linkerd/tls/tls.crt"
    )]
    pub tls_cert: PathBuf,

    /// Serving key (PEM: PKCS#8, PKCS#1 or SEC1). Re-read when it changes.
    #[arg(
        long,
        env = "PROXY_INJECTOR_TLS_KEY",
        default_value = "/var/run/linkerd/tls/tls.key"
    )]
    pub tls_key: PathBuf,

    /// Also accept TLS 1.2 (TLS 1.3 only by default).
    #[arg(long, env = "PROXY_INJECTOR_ALLOW_TLS12")]
    pub allow_tls12: bool,

    /// Directory holding the Linkerd Helm values (file `values`, the `linkerd-config`
    /// ConfigMap) and the trust anchors (file `ca-bundle.crt`, the
    /// `linkerd-identity-trust-roots` ConfigMap). Changes are picked up without a restart.
    #[arg(
        long,
        env = "PROXY_INJECTOR_CONFIG_DIR",
        default_value = "/var/run/linkerd/config"
    )]
    pub config_dir: PathBuf,

    /// How often the config directory is checked for changes.
    #[arg(long, env = "PROXY_INJECTOR_CONFIG_POLL_INTERVAL", default_value = "1s", value_parser = duration)]
    pub config_poll_interval: Duration,

    #[command(flatten)]
    pub control_plane: crate::cli::ControlPlane,

    /// Kubeconfig file; the in-cluster service account is used when unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Log format.
    #[arg(
        long,
        env = "PROXY_INJECTOR_LOG_FORMAT",
        value_enum,
        default_value = "plain"
    )]
    pub log_format: LogFormat,

    /// Log level or filter (tracing `EnvFilter` syntax, e.g. `info` or `proxy_injector=debug`).
    #[arg(long, env = "PROXY_INJECTOR_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Deadline for one review; past it the review is answered HTTP 500 so that the webhook's
    /// failurePolicy decides. Keep it below the webhook's timeoutSeconds (10s by default).
    #[arg(long, env = "PROXY_INJECTOR_REQUEST_TIMEOUT", default_value = "8s", value_parser = duration)]
    pub request_timeout: Duration,

    /// Time allowed to read a request's headers (also bounds idle HTTP/1.1 keep-alive).
    #[arg(long, env = "PROXY_INJECTOR_HEADER_READ_TIMEOUT", default_value = "15s", value_parser = duration)]
    pub header_read_timeout: Duration,

    /// Idle connections are closed after this long (HTTP/2 keep-alive pings bound dead peers).
    #[arg(long, env = "PROXY_INJECTOR_IDLE_TIMEOUT", default_value = "90s", value_parser = duration)]
    pub idle_timeout: Duration,

    /// After SIGTERM, keep serving this long with /ready false, so endpoints drop us first.
    #[arg(long, env = "PROXY_INJECTOR_SHUTDOWN_DELAY", default_value = "0s", value_parser = duration)]
    pub shutdown_delay: Duration,

    /// After SIGTERM (and the delay), requests in flight get this long to finish.
    #[arg(long, env = "PROXY_INJECTOR_SHUTDOWN_GRACE_PERIOD", default_value = "10s", value_parser = duration)]
    pub shutdown_grace_period: Duration,

    /// Longest review body accepted (a quantity: `6Mi`); longer ones get 413. etcd keeps at
    /// most ~1.5 MiB per object, and a CREATE review carries one. Also the bytes of large
    /// reviews (over 128 KiB) decoded at once: others wait their turn until their deadline.
    #[arg(long, env = "PROXY_INJECTOR_MAX_REQUEST_BYTES", default_value = "6Mi", value_parser = bytes)]
    pub max_request_bytes: usize,

    /// Request body bytes buffered at once across all connections, paid for as they arrive;
    /// a review whose next chunk does not fit gets 503 at once.
    #[arg(long, env = "PROXY_INJECTOR_MAX_INFLIGHT_BYTES", default_value = "16Mi", value_parser = bytes)]
    pub max_inflight_bytes: usize,

    /// Open connections on the admission port; past it a new connection is closed at once.
    #[arg(long, env = "PROXY_INJECTOR_MAX_CONNECTIONS", default_value = "256")]
    pub max_connections: usize,

    /// Concurrent HTTP/2 streams (reviews) per connection.
    #[arg(
        long,
        env = "PROXY_INJECTOR_MAX_CONCURRENT_STREAMS",
        default_value = "32"
    )]
    pub max_concurrent_streams: u32,

    /// A connection is asked to close (HTTP/2 GOAWAY) after this long, so that the API
    /// server's connections spread over replicas again after a rollout.
    #[arg(long, env = "PROXY_INJECTOR_MAX_CONNECTION_AGE", default_value = "10m", value_parser = duration)]
    pub max_connection_age: Duration,

    /// What a fault of ours or of the cluster answers (no config, caches not synced, a failed
    /// lookup, the deadline): `defer` answers HTTP 500 and the webhook's failurePolicy decides;
    /// `deny` answers `allowed: false` with a message naming the cause.
    #[arg(
        long,
        env = "PROXY_INJECTOR_ON_ERROR",
        value_enum,
        default_value = "defer"
    )]
    pub on_error: OnError,

    /// Direct GETs allowed per second for namespaces, ReplicaSets and Jobs not yet in the
    /// caches; past it (and the burst) such a review is answered as for a failed lookup.
    #[arg(
        long,
        env = "PROXY_INJECTOR_MISS_LOOKUPS_PER_SECOND",
        default_value = "5"
    )]
    pub miss_lookups_per_second: std::num::NonZeroU32,

    /// Direct GETs allowed at once before the per-second rate applies.
    #[arg(long, env = "PROXY_INJECTOR_MISS_LOOKUP_BURST", default_value = "20")]
    pub miss_lookup_burst: std::num::NonZeroU32,

    /// How long the answer of a direct GET (found or not found) is reused.
    #[arg(long, env = "PROXY_INJECTOR_MISS_CACHE_TTL", default_value = "5s", value_parser = duration)]
    pub miss_cache_ttl: Duration,

    /// Watch every pod's metadata and report the pods that run without a proxy although the
    /// webhook would inject them (`proxy_injector_uninjected_pods`, a `NotInjected` Event,
    /// `GET /uninjected` on the admin port). `false` starts no pod watch.
    #[arg(
        long,
        env = "PROXY_INJECTOR_DETECT_UNINJECTED",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub detect_uninjected: bool,

    /// How old a pod must be before it counts as uninjected: pods being admitted right now
    /// are not reported.
    #[arg(long, env = "PROXY_INJECTOR_UNINJECTED_GRACE_PERIOD", default_value = "60s", value_parser = duration)]
    pub uninjected_grace_period: Duration,

    /// How often the watched pods are scanned for uninjected ones (from memory: no API call).
    #[arg(long, env = "PROXY_INJECTOR_UNINJECTED_SCAN_INTERVAL", default_value = "5s", value_parser = duration)]
    pub uninjected_scan_interval: Duration,

    /// Pods read in full (one GET each) per second to confirm that a suspect pod would be
    /// injected: the decision on its spec (hostNetwork, a proxy already there) needs it.
    #[arg(
        long,
        env = "PROXY_INJECTOR_UNINJECTED_CONFIRMATIONS_PER_SECOND",
        default_value = "5"
    )]
    pub uninjected_confirmations_per_second: std::num::NonZeroU32,

    /// The MutatingWebhookConfiguration's `namespaceSelector`, as JSON: pods in other
    /// namespaces are never reviewed, so never reported. Empty selects every namespace.
    #[arg(long, env = "PROXY_INJECTOR_UNINJECTED_NAMESPACE_SELECTOR", default_value = "{}", value_parser = selector)]
    pub uninjected_namespace_selector: kube::core::Selector,

    /// The MutatingWebhookConfiguration's `objectSelector`, as JSON: only pods it selects are
    /// watched (the API server filters them).
    #[arg(long, env = "PROXY_INJECTOR_UNINJECTED_OBJECT_SELECTOR", default_value = "{}", value_parser = selector)]
    pub uninjected_object_selector: kube::core::Selector,

    /// Evict the pods found running without a proxy (those a ReplicaSet, StatefulSet,
    /// DaemonSet or Job re-creates), so that they are re-created through this webhook: one
    /// replica at a time (the holder of the Lease `proxy-injector-healer`), at most one
    /// eviction per `--heal-interval`, never while this webhook is not ready. Needs
    /// `--detect-uninjected`.
    #[arg(long, env = "PROXY_INJECTOR_HEAL_UNINJECTED")]
    pub heal_uninjected: bool,

    /// At most one eviction per interval.
    #[arg(long, env = "PROXY_INJECTOR_HEAL_INTERVAL", default_value = "10s", value_parser = duration)]
    pub heal_interval: Duration,

    /// Namespace of the healer's Lease: the webhook's own (the Linkerd namespace when unset).
    #[arg(long, env = "POD_NAMESPACE")]
    pub heal_lease_namespace: Option<String>,

    /// Name of this instance in Events (`reportingInstance`); the pod name in a cluster.
    #[arg(long, env = "POD_NAME", default_value = "proxy-injector")]
    pub instance: String,
}

/// How a fault that is not the pod's is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnError {
    /// HTTP 500: the MutatingWebhookConfiguration's failurePolicy decides.
    Defer,
    /// `allowed: false`, with the cause in the message.
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

/// A Kubernetes `LabelSelector` in JSON (`{"matchExpressions": [...], "matchLabels": {...}}`).
pub fn selector(s: &str) -> Result<kube::core::Selector, String> {
    let parsed: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_str(s).map_err(|e| format!("{s:?}: not a label selector in JSON: {e}"))?;
    kube::core::Selector::try_from(parsed).map_err(|e| format!("{s:?}: {e}"))
}

/// A Go-style duration (`10s`, `1m30s`, `500ms`).
pub fn duration(s: &str) -> Result<Duration, String> {
    match crate::parse::go_duration(s) {
        Some(d) if d.0 >= 0 => Ok(Duration::from_nanos(d.0 as u64)),
        Some(_) => Err(format!("{s:?}: must not be negative")),
        None => Err(format!("{s:?}: not a duration (e.g. 10s, 1m30s, 500ms)")),
    }
}

/// A byte size as a Kubernetes quantity (`6Mi`, `65536`), at least 1 KiB and below 4 GiB.
pub fn bytes(s: &str) -> Result<usize, String> {
    let n = crate::parse::quantity(s)
        .and_then(|q| q.ceil())
        .ok_or_else(|| format!("{s:?}: not a byte size (e.g. 6Mi, 65536)"))?;
    if !(1024..(1 << 32)).contains(&n) {
        return Err(format!("{s:?}: must be at least 1Ki and below 4Gi"));
    }
    Ok(n as usize)
}
