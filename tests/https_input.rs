//! `https://` inputs, fetched from a real TLS server on loopback (Python's `http.server`
//! wrapped in `ssl`), trusted through `SSL_CERT_FILE` as an operator's private CA would be.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SERVER: &str = r#"
import http.server, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
httpd = http.server.HTTPServer(("127.0.0.1", 0), Quiet)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"#;

fn serve(dir: &std::path::Path) -> Server {
    let mut child = Command::new("python3")
        .args(["-c", SERVER, "leaf.pem", "leaf.key"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Server {
        child,
        port: line.trim().parse().expect("server prints its port"),
    }
}

#[test]
fn https_inputs_are_fetched_and_errors_name_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.path().join("leaf.key"), leaf_key.serialize_pem()).unwrap();
    std::fs::copy(
        common::fixtures().join("inputs/deployment.yaml"),
        dir.path().join("app.yaml"),
    )
    .unwrap();
    let server = serve(dir.path());

    let run = |url: &str, trust: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxy-injector"));
        cmd.args(["inject", url]).env_remove("SSL_CERT_DIR");
        if trust {
            cmd.env("SSL_CERT_FILE", dir.path().join("ca.pem"));
        } else {
            cmd.env("SSL_CERT_FILE", "/nonexistent");
        }
        cmd.output().unwrap()
    };
    let base = format!("https://localhost:{}", server.port);

    let ok = run(&format!("{base}/app.yaml"), true);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = String::from_utf8(ok.stdout).unwrap();
    assert!(out.contains("linkerd.io/inject: enabled"), "{out}");
    assert_eq!(
        String::from_utf8(ok.stderr).unwrap(),
        "\ndeployment \"books\" injected\n\n"
    );

    let missing = run(&format!("{base}/missing.yaml"), true);
    assert_eq!(missing.status.code(), Some(1));
    assert!(missing.stdout.is_empty());
    assert_eq!(
        String::from_utf8(missing.stderr).unwrap(),
        format!("Error: unable to read URL \"{base}/missing.yaml\", server reported 404 Not Found, status code=404\n")
    );

    let untrusted = run(&format!("{base}/app.yaml"), false);
    assert_eq!(untrusted.status.code(), Some(1));
    let err = String::from_utf8(untrusted.stderr).unwrap();
    assert!(
        err.contains("unable to read URL") && err.contains("certificate"),
        "{err}"
    );

    let plain = run(&format!("http://localhost:{}/app.yaml", server.port), true);
    assert_eq!(
        String::from_utf8(plain.stderr).unwrap(),
        "Error: only HTTPS URLs are allowed\n"
    );
}
