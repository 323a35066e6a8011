//! What full injection adds to a pod (docs/behaviour.md §7): containers, volumes, and the pieces
//! they share.
//!
//! Every function here is a pure function of the *effective* Values (after annotation
//! overrides) and the pod as it was before injection. Values are built as JSON directly, with
//! keys in the order Kubernetes itself writes them, so what we add reads like `kubectl get`.

mod containers;
mod proxy;

use serde_json::{json, Map, Value};

pub use containers::{debug_container, init_container, network_validator};
pub use proxy::{proxy_container, set_inbound_ports};

use crate::annotations as a;
use crate::config::Values;
use crate::workload::PodTemplate;

/// Injection cannot render this pod with this config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("logHTTPHeaders must be one of: insecure | off")]
    LogHttpHeaders,
    #[error(
        "Unsupported value \"{0}\" for proxyInit.iptablesMode\nValid values: [\"nft\", \"legacy\"]"
    )]
    IptablesMode(String),
    #[error("proxyInit.runAsRoot must be set to use proxyInit.closeWaitTimeoutSecs")]
    CloseWaitNeedsRoot,
    #[error("proxy.tracing.collector.endpoint must be set if proxy tracing is enabled")]
    TracingEndpoint,
    #[error("proxy.tracing.collector.meshIdentity.serviceAccountName must be set if proxy tracing is enabled")]
    TracingServiceAccount,
    #[error(
        "proxy.tracing.collector.meshIdentity.namespace must be set if proxy tracing is enabled"
    )]
    TracingNamespace,
    #[error("identityTrustAnchorsPEM is empty. Please provide the identity trust anchors (identityTrustAnchorsPEM in the values)")]
    TrustAnchors,
    #[error("cannot parse destination get networks: invalid CIDR address: {0}")]
    ClusterNetworks(String),
}

/// The pieces of the pod that the proxy and init containers copy from the first app container
/// (docs/behaviour.md §7.7), and the per-pod switches read from annotations.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    /// Capabilities for the proxy: `Some` when the app's or the Helm values' are known.
    pub proxy_capabilities: Option<Caps>,
    /// Extra capabilities for the init container (beyond NET_ADMIN, NET_RAW).
    pub init_capabilities: Option<Caps>,
    /// The app's service-account token mount, copied to the proxy and init containers.
    pub sa_mount: Option<Value>,
    /// `LINKERD2_PROXY_INBOUND_PORTS`.
    pub inbound_ports: String,
    /// Trace `service.name` from the pod's `app.kubernetes.io/*` labels.
    pub service_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Caps {
    pub add: Vec<String>,
    pub drop: Vec<String>,
}

