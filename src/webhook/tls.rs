//! The serving certificate, reloaded without a restart.
//!
//! Like kubert, we look at the files when a connection arrives rather than watching them:
//! every TLS handshake compares the certificate and key files' identity (resolved path, size,
//! modification time) with the pair in use and re-reads them when either changed. Kubernetes
//! rotates a mounted Secret by swapping a symlink, so both files change together. A pair that
//! does not load (unreadable, unparsable, or a key that does not match the certificate) keeps
//! the previous one in service; the failure is logged and counted.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::metrics::Metrics;

/// The certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert {path}: {message}")]
    Cert { path: String, message: String },
    #[error("--tls-key {path}: {message}")]
    Key { path: String, message: String },
    #[error("--tls-key {key} does not match the certificate in --tls-cert {cert}")]
    Mismatch { cert: String, key: String },
}

type Stamp = Option<(PathBuf, u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let resolved = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(path).ok()?;
    Some((
        resolved,
        meta.len(),
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    ))
}

struct Loaded {
    stamps: (Stamp, Stamp),
    key: Arc<CertifiedKey>,
}

/// A `ResolvesServerCert` that re-reads the files when they change.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    loaded: Mutex<Loaded>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish()
    }
}

impl ReloadingCert {
    /// Loads the pair; failing here is fatal (there is nothing to serve with).
    pub fn new(
        cert_path: PathBuf,
        key_path: PathBuf,
        metrics: Arc<Metrics>,
    ) -> Result<ReloadingCert, TlsError> {
        let stamps = (stamp(&cert_path), stamp(&key_path));
        let key = load_pair(&cert_path, &key_path)?;
        metrics.cert_reload(true);
        metrics.cert_expiry.set(expiry(&key).unwrap_or(0));
        Ok(ReloadingCert {
            cert_path,
            key_path,
            loaded: Mutex::new(Loaded { stamps, key }),
            metrics,
        })
    }

    /// The pair to serve with, reloading it first if the files changed.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        let now = (stamp(&self.cert_path), stamp(&self.key_path));
        let mut loaded = self.loaded.lock().ok()?;
        if loaded.stamps != now {
            // Remember the new stamps either way, so a bad pair is not retried per handshake.
            loaded.stamps = now;
            match load_pair(&self.cert_path, &self.key_path) {
                Ok(key) => {
                    self.metrics.cert_reload(true);
                    self.metrics.cert_expiry.set(expiry(&key).unwrap_or(0));
                    tracing::info!(cert = %self.cert_path.display(), "reloaded the serving certificate");
                    loaded.key = key;
                }
                Err(error) => {
                    self.metrics.cert_reload(false);
                    tracing::error!(%error, "could not reload the serving certificate; keeping the previous one");
                }
            }
        }
        Some(loaded.key.clone())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

fn load_pair(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_err = |message: String| TlsError::Cert {
        path: cert_path.display().to_string(),
        message,
    };
    let key_err = |message: String| TlsError::Key {
        path: key_path.display().to_string(),
        message,
    };
    let cert_pem = std::fs::read(cert_path).map_err(|e| cert_err(e.to_string()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(cert_err("no CERTIFICATE block".into()));
    }
    let key_pem = std::fs::read(key_path).map_err(|e| key_err(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| key_err(format!("not a PEM private key: {e}")))?;
    let signer = any_supported_type(&key).map_err(|e| key_err(format!("unsupported key: {e}")))?;
    let certified = CertifiedKey::new(certs, signer);
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: cert_path.display().to_string(),
        key: key_path.display().to_string(),
    })?;
    Ok(Arc::new(certified))
}

/// The leaf certificate's notAfter, as Unix time.
fn expiry(key: &CertifiedKey) -> Option<i64> {
    let leaf = key.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The rustls server config: TLS 1.3 (and 1.2 if allowed), ALPN h2 then http/1.1.
pub fn server_config(
    cert: Arc<ReloadingCert>,
    allow_tls12: bool,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = if allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
