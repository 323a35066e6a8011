//! The Linkerd config the webhook renders from, kept current without a restart.
//!
//! Kubernetes updates a mounted ConfigMap by swapping a symlink, so we poll: every interval
//! the files' identity (resolved path, size, modification time) is compared, and on a change
//! they are re-read and decoded. A new config must also render: a sample pod is injected with
//! it before it replaces the one in use, because values that parse but cannot render (a
//! `clusterNetworks` that is not a CIDR) would otherwise fail every review. A config that
//! fails either way leaves the last good one in place; that is logged and counted
//! (`proxy_injector_config_reloads_total{result="failure"}`), and reviews keep being served.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::config::overrides::Annotations;
use crate::config::{self, Values};
use crate::inject::{self, Request};

use super::metrics::Metrics;

/// The file names inside `--config-dir`.
pub const VALUES_FILE: &str = "values";
pub const TRUST_ANCHORS_FILE: &str = "ca-bundle.crt";

/// What identifies a file's version without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp(Option<(PathBuf, u64, SystemTime)>);

fn stamp(path: &Path) -> Stamp {
    let resolved = std::fs::canonicalize(path).ok();
    let meta = std::fs::metadata(path).ok();
    Stamp(match (resolved, meta) {
        (Some(p), Some(m)) => Some((p, m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH))),
        _ => None,
    })
}

/// The current config, shared by all requests.
pub struct ConfigStore {
    dir: PathBuf,
    current: RwLock<Option<Arc<Values>>>,
    stamps: RwLock<(Stamp, Stamp)>,
    metrics: Arc<Metrics>,
}

impl ConfigStore {
    pub fn new(dir: PathBuf, metrics: Arc<Metrics>) -> Arc<ConfigStore> {
        let store = Arc::new(ConfigStore {
            dir,
            current: RwLock::new(None),
            stamps: RwLock::new((Stamp(None), Stamp(None))),
            metrics,
        });
        store.reload_if_changed();
        store
    }

    /// The last good config, if one was ever loaded.
    pub fn current(&self) -> Option<Arc<Values>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// Re-reads the files when they changed; returns whether a new config was installed.
    pub fn reload_if_changed(&self) -> bool {
        let values_path = self.dir.join(VALUES_FILE);
        let anchors_path = self.dir.join(TRUST_ANCHORS_FILE);
        let now = (stamp(&values_path), stamp(&anchors_path));
        if self.stamps.read().is_ok_and(|s| *s == now) {
            return false;
        }
        if let Ok(mut s) = self.stamps.write() {
            *s = now;
        }
        match load(&values_path, &anchors_path) {
            Ok(values) => {
                if let Ok(mut c) = self.current.write() {
                    *c = Some(Arc::new(values));
                }
                self.metrics.config_reload(true);
                tracing::info!(dir = %self.dir.display(), "loaded the Linkerd config");
                true
            }
            Err(error) => {
                self.metrics.config_reload(false);
                let kept = self.current().is_some();
                tracing::error!(%error, kept_last_good = kept, "could not load the Linkerd config");
                false
            }
        }
    }

    /// Polls for changes until the process ends.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = self.clone();
            // File I/O off the async workers.
            let _ = tokio::task::spawn_blocking(move || store.reload_if_changed()).await;
        }
    }
}

/// Values over the built-in defaults (docs/behaviour.md D-3), with the trust anchors from the
/// bundle file when it exists (it replaces `identityTrustAnchorsPEM`, as upstream does).
fn load(values_path: &Path, anchors_path: &Path) -> Result<Values, String> {
    let name = values_path.display().to_string();
    let text = std::fs::read_to_string(values_path).map_err(|e| format!("{name}: {e}"))?;
    let mut values = config::load([(name.as_str(), text.as_str())]).map_err(|e| e.to_string())?;
    match std::fs::read_to_string(anchors_path) {
        Ok(pem) => values.identity_trust_anchors_pem = pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", anchors_path.display())),
    }
    if values.identity_trust_anchors_pem.trim().is_empty() {
        return Err(format!(
            "no trust anchors: {} is missing and the values have no identityTrustAnchorsPEM",
            anchors_path.display()
        ));
    }
    renders(&values).map_err(|e| format!("{name}: {e}"))?;
    Ok(values)
}

/// Whether `values` can inject a plain pod: what every review will need of them.
fn renders(values: &Values) -> Result<(), String> {
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "config-check", "annotations": {"linkerd.io/inject": "enabled"}},
        "spec": {
            "automountServiceAccountToken": true,
            "containers": [{"name": "app", "image": "app", "ports": [{"containerPort": 8080}]}]
        }
    });
    let empty = Annotations::new();
    let request = Request::webhook(
        values,
        "linkerd",
        "proxy-injector/config-check",
        "default",
        &empty,
        None,
    );
    // A sample pod the values choose not to inject is no fault of theirs; one they cannot
    // render is.
    inject::inject(&pod, &request)
        .map(|_| ())
        .map_err(|e| format!("the values cannot be rendered into a proxy: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Values {
        let mut v = config::load([("values", text)]).unwrap();
        v.identity_trust_anchors_pem =
            "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into();
        v
    }

    #[test]
    fn the_defaults_render() {
        assert_eq!(renders(&values("{}\n")), Ok(()));
    }

    #[test]
    fn values_that_parse_but_cannot_render_are_refused() {
        let e = renders(&values("clusterNetworks: not-a-cidr\n")).unwrap_err();
        assert!(e.contains("cannot be rendered"), "{e}");
    }
}