impl PodFacts {
    pub fn of(pod: &PodTemplate<'_>, values: &Values) -> PodFacts {
        let first = pod.containers().first();
        let app_caps = first
            .and_then(|c| c.get("securityContext"))
            .and_then(|s| s.get("capabilities"))
            .filter(|c| c.is_object())
            .map(|c| Caps {
                add: strings(c.get("add")),
                drop: strings(c.get("drop")),
            });
        let helm_proxy = values.proxy.capabilities.as_ref().map(|c| Caps {
            add: c.add.clone(),
            drop: c.drop.clone(),
        });
        let proxy_capabilities = app_caps.or(helm_proxy);
        let init_capabilities = match &proxy_capabilities {
            Some(c) => Some(Caps {
                add: c.add.clone(),
                drop: c
                    .drop
                    .iter()
                    .filter(|d| *d != "NET_RAW" && *d != "NET_ADMIN")
                    .cloned()
                    .collect(),
            }),
            None => values.proxy_init.capabilities.as_ref().map(|c| Caps {
                add: c.add.clone(),
                drop: c.drop.clone(),
            }),
        };
        let labels = pod.labels();
        let service_name = labels
            .get(a::APP_INSTANCE_LABEL)
            .or_else(|| labels.get(a::APP_NAME_LABEL))
            .cloned();
        PodFacts {
            proxy_capabilities,
            init_capabilities,
            sa_mount: service_account_mount(pod),
            inbound_ports: pod.inbound_ports(),
            service_name,
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|l| l.iter().map(crate::workload::scalar_text).collect())
        .unwrap_or_default()
}

/// The first app container's mount of the service-account token, as `{mountPath, name,
/// readOnly}` (`readOnly` always written).
pub fn service_account_mount(pod: &PodTemplate<'_>) -> Option<Value> {
    let first = pod.containers().first()?;
    let mounts = first.get("volumeMounts")?.as_array()?;
    let m = mounts.iter().find(|m| {
        m.get("mountPath").and_then(Value::as_str) == Some(a::SERVICE_ACCOUNT_MOUNT_PATH)
    })?;
    Some(json!({
        "mountPath": a::SERVICE_ACCOUNT_MOUNT_PATH,
        "name": m.get("name").cloned().unwrap_or(Value::Null),
        "readOnly": m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
    }))
}

/// Resources shared by the proxy, init and validator containers (docs/behaviour.md §7.12); `None`
/// when nothing is configured. Quantities are written in Kubernetes' canonical form.
pub fn resources(values: &Values) -> Option<Value> {
    let r = &values.proxy.resources;
    let pick = |f: fn(&crate::config::Constraints) -> &String| {
        let mut m = Map::new();
        for (name, c) in [
            ("cpu", &r.cpu),
            ("ephemeral-storage", &r.ephemeral_storage),
            ("memory", &r.memory),
        ] {
            let v = f(c);
            if !v.is_empty() {
                m.insert(
                    name.into(),
                    Value::String(crate::parse::canonical_quantity(v)),
                );
            }
        }
        m
    };
    let limits = pick(|c| &c.limit);
    let requests = pick(|c| &c.request);
    if limits.is_empty() && requests.is_empty() {
        return None;
    }
    let mut out = Map::new();
    if !limits.is_empty() {
        out.insert("limits".into(), Value::Object(limits));
    }
    if !requests.is_empty() {
        out.insert("requests".into(), Value::Object(requests));
    }
    Some(Value::Object(out))
}

/// The volumes injection adds, in patch order (docs/behaviour.md §7.9, §8.1).
#[derive(Clone, Debug)]
pub struct Volumes {
    pub xtables_lock: Option<Value>,
    pub end_entity: Value,
    pub podinfo: Option<Value>,
    pub token: Option<Value>,
}

pub fn volumes(values: &Values) -> Volumes {
    Volumes {
        xtables_lock: (!values.cni_enabled)
            .then(|| json!({"emptyDir": {}, "name": a::XTABLES_LOCK_VOLUME})),
        end_entity: json!({"emptyDir": {"medium": "Memory"}, "name": a::IDENTITY_END_ENTITY_VOLUME}),
        podinfo: tracing_enabled(values).then(|| {
            json!({
                "downwardAPI": {"items": [{"fieldRef": {"fieldPath": "metadata.labels"}, "path": "labels"}]},
                "name": a::PODINFO_VOLUME,
            })
        }),
        token: values.identity.service_account_token_projection.then(|| {
            json!({
                "name": a::IDENTITY_TOKEN_VOLUME,
                "projected": {"sources": [{"serviceAccountToken": {
                    "audience": "identity.l5d.io",
                    "expirationSeconds": 86400,
                    "path": a::IDENTITY_TOKEN_VOLUME,
                }}]},
            })
        }),
    }
}

pub fn tracing_enabled(values: &Values) -> bool {
    values.proxy.tracing.as_ref().is_some_and(|t| t.enabled)
}

/// The trust anchors the proxy is given: the one precondition `check` cannot know offline.
pub fn require_trust_anchors(values: &Values) -> Result<(), RenderError> {
    if values.identity_trust_anchors_pem.trim().is_empty() {
        return Err(RenderError::TrustAnchors);
    }
    Ok(())
}

/// Checks the config-wide preconditions of rendering (the trust anchors aside), before
/// anything is built.
pub fn check(values: &Values) -> Result<(), RenderError> {
    if !matches!(
        values.proxy.log_http_headers.as_str(),
        "" | "off" | "insecure"
    ) {
        return Err(RenderError::LogHttpHeaders);
    }
    let nets = values.cluster_networks.trim_matches(',');
    for entry in nets.split(',') {
        if !is_cidr(entry) {
            return Err(RenderError::ClusterNetworks(entry.to_string()));
        }
    }
    if let Some(t) = values.proxy.tracing.as_ref().filter(|t| t.enabled) {
        if t.collector.endpoint.is_empty() {
            return Err(RenderError::TracingEndpoint);
        }
        if t.collector.mesh_identity.service_account_name.is_empty() {
            return Err(RenderError::TracingServiceAccount);
        }
        if t.collector.mesh_identity.namespace.is_empty() {
            return Err(RenderError::TracingNamespace);
        }
    }
    Ok(())
}

/// Go's `net.ParseCIDR` grammar: an IP address, `/`, a prefix length within its bit size.
fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u32>().is_ok_and(|b| b <= max)
}

pub(crate) fn image(name: &str, tag: &str) -> String {
    format!("{name}:{tag}")
}
