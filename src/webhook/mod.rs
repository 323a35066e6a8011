//! `proxy-injector webhook`: the mutating admission webhook.
//!
//! Two servers run side by side: the HTTPS admission server (`server.rs`, TLS reloaded per
//! connection, `tls.rs`) that answers AdmissionReviews (`admission.rs`) with the core's patch,
//! and a plain-HTTP admin server with `/live`, `/ready`, `/metrics` and `/uninjected`. The Linkerd config is
//! polled from a directory (`config.rs`); namespaces and owners come from metadata reflectors
//! (`cache.rs`). On SIGTERM `/ready` turns false, the listener closes and requests in flight
//! finish within the grace period; then the process exits 0.

pub mod admission;
mod args;
mod cache;
mod config;
mod escaped;
mod events;
mod heal;
mod limits;
mod metrics;
mod pod_index;
mod server;
mod tls;
mod verdict;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use kube::runtime::events::{Recorder, Reporter};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use args::{LogFormat, OnError, WebhookArgs};
pub use config::{TRUST_ANCHORS_FILE, VALUES_FILE};

/// The webhook could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("--kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("Kubernetes client: {0}")]
    Kube(String),
    #[error("{0} is not a valid namespace")]
    Namespace(String),
    #[error("--log-level {0:?}: {1}")]
    LogLevel(String, String),
    #[error("--max-request-bytes ({0}) must not exceed --max-inflight-bytes ({1})")]
    Limits(usize, usize),
    #[error("--heal-uninjected needs --detect-uninjected: only the pods found can be healed")]
    HealWithoutDetection,
}

/// Runs the webhook until SIGTERM or SIGINT.
pub async fn run(args: WebhookArgs) -> Result<(), WebhookError> {
    init_logging(&args)?;
    // One TLS provider for the process (the Kubernetes client builds its config from it);
    // another part of the process may have installed it already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    args.control_plane
        .namespace()
        .map_err(WebhookError::Namespace)?;
    if args.max_request_bytes > args.max_inflight_bytes {
        return Err(WebhookError::Limits(
            args.max_request_bytes,
            args.max_inflight_bytes,
        ));
    }
    if args.heal_uninjected && !args.detect_uninjected {
        return Err(WebhookError::HealWithoutDetection);
    }
    let metrics = Arc::new(metrics::Metrics::new());
    let cert = Arc::new(tls::ReloadingCert::new(
        args.tls_cert.clone(),
        args.tls_key.clone(),
        metrics.clone(),
    )?);
    let tls = Arc::new(tls::server_config(cert, args.allow_tls12)?);
    let config = config::ConfigStore::new(args.config_dir.clone(), metrics.clone());
    tokio::spawn(config.clone().watch(args.config_poll_interval));
    let kube_config = kube_config(&args).await?;
    let client = kube::Client::try_from(kube_config.clone())
        .map_err(|e| WebhookError::Kube(e.to_string()))?;
    let misses = cache::MissLimits {
        per_second: args.miss_lookups_per_second,
        burst: args.miss_lookup_burst,
        ttl: args.miss_cache_ttl,
    };
    let caches = cache::Caches::start(client.clone(), misses);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "linkerd-proxy-injector".into(),
            instance: Some(args.instance.clone()),
        },
    );
    let events = events::EventSink::start(recorder, metrics.clone());
    let detector = args.detect_uninjected.then(|| {
        let settings = escaped::Settings {
            grace_period: args.uninjected_grace_period,
            scan_interval: args.uninjected_scan_interval,
            confirmations_per_second: args.uninjected_confirmations_per_second,
            namespace_selector: args.uninjected_namespace_selector.clone(),
            object_selector: args.uninjected_object_selector.clone(),
        };
        escaped::Detector::start(
            client.clone(),
            caches.clone(),
            config.clone(),
            Some(events.clone()),
            metrics.clone(),
            settings,
        )
    });
    let state = Arc::new(admission::AppState {
        config: config.clone(),
        caches: caches.clone(),
        events: Some(events),
        metrics: metrics.clone(),
        context: Arc::new(verdict::Context {
            control_plane_ns: args.control_plane.linkerd_namespace.clone(),
            created_by: format!("proxy-injector/webhook {}", crate::VERSION),
            renders: Default::default(),
        }),
        request_timeout: args.request_timeout,
        limits: limits::Limits::new(args.max_request_bytes, args.max_inflight_bytes),
        on_error: args.on_error,
    });
    let stopping = Arc::new(AtomicBool::new(false));
    if let (Some(detector), true) = (&detector, args.heal_uninjected) {
        let (caches, config, stopping) = (caches.clone(), config.clone(), stopping.clone());
        let ready = move || {
            caches.synced() && config.current().is_some() && !stopping.load(Ordering::SeqCst)
        };
        let settings = heal::Settings {
            interval: args.heal_interval,
            namespace: args
                .heal_lease_namespace
                .clone()
                .unwrap_or_else(|| args.control_plane.linkerd_namespace.clone()),
            identity: args.instance.clone(),
        };
        // The client's own retry of a 429 (up to 15 times, backing off to minutes) would hold
        // the healer on one pod a disruption budget protects: the healer backs off itself.
        let mut no_retry = kube_config.clone();
        no_retry.default_retry = false;
        let heal_client =
            kube::Client::try_from(no_retry).map_err(|e| WebhookError::Kube(e.to_string()))?;
        heal::start(
            heal_client,
            detector.clone(),
            Arc::new(ready),
            state.events.clone(),
            metrics.clone(),
            settings,
        );
    }
    let admin = Arc::new(Admin {
        metrics: metrics.clone(),
        config,
        caches,
        detector,
        stopping: stopping.clone(),
    });

    let admin_listener = bind(args.admin_addr).await?;
    let listener = bind(args.addr).await?;
    tracing::info!(
        addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        admin_addr = %admin_listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        version = crate::VERSION,
        "serving"
    );
    let admin_app = Router::new()
        .route("/live", get(|| async { "ok\n" }))
        .route("/ping", get(|| async { "pong\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/uninjected", get(uninjected))
        .with_state(admin);
    let admin_task = tokio::spawn(async move { axum::serve(admin_listener, admin_app).await });

    let app = Router::new()
        .route("/", post(admission::review))
        .with_state(state);
    let (stop_tx, stop_rx) = watch::channel(false);
    let delay = args.shutdown_delay;
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(delay = ?delay, "shutting down: not ready any more");
        stopping.store(true, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        let _ = stop_tx.send(true);
    });
    let timeouts = server::Timeouts {
        handshake: Duration::from_secs(10),
        header_read: args.header_read_timeout,
        idle: args.idle_timeout,
        max_age: args.max_connection_age,
        // Time for the reviews in flight to be answered, and their answers written.
        drain: args.request_timeout + Duration::from_secs(2),
    };
    let conn_limits = server::ConnLimits {
        max_connections: args.max_connections,
        max_concurrent_streams: args.max_concurrent_streams,
    };
    let left = server::serve_tls(
        listener,
        tls,
        app,
        (timeouts, conn_limits),
        metrics,
        stop_rx,
        args.shutdown_grace_period,
    )
    .await;
    admin_task.abort();
    tracing::info!(unfinished_connections = left, "stopped");
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, WebhookError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| WebhookError::Bind { addr, source })
}

