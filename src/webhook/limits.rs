//! What one client can make the webhook hold: request bytes and the memory of decoding them.
//!
//! Two budgets, because receiving and decoding cost memory differently:
//! - **Buffered bytes** (`--max-inflight-bytes`): every chunk of every body is paid for as it
//!   arrives, from one budget shared by all connections. A chunk that does not fit is not
//!   waited for: the review is refused at once (503), so bodies half-received can never wait on
//!   each other, and a client that sends a body slowly holds only what it has sent. A body is
//!   never longer than `--max-request-bytes` (413, from its `Content-Length` before anything
//!   is read when it declares one).
//! - **Decoding**: a body decoded into a JSON tree and rendered takes about ten times its
//!   size (a 6 MB review: +60 MiB of RSS; BENCHMARKS.md, "Abuse"). Bodies over `HEAVY_BODY`
//!   are therefore decoded and rendered only while they fit, together, in
//!   `--max-request-bytes`; the others wait their turn, first come first served, until their
//!   deadline (503). They run on the blocking pool, so the async workers stay free. Smaller
//!   bodies are decoded and rendered inline, a few at a time (one per worker thread).
//!
//! With the defaults (16 MiB buffered, 6 MiB decoding) the webhook stays near 100 MiB of RSS
//! however many connections send reviews at the limit (BENCHMARKS.md, "Abuse").

use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody as _};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies above this are decoded and rendered on the blocking pool, within the decoding
/// budget.
pub const HEAVY_BODY: usize = 128 * 1024;

/// A body that cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body exceeds the limit of {limit} bytes (--max-request-bytes)")]
    TooLarge { limit: usize },
    #[error(
        "overloaded: {budget} bytes of request bodies are already buffered \
         (--max-inflight-bytes)"
    )]
    Full { budget: usize },
    #[error("reading the request body: {0}")]
    Read(String),
}

/// The two budgets and the per-request limit.
pub struct Limits {
    buffered: Arc<Semaphore>,
    decoding: Arc<Semaphore>,
    pub max_request_bytes: usize,
    pub max_inflight_bytes: usize,
}

/// A received body and what it holds of the budgets; both are returned when it is dropped.
pub struct Received {
    pub bytes: Bytes,
    _buffered: Option<OwnedSemaphorePermit>,
    decoding: Option<OwnedSemaphorePermit>,
}

impl Limits {
    /// `max_request_bytes` must not exceed `max_inflight_bytes` (checked by the caller), and
    /// both are below 4 GiB (`args::bytes`).
    pub fn new(max_request_bytes: usize, max_inflight_bytes: usize) -> Limits {
        Limits {
            buffered: Arc::new(Semaphore::new(max_inflight_bytes)),
            decoding: Arc::new(Semaphore::new(max_request_bytes)),
            max_request_bytes,
            max_inflight_bytes,
        }
    }

    /// Reads the whole body, paying for each chunk as it arrives. Callers bound it with the
    /// review's deadline.
    pub async fn receive(&self, mut body: Body) -> Result<Received, BodyError> {
        let limit = self.max_request_bytes;
        // Hyper's size hint is the declared `Content-Length`.
        if body.size_hint().exact().is_some_and(|n| n > limit as u64) {
            return Err(BodyError::TooLarge { limit });
        }
        let mut paid: Option<OwnedSemaphorePermit> = None;
        // Chunks as they came, joined once at the end (a growing buffer would double its
        // allocation past what was paid for); a body of one chunk, the usual review, is not
        // copied.
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers
            };
            if len + chunk.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            // The chunk fits in u32: it is below the per-request limit.
            let permit = self
                .buffered
                .clone()
                .try_acquire_many_owned(chunk.len() as u32)
                .map_err(|_| BodyError::Full {
                    budget: self.max_inflight_bytes,
                })?;
            match paid.as_mut() {
                Some(p) => p.merge(permit),
                None => paid = Some(permit),
            }
            len += chunk.len();
            chunks.push(chunk);
        }
        let bytes = match chunks.as_slice() {
            [one] => one.clone(),
            _ => {
                let mut joined = Vec::with_capacity(len);
                chunks.iter().for_each(|c| joined.extend_from_slice(c));
                Bytes::from(joined)
            }
        };
        Ok(Received {
            bytes,
            _buffered: paid,
            decoding: None,
        })
    }

    /// Waits until a heavy body fits in the decoding budget, first come first served; a light
    /// body goes at once. Callers bound the wait with the review's deadline.
    pub async fn decoding_turn(&self, received: &mut Received) {
        if !received.is_heavy() {
            return;
        }
        // Never closed; the body's length is below the per-request limit, the budget's size.
        let need = received.bytes.len() as u32;
        received.decoding = self.decoding.clone().acquire_many_owned(need).await.ok();
    }
}

