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

    /// Namespace in which Linkerd is installed.
    #[arg(
        short = 'L',
        long,
        env = "LINKERD_NAMESPACE",
        default_value = "linkerd"
    )]
    pub linkerd_namespace: String,

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

    /// Name of this instance in Events (`reportingInstance`); the pod name in a cluster.
    #[arg(long, env = "POD_NAME", default_value = "proxy-injector")]
    pub instance: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

/// A Go-style duration (`10s`, `1m30s`, `500ms`).
pub fn duration(s: &str) -> Result<Duration, String> {
    match crate::parse::go_duration(s) {
        Some(d) if d.0 >= 0 => Ok(Duration::from_nanos(d.0 as u64)),
        Some(_) => Err(format!("{s:?}: must not be negative")),
        None => Err(format!("{s:?}: not a duration (e.g. 10s, 1m30s, 500ms)")),
    }
}
