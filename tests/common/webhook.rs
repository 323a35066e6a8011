//! Runs the real `proxy-injector webhook` binary against the Kubernetes API stand-in, with a
//! CA and serving certificate made for the test, and talks to it over real TLS.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};

use super::kube_api::KubeApi;

/// A CA and a way to issue serving certificates from it.
pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "proxy-injector test CA");
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A serving certificate for `localhost` and the in-cluster service name, and its key.
    pub fn serving(&self, cn: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "linkerd-proxy-injector.linkerd.svc".to_string(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

pub struct Webhook {
    pub child: Child,
    pub port: u16,
    pub admin_port: u16,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    pub http1: reqwest::Client,
    pub pki: Pki,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ports from the webhook's `serving` log line.
pub async fn serving_ports(child: &mut Child, log: &Path) -> (u16, u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["message"] == "serving" {
                let port = |k: &str| -> u16 {
                    let addr = v[k].as_str().expect("address in the serving line");
                    addr.rsplit(':').next().unwrap().parse().expect("a port")
                };
                return (port("addr"), port("admin_addr"));
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the webhook exited with {status}; log:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "the webhook never served; log:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The binary under test: Cargo's for tests, the release build for examples.
pub fn binary() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_proxy-injector") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/proxy-injector"),
    }
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS:`, `VmHWM:`), 0 if unreadable.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const TRUST_ANCHORS: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

impl Webhook {
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// Writes the values file (the ConfigMap's `values` key) atomically.
    pub fn write_values(&self, values: &str) {
        write_atomic(&self.config_dir().join("values"), values);
    }

    /// Rotates the serving pair the way the kubelet updates a Secret volume: both files are
    /// written into a new directory, then the `..data` symlink is swapped atomically.
    pub fn write_cert(&self, cert: &str, key: &str) {
        secret_volume_update(
            &self.dir.path().join("tls"),
            &[("tls.crt", cert), ("tls.key", key)],
        );
    }

    pub async fn start(api: &KubeApi, values: &str, extra: &[&str]) -> Webhook {
        Webhook::start_with_anchors(api, values, TRUST_ANCHORS, extra).await
    }

    /// As `start`, with `anchors` as the trust-roots bundle.
    pub async fn start_with_anchors(
        api: &KubeApi,
        values: &str,
        anchors: &str,
        extra: &[&str],
    ) -> Webhook {
        let pki = Pki::new();
        let (cert, key) = pki.serving("serving-1");
        let ca = pki.ca_pem.clone();
        Webhook::start_with_pair(api, values, anchors, (&cert, &key), &ca, pki, extra).await
    }

    /// As `start`, with the binary run under `wrapper` (e.g. `prlimit --nofile=200`).
    pub async fn start_wrapped(
        api: &KubeApi,
        values: &str,
        wrapper: &[&str],
        extra: &[&str],
    ) -> Webhook {
        let pki = Pki::new();
        let (cert, key) = pki.serving("serving-1");
        let ca = pki.ca_pem.clone();
        let pair = (cert.as_str(), key.as_str());
        Webhook::launch(api, values, TRUST_ANCHORS, pair, &ca, pki, wrapper, extra).await
    }

    /// As `start`, serving `pair` (certificate, key) and trusting `ca_pem` in its clients.
    pub async fn start_with_pair(
        api: &KubeApi,
        values: &str,
        anchors: &str,
        pair: (&str, &str),
        ca_pem: &str,
        pki: Pki,
        extra: &[&str],
    ) -> Webhook {
        Webhook::launch(api, values, anchors, pair, ca_pem, pki, &[], extra).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn launch(
        api: &KubeApi,
        values: &str,
        anchors: &str,
        (cert, key): (&str, &str),
        ca_pem: &str,
        pki: Pki,
        wrapper: &[&str],
        extra: &[&str],
    ) -> Webhook {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        let tls = dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        secret_volume_update(&tls, &[("tls.crt", cert), ("tls.key", key)]);
        std::os::unix::fs::symlink("..data/tls.crt", tls.join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", tls.join("tls.key")).unwrap();
        std::fs::write(dir.path().join("config/values"), values).unwrap();
        std::fs::write(dir.path().join("config/ca-bundle.crt"), anchors).unwrap();
        std::fs::write(dir.path().join("kubeconfig"), api.kubeconfig()).unwrap();
        // Port 0: the webhook binds free ports and logs them, so tests never race for one.
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        let mut child = command
            .arg("webhook")
            .args(["--addr", "127.0.0.1:0"])
            .args(["--admin-addr", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(dir.path().join("tls/tls.crt"))
            .arg("--tls-key")
            .arg(dir.path().join("tls/tls.key"))
            .arg("--config-dir")
            .arg(dir.path().join("config"))
            .arg("--kubeconfig")
            .arg(dir.path().join("kubeconfig"))
            .args(["--config-poll-interval", "100ms", "--log-format", "json"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("webhook.log")).unwrap(),
            ))
            .spawn()
            .expect("the webhook starts");
        let log_path = dir.path().join("webhook.log");
        let (port, admin_port) = serving_ports(&mut child, &log_path).await;
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let http1 = reqwest::Client::builder()
            .tls_certs_only([ca])
            .http1_only()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let wh = Webhook {
            child,
            port,
            admin_port,
            dir,
            client,
            http1,
            pki,
        };
        wh.wait_ready().await;
        wh
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(self.admin("/ready")).await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "webhook not ready; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("webhook.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.admin("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sends a review and returns the HTTP status and the parsed body.
    pub async fn send(&self, client: &reqwest::Client, review: &Value) -> (u16, Value) {
        let r = client
            .post(self.url())
            .header("content-type", "application/json")
            .body(review.to_string())
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn review(&self, review: &Value) -> Value {
        let (status, body) = self.send(&self.client, review).await;
        assert_eq!(status, 200, "review failed: {body}\nlog:\n{}", self.log());
        body
    }
}

/// The kubelet's atomic writer: files in `..<timestamp>/`, published by renaming a new
/// `..data` symlink over the old one.
pub fn secret_volume_update(dir: &Path, files: &[(&str, &str)]) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let version = format!("..2026_11_29_{n:06}");
    std::fs::create_dir_all(dir.join(&version)).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(&version).join(name), text).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A one-container pod listening on 8080: what most webhook tests review.
pub fn app_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "app", "image": "example/app:1", "ports": [{"containerPort": 8080}]}]}})
}

/// The API stand-in with namespace `shop`, which asks for injection.
pub async fn api_with_shop() -> KubeApi {
    let api = KubeApi::start().await;
    api.add_namespace("shop", json!({"linkerd.io/inject": "enabled"}));
    api
}

/// An `admission.k8s.io/v1` review for creating `object` in `ns`, not a dry run.
pub fn create_review(uid: &str, ns: &str, object: &Value) -> Value {
    admission_review("admission.k8s.io/v1", uid, ns, object, false)
}

/// An AdmissionReview for creating `object` in `ns`.
pub fn admission_review(
    api_version: &str,
    uid: &str,
    ns: &str,
    object: &Value,
    dry_run: bool,
) -> Value {
    let kind = object["kind"].as_str().unwrap_or("Pod");
    let resource = if kind == "Service" {
        "services"
    } else {
        "pods"
    };
    json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": resource},
            "requestKind": {"group": "", "version": "v1", "kind": kind},
            "requestResource": {"group": "", "version": "v1", "resource": resource},
            "name": object["metadata"]["name"].as_str().unwrap_or(""),
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "3c1f6c49-0b8a-4d4e-9b1c-1d1a5c2f0e11",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": dry_run,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

/// The JSON patch of a review response, decoded.
/// `patch` is `[]byte`: the API server takes base64 text or, as kube-rs writes it, an array
/// of byte values.
pub fn patch_of(body: &Value) -> Option<Value> {
    let bytes = match &body["response"]["patch"] {
        Value::String(s) => base64_decode(s),
        Value::Array(a) => a.iter().map(|b| b.as_u64().expect("byte") as u8).collect(),
        _ => return None,
    };
    Some(serde_json::from_slice(&bytes).expect("patch is JSON"))
}

/// Standard base64 (the API's encoding of `[]byte`), decoded without another dependency.
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => 0,
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | (val(*c) << (18 - 6 * i)));
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}