/// The memory of a large review goes back to the system once it is answered. glibc gives
/// each thread that allocates its own arena and keeps what is freed there: a large review
/// decoded on one blocking-pool thread after another on a different thread would add to RSS
/// instead of reusing it (48 reviews of 6 MB: peak 149 MiB without this; BENCHMARKS.md,
/// "Abuse"). The binary's own allocations now go through mimalloc (`src/main.rs`), which
/// returns freed pages by itself (the same flood peaks at 100.6 MiB); the trim still returns
/// what C code beneath us (the TLS library) freed to glibc.
impl Drop for Received {
    fn drop(&mut self) {
        if self.is_heavy() {
            release_freed_memory();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_freed_memory() {
    // SAFETY: malloc_trim takes no pointer; it returns free pages of glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

impl Received {
    /// Whether decoding and rendering it goes to the blocking pool, within the decoding
    /// budget.
    pub fn is_heavy(&self) -> bool {
        self.bytes.len() > HEAVY_BODY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    impl Limits {
        fn buffered_bytes(&self) -> usize {
            self.max_inflight_bytes - self.buffered.available_permits()
        }
    }

    /// A body that declares its length and must never be read.
    struct Declared(u64);

    impl axum::body::HttpBody for Declared {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            panic!("a body refused by its declared length was read");
        }
        fn size_hint(&self) -> hyper::body::SizeHint {
            hyper::body::SizeHint::with_exact(self.0)
        }
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let limits = Limits::new(10, 100);
        let e = limits.receive(Body::new(Declared(11))).await.err();
        assert!(matches!(e, Some(BodyError::TooLarge { limit: 10 })));
    }

    #[tokio::test]
    async fn an_undeclared_body_is_cut_at_the_limit_and_its_budget_returned() {
        let limits = Limits::new(10, 100);
        let chunk = Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 11]));
        let undeclared = Body::from_stream(futures_util::stream::iter([chunk]));
        let e = limits.receive(undeclared).await.err();
        assert!(matches!(e, Some(BodyError::TooLarge { limit: 10 })));
        assert_eq!(limits.buffered_bytes(), 0);
    }

    #[tokio::test]
    async fn a_body_that_does_not_fit_the_buffer_budget_is_refused_at_once() {
        let limits = Limits::new(10, 12);
        let held = limits.receive(Body::from(vec![b'x'; 8])).await.unwrap();
        assert_eq!(limits.buffered_bytes(), 8);
        let e = limits.receive(Body::from(vec![b'y'; 5])).await.err();
        assert!(matches!(e, Some(BodyError::Full { budget: 12 })), "{e:?}");
        assert_eq!(limits.buffered_bytes(), 8, "the refused body paid nothing");
        drop(held);
        assert_eq!(limits.buffered_bytes(), 0);
        assert!(limits.receive(Body::from(vec![b'y'; 10])).await.is_ok());
    }

    #[tokio::test]
    async fn heavy_bodies_wait_for_the_decoding_budget_in_turn() {
        let size = HEAVY_BODY + 1;
        let limits = Limits::new(size + size / 2, 4 * size);
        let mut first = limits.receive(Body::from(vec![b'a'; size])).await.unwrap();
        let mut second = limits.receive(Body::from(vec![b'b'; size])).await.unwrap();
        let mut light = limits.receive(Body::from(vec![b'c'; 10])).await.unwrap();
        limits.decoding_turn(&mut first).await;
        let waited =
            tokio::time::timeout(Duration::from_millis(50), limits.decoding_turn(&mut second))
                .await;
        assert!(waited.is_err(), "two heavy bodies do not fit at once");
        tokio::time::timeout(Duration::from_millis(50), limits.decoding_turn(&mut light))
            .await
            .expect("a light body never waits");
        drop(first);
        tokio::time::timeout(Duration::from_millis(50), limits.decoding_turn(&mut second))
            .await
            .expect("its turn came");
    }
}
