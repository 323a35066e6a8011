//! The floor of the webhook benchmark (`benches/webhook/run.sh`): a minimal axum + rustls
//! server that answers every POST with the same AdmissionReview bytes. Same TLS settings as
//! the webhook (ring, TLS 1.3 only, ALPN h2 + http/1.1), same hyper-util connection builder,
//! same multi-threaded tokio runtime; it decodes nothing and injects nothing.
//!
//! `floor_server CERT_PEM KEY_PEM RESPONSE_JSON` — prints `port N` once listening.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::TlsAcceptor;

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("floor_server: {what}: {e}");
    std::process::exit(1);
}

fn tls_config(cert: &str, key: &str) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail(cert, e));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail(key, e));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap_or_else(|e| fail("TLS versions", e))
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap_or_else(|e| fail("certificate", e));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, cert, key, response] = &args[..] else {
        fail("usage", "floor_server CERT_PEM KEY_PEM RESPONSE_JSON");
    };
    let body = Bytes::from(std::fs::read(response).unwrap_or_else(|e| fail(response, e)));
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(cert, key)));
    let app = Router::new().route(
        "/",
        post(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail("bind", e));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| fail("local address", e))
        .port();
    println!("port {port}");
    let builder = Arc::new(Builder::new(TokioExecutor::new()));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, builder, app) = (acceptor.clone(), builder.clone(), app.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                let service = TowerToHyperService::new(app);
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            }
        });
    }
}
