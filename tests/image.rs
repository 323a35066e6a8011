//! The container image, built here without a registry (`scripts/image.sh`: buildah, vfs
//! storage, chroot isolation) and run: its OCI layout and config are read back, it is
//! unpacked by a second tool (umoci) into the runtime bundle a container runtime would get,
//! and the bundle's process runs in a chroot of the image's root filesystem as the image's
//! user. What a runtime adds beyond that (namespaces, cgroups, the pod's mounts) is not here.
//! `scripts/pin-base-images.sh` is run against a local registry serving the built image.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_proxy-injector")
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the image from the test's binary into `out` (an OCI layout) under `tag`.
fn build(out: &Path, tag: &str) {
    let run = Command::new("bash")
        .arg(repo().join("scripts/image.sh"))
        .args(["--binary", binary(), "--tag", tag, "--out"])
        .arg(out)
        .output()
        .expect("bash runs scripts/image.sh");
    ok(
        run,
        "scripts/image.sh (scripts/test.sh installs buildah and umoci)",
    );
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

fn json_blob(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&std::fs::read(blob(layout, digest)).unwrap()).unwrap()
}

/// The manifest digest of `tag` in the layout's index.
fn manifest_digest(layout: &Path, tag: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .unwrap_or_else(|| panic!("{tag} is not in the index: {index}"))
        .to_string()
}

/// Every path in the image's layers (`tar` lists each gzip layer).
fn files(layout: &Path, manifest: &Value) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let list = ok(
            Command::new("tar")
                .arg("tzf")
                .arg(blob(layout, layer["digest"].as_str().unwrap()))
                .output()
                .unwrap(),
            "tar lists a layer",
        );
        all.extend(
            String::from_utf8(list.stdout)
                .unwrap()
                .lines()
                .map(|l| l.trim_end_matches('/').to_string()),
        );
    }
    all
}

