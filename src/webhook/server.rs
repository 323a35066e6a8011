//! The HTTPS server: TLS on every accepted connection, then HTTP/1.1 or HTTP/2 (by ALPN).
//!
//! Each connection runs in its own task and watches its own end, an idle deadline, a maximum
//! age, and the process-wide shutdown signal. "Idle" means no review in flight: bytes do not
//! count, so a peer that only answers our keep-alive PINGs, or trickles a frame, is still
//! closed. A connection asked to close (GOAWAY, or close after the response in flight) that
//! has not finished within the drain time is dropped, so a peer that stops reading cannot
//! hold it. On shutdown the accept loop stops first, then every connection is asked to
//! finish, and the server waits for them up to the grace period.
//!
//! What one peer can hold is bounded here: open connections (`--max-connections`; past it a
//! new connection is closed at once), HTTP/2 streams per connection, flow-control windows,
//! header sizes. Accept errors (EMFILE: out of descriptors) pause the loop for a second, as
//! `axum::serve` does, instead of retrying at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::metrics::Metrics;

/// Connection timeouts.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub handshake: Duration,
    pub header_read: Duration,
    /// No review in flight for this long closes the connection.
    pub idle: Duration,
    /// A connection is asked to close after this long.
    pub max_age: Duration,
    /// A connection asked to close is dropped after this long.
    pub drain: Duration,
}

/// What one connection may hold.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub max_concurrent_streams: u32,
}

/// HTTP/2 flow-control windows: what a peer may send before we read it. Small, because every
/// open connection may fill its window with bodies nobody has read yet.
const STREAM_WINDOW: u32 = 64 * 1024;
const CONNECTION_WINDOW: u32 = 128 * 1024;
/// Header limits: an AdmissionReview's headers are a few hundred bytes.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long the accept loop pauses after an error that is not the peer's.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

fn builder(timeouts: Timeouts, limits: ConnLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_send_buf_size(256 * 1024)
        .keep_alive_interval(Some(timeouts.idle / 3))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Serves `app` over TLS on `listener` until `shutdown` turns true, then drains for at most
/// `grace`. Returns how many connections were still open when the grace period ended.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    (timeouts, limits): (Timeouts, ConnLimits),
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) -> usize {
    let acceptor = TlsAcceptor::from(tls);
    let builder = Arc::new(builder(timeouts, limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        accept_failed(error).await;
                        continue;
                    }
                };
                let Some(slot) = Slot::take(&slots, &metrics) else {
                    metrics.connections_refused.inc();
                    tracing::debug!(%peer, max = limits.max_connections, "connection refused: --max-connections reached");
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, builder, app, stop) = (acceptor.clone(), builder.clone(), app.clone(), shutdown.clone());
                conns.spawn(async move {
                    let _slot = slot;
                    let tls = match tokio::time::timeout(timeouts.handshake, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    serve_connection(tls, &builder, app, timeouts, stop).await;
                });
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    let drained =
        tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        let left = conns.len();
        conns.abort_all();
        tracing::warn!(
            connections = left,
            "grace period ended with connections still open"
        );
        return left;
    }
    0
}

/// A place among `--max-connections`, counted in `proxy_injector_connections_open` while
/// held.
struct Slot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Slot {
    fn take(slots: &Arc<Semaphore>, metrics: &Arc<Metrics>) -> Option<Slot> {
        let permit = slots.clone().try_acquire_owned().ok()?;
        metrics.connections_open.inc();
        Some(Slot {
            _permit: permit,
            metrics: metrics.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}

/// An error of one peer's connection is skipped; any other (EMFILE, ENFILE, ENOBUFS) would
/// recur at once, so the loop waits before accepting again.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tracing::debug!(%error, "accept failed");
        return;
    }
    tracing::warn!(%error, backoff = ?ACCEPT_BACKOFF, "accept failed; pausing");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

async fn serve_connection<IO>(
    io: IO,
    builder: &Builder<TokioExecutor>,
    app: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let reviews = InFlight::new();
    let service = Counted {
        inner: TowerToHyperService::new(app),
        reviews: reviews.clone(),
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let old = tokio::time::sleep(timeouts.max_age);
    let mut old = std::pin::pin!(old);
    // Set once the connection is asked to close: when it is dropped if still open.
    let mut drop_at: Option<tokio::time::Instant> = None;
    loop {
        let idle_left = timeouts.idle.saturating_sub(reviews.idle_for());
        let closing = drop_at.is_some();
        let close = tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep(idle_left), if !closing => {
                reviews.idle_for() >= timeouts.idle
            }
            _ = old.as_mut(), if !closing => true,
            changed = stop.changed(), if !closing => {
                changed.is_err() || *stop.borrow()
            }
            _ = tokio::time::sleep_until(drop_at.unwrap_or_else(tokio::time::Instant::now)), if closing => {
                tracing::debug!("connection did not finish within the drain time; dropped");
                return;
            }
        };
        if close {
            conn.as_mut().graceful_shutdown();
            drop_at = Some(tokio::time::Instant::now() + timeouts.drain);
        }
    }
}

/// How many reviews a connection has in flight, and when the last one ended (ms after
/// `start`).
#[derive(Clone)]
struct InFlight(Arc<InFlightState>);

struct InFlightState {
    start: Instant,
    count: AtomicUsize,
    last_end_ms: AtomicU64,
}

impl InFlight {
    fn new() -> InFlight {
        InFlight(Arc::new(InFlightState {
            start: Instant::now(),
            count: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
        }))
    }
    fn idle_for(&self) -> Duration {
        if self.0.count.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        let now = self.0.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.0.last_end_ms.load(Ordering::SeqCst)))
    }
}

/// Counts a review from its headers to its answer.
struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let state = &self.0 .0;
        let ms = state.start.elapsed().as_millis() as u64;
        state.last_end_ms.store(ms, Ordering::SeqCst);
        state.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The app, with every call counted in `InFlight`.
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    reviews: InFlight,
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for Counted<S>
where
    S: hyper::service::Service<hyper::Request<Incoming>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.reviews.0.count.fetch_add(1, Ordering::SeqCst);
        let guard = InFlightGuard(self.reviews.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let response = fut.await;
            drop(guard);
            response
        })
    }
}