async fn kube_config(args: &WebhookArgs) -> Result<kube::Config, WebhookError> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let err = |message: String| WebhookError::Kubeconfig {
                path: path.display().to_string(),
                message,
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| err(e.to_string()))?
        }
        None => kube::Config::incluster()
            .map_err(|e| WebhookError::Kube(format!("in-cluster config: {e}")))?,
    };
    Ok(config)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers, ctrl-c is the only way out.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

struct Admin {
    metrics: Arc<metrics::Metrics>,
    config: Arc<config::ConfigStore>,
    caches: cache::Caches,
    detector: Option<escaped::Detector>,
    stopping: Arc<AtomicBool>,
}

/// `GET /uninjected`: the pods found running without a proxy although the webhook would
/// inject them (`escaped.rs`), as JSON.
async fn uninjected(State(admin): State<Arc<Admin>>) -> axum::response::Response {
    let Some(detector) = &admin.detector else {
        return (
            StatusCode::NOT_FOUND,
            "detection of uninjected pods is off (--detect-uninjected=false)\n",
        )
            .into_response();
    };
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let pods: Vec<serde_json::Value> = detector
        .uninjected()
        .into_iter()
        .map(|u| {
            let created = u
                .created
                .and_then(|c| k8s_openapi::jiff::Timestamp::from_second(c).ok());
            let mut v = serde_json::to_value(&u).unwrap_or_default();
            v["created"] = serde_json::json!(created.map(|t| t.to_string()));
            v["age_seconds"] = serde_json::json!(u.created.map(|c| now.saturating_sub(c)));
            v
        })
        .collect();
    axum::Json(serde_json::json!({
        "grace_period_seconds": detector.settings().grace_period.as_secs_f64(),
        "pods": pods,
    }))
    .into_response()
}

/// Ready once the caches have synced and a config is loaded, until shutdown begins.
async fn ready(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    if admin.stopping.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "shutting down\n");
    }
    if !admin.caches.synced() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "not ready: caches not synced\n",
        );
    }
    if admin.config.current().is_none() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "not ready: no Linkerd config loaded\n",
        );
    }
    (StatusCode::OK, "ok\n")
}

async fn metrics_text(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.metrics.encode(),
    )
}

fn init_logging(args: &WebhookArgs) -> Result<(), WebhookError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .map_err(|e| WebhookError::LogLevel(args.log_level.clone(), e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match args.log_format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already initialised (tests running several servers in one process): keep the first.
    let _ = result;
    Ok(())
}