/// Runs `args` in a chroot of `rootfs` as `uid:gid`, with `env` only, as a runtime would start
/// the container's process.
fn run_in(
    rootfs: &Path,
    (uid, gid): (u64, u64),
    env: &[&str],
    args: &[&str],
    stdin: &[u8],
) -> Output {
    let mut child = Command::new("chroot")
        .arg(format!("--userspec={uid}:{gid}"))
        .arg(rootfs)
        .args(args)
        .env_clear()
        .envs(env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chroot runs (the test needs root, as CI has)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_image_builds_reproducibly_and_its_entrypoint_runs_the_cli_and_the_webhook() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "building and chrooting into the image needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    build(&layout, "test");
    build(&dir.path().join("again"), "test");
    let digest = manifest_digest(&layout, "test");
    assert_eq!(
        digest,
        manifest_digest(&dir.path().join("again"), "test"),
        "the same binary gives the same image"
    );

    // The config: the Dockerfile's runtime contract.
    let manifest = json_blob(&layout, &digest);
    let config = json_blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/proxy-injector"]));
    assert_eq!(c["Cmd"], serde_json::json!(["webhook"]));
    assert_eq!(c["User"], "65532:65532");
    let ports: BTreeSet<&str> = c["ExposedPorts"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(ports, BTreeSet::from(["8443/tcp", "9995/tcp"]));
    let version = String::from_utf8(
        ok(
            Command::new(binary()).arg("--version").output().unwrap(),
            "--version",
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(
        format!(
            "proxy-injector {}\n",
            c["Labels"]["org.opencontainers.image.version"]
                .as_str()
                .unwrap()
        ),
        version
    );
    let packages = c["Labels"]["io.proxy-injector.runtime-packages"]
        .as_str()
        .unwrap();
    assert!(
        packages.contains("libc6=") && packages.contains("ca-certificates="),
        "{packages}"
    );

    // The filesystem: the binary, the C runtime it links, the CA bundle, the users; no shell.
    let files = files(&layout, &manifest);
    for f in [
        "proxy-injector",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
        "home/nonroot",
        "tmp",
    ] {
        assert!(files.contains(f), "{f} is not in the image: {files:?}");
    }
    assert!(!files.iter().any(|f| f.ends_with("bin/sh")), "{files:?}");

    // Unpacked by umoci into a runtime bundle: its process is the entrypoint and the command,
    // as the image's user.
    let bundle = dir.path().join("bundle");
    ok(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:test", layout.display()))
            .arg(&bundle)
            .output()
            .expect("umoci runs"),
        "umoci unpack",
    );
    let runtime: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let process = &runtime["process"];
    let args: Vec<&str> = process["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args, ["/proxy-injector", "webhook"]);
    let user = (
        process["user"]["uid"].as_u64().unwrap(),
        process["user"]["gid"].as_u64().unwrap(),
    );
    assert_eq!(user, (65532, 65532));
    let env: Vec<&str> = process["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let rootfs = bundle.join("rootfs");

    // The default command starts the webhook, which looks for its serving certificate where
    // the chart mounts it (the bundle has no mounts).
    let webhook = run_in(&rootfs, user, &env, &args, b"");
    assert_eq!(webhook.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&webhook.stderr);
    assert!(
        stderr.contains("--tls-cert /var/run/linkerd/tls/tls.crt"),
        "{stderr}"
    );

    // `docker run IMAGE inject …`: the entrypoint with other arguments; the output is the
    // host binary's, byte for byte. The values file is placed in the image's /tmp, as a mount
    // would.
    let example = repo().join("manifests/examples");
    std::fs::copy(example.join("values.yaml"), rootfs.join("tmp/values.yaml")).unwrap();
    let input = std::fs::read(example.join("shop.yaml")).unwrap();
    let inject = ["inject", "--manual", "--values", "/tmp/values.yaml", "-"];
    let mut in_image = vec![args[0]];
    in_image.extend(inject);
    let from_image = ok(
        run_in(&rootfs, user, &env, &in_image, &input),
        "inject in the image",
    );
    let values = example.join("values.yaml");
    let host_args = [
        "inject",
        "--manual",
        "--values",
        values.to_str().unwrap(),
        "-",
    ];
    let from_host = common::run_cli(&example, &host_args.map(String::from), &input);
    assert_eq!(from_host.code, 0);
    assert!(!from_image.stdout.is_empty());
    assert!(
        from_image.stdout == from_host.stdout,
        "the image's binary writes what the host's does"
    );
}

/// A local registry (Debian's `docker-registry`, the CNCF distribution registry) on a free
/// port, serving from `dir`; killed on drop.
struct Registry {
    child: std::process::Child,
    addr: String,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        let storage = dir.join("registry");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: \"{addr}\"}}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry runs (scripts/test.sh installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the registry did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Registry { child, addr }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pin(dockerfile: &Path, extra: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/pin-base-images.sh"))
        .args(extra)
        .arg(dockerfile)
        .output()
        .expect("bash runs scripts/pin-base-images.sh")
}

#[test]
fn base_images_are_pinned_to_the_digest_the_registry_serves() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    build(&layout, "base");
    let digest = manifest_digest(&layout, "base");
    let registry = Registry::start(dir.path());
    let image = format!("{}/proxy-injector-base:1", registry.addr);
    ok(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:base", layout.display()))
            .arg(format!("docker://{image}"))
            .output()
            .expect("skopeo runs"),
        "skopeo copy to the local registry",
    );
    // The repository's Dockerfile, with its two bases served by the local registry.
    let ours = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = ours.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    let local = ours
        .lines()
        .map(|l| match l.strip_prefix("FROM ") {
            Some(rest) => {
                let stage = rest
                    .split_once(' ')
                    .map(|(_, s)| format!(" {s}"))
                    .unwrap_or_default();
                format!("FROM {image}{stage}\n")
            }
            None => format!("{l}\n"),
        })
        .collect::<String>();
    let dockerfile = dir.path().join("Dockerfile");
    std::fs::write(&dockerfile, &local).unwrap();
    assert!(
        !pin(&dockerfile, &["--check"]).status.success(),
        "unpinned bases fail --check"
    );

    ok(pin(&dockerfile, &["--insecure"]), "pin");
    let pinned = std::fs::read_to_string(&dockerfile).unwrap();
    let expected = local.replace(&image, &format!("{image}@{digest}"));
    assert_eq!(
        pinned, expected,
        "each base, and nothing else, gets the digest"
    );
    ok(pin(&dockerfile, &["--check"]), "--check on the pinned file");

    // A stale pin is re-resolved.
    let stale = format!("sha256:{}", "0".repeat(64));
    std::fs::write(&dockerfile, expected.replace(&digest, &stale)).unwrap();
    ok(pin(&dockerfile, &["--insecure"]), "re-pin");
    assert_eq!(std::fs::read_to_string(&dockerfile).unwrap(), expected);
}
