//! Linkerd's Helm values: the configuration injection renders from.
//!
//! The source of truth in a cluster is the `values` key of the `linkerd-config` ConfigMap. We
//! decode only the keys injection reads (unknown keys are ignored, a type mismatch is an error
//! naming the key), over built-in defaults equal to the edge-26.8.3 chart's (`defaults.yaml`),
//! merged with Helm's rules: maps merge recursively, scalars and lists replace, and an explicit
//! `null` deletes the default.

pub mod overrides;

use serde::Deserialize;
use serde_json::{Map, Value};

/// The built-in defaults, as YAML text.
pub const DEFAULTS_YAML: &str = include_str!("defaults.yaml");

/// A values document could not be read into [`Values`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: invalid YAML: {message}")]
    Yaml {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: the values must be a YAML mapping, not {found}")]
    NotAMapping {
        source_name: String,
        found: &'static str,
    },
    #[error("{source_name}: {path}: {message}")]
    Type {
        source_name: String,
        path: String,
        message: String,
    },
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Values {
    pub cluster_domain: String,
    pub cluster_networks: String,
    pub image_pull_policy: String,
    pub linkerd_version: String,
    pub cni_enabled: bool,
    #[serde(rename = "disableIPv6")]
    pub disable_ipv6: bool,
    #[serde(rename = "identityTrustAnchorsPEM")]
    pub identity_trust_anchors_pem: String,
    pub identity_trust_domain: String,
    pub identity: Identity,
    pub debug_container: DebugContainer,
    pub proxy: Proxy,
    pub proxy_init: ProxyInit,
    pub network_validator: NetworkValidator,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Identity {
    pub service_account_token_projection: bool,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct DebugContainer {
    pub image: Image,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Image {
    pub name: String,
    pub pull_policy: String,
    pub version: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Proxy {
    pub enable_external_profiles: bool,
    pub outbound_connect_timeout: String,
    pub inbound_connect_timeout: String,
    pub outbound_discovery_cache_unused_timeout: String,
    pub inbound_discovery_cache_unused_timeout: String,
    pub disable_outbound_protocol_detect_timeout: bool,
    pub disable_inbound_protocol_detect_timeout: bool,
    pub image: Image,
    pub enable_shutdown_endpoint: bool,
    pub log_level: String,
    pub log_format: String,
    #[serde(rename = "logHTTPHeaders")]
    pub log_http_headers: String,
    pub ports: Ports,
    /// Deprecated fixed core count; wins over `runtime` when non-zero.
    pub cores: i64,
    pub runtime: Runtime,
    pub resources: Resources,
    pub uid: i64,
    pub gid: i64,
    /// When non-empty, replaces the whole default proxy securityContext.
    pub security_context: Map<String, Value>,
    pub wait_before_exit_seconds: u64,
    pub r#await: bool,
    pub require_identity_on_inbound_ports: String,
    pub opaque_ports: String,
    pub shutdown_grace_period: String,
    pub default_inbound_policy: String,
    pub native_sidecar: bool,
    pub liveness_probe: ProbeValues,
    pub readiness_probe: ProbeValues,
    pub startup_probe: ProbeValues,
    pub control: Control,
    pub metrics: Metrics,
    /// `None` when the config has no `proxy.tracing` section at all.
    pub tracing: Option<Tracing>,
    /// `scope → protocol → parameter → value`, rendered as `LINKERD2_PROXY_INBOUND_*` env.
    pub inbound: Map<String, Value>,
    pub outbound: Map<String, Value>,
    /// Complete EnvVar objects appended to the proxy's env.
    pub additional_env: Vec<Value>,
    pub experimental_env: Vec<Value>,
    pub capabilities: Option<Capabilities>,
    pub is_gateway: bool,
    pub is_ingress: bool,
    pub access_log: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Ports {
    pub admin: i32,
    pub control: i32,
    pub inbound: i32,
    pub outbound: i32,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Runtime {
    pub workers: Workers,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Workers {
    pub minimum: i64,
    pub maximum: i64,
    #[serde(rename = "maximumCPURatio")]
    pub maximum_cpu_ratio: f64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Resources {
    pub cpu: Constraints,
    pub memory: Constraints,
    #[serde(rename = "ephemeral-storage")]
    pub ephemeral_storage: Constraints,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Constraints {
    pub limit: String,
    pub request: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ProbeValues {
    pub initial_delay_seconds: i32,
    pub timeout_seconds: i32,
    pub period_seconds: i32,
    pub failure_threshold: i32,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Control {
    pub streams: Streams,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Streams {
    pub initial_timeout: String,
    pub idle_timeout: String,
    pub lifetime: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Metrics {
    pub hostname_labels: bool,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Tracing {
    pub enabled: bool,
    pub protocol: String,
    pub trace_service_name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub collector: Collector,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Collector {
    pub endpoint: String,
    pub mesh_identity: MeshIdentity,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct MeshIdentity {
    pub service_account_name: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Capabilities {
    pub add: Vec<String>,
    pub drop: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyInit {
    pub iptables_mode: String,
    pub ignore_inbound_ports: String,
    pub ignore_outbound_ports: String,
    pub skip_subnets: String,
    pub log_level: String,
    pub log_format: String,
    pub close_wait_timeout_secs: i64,
    pub privileged: bool,
    pub run_as_root: bool,
    pub run_as_user: i64,
    pub run_as_group: i64,
    pub xt_mount_path: XtMountPath,
    pub capabilities: Option<Capabilities>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct XtMountPath {
    pub mount_path: String,
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkValidator {
    pub log_level: String,
    pub log_format: String,
    pub connect_addr: String,
    pub listen_addr: String,
    pub timeout: String,
    pub security_context: Map<String, Value>,
}

impl Values {
    /// The trust domain: `identityTrustDomain`, else `clusterDomain`.
    pub fn trust_domain(&self) -> &str {
        if self.identity_trust_domain.is_empty() {
            &self.cluster_domain
        } else {
            &self.identity_trust_domain
        }
    }

    /// The proxy image tag: `proxy.image.version`, else `linkerdVersion`.
    pub fn proxy_version(&self) -> &str {
        or_else(&self.proxy.image.version, &self.linkerd_version)
    }

    pub fn proxy_pull_policy(&self) -> &str {
        or_else(&self.proxy.image.pull_policy, &self.image_pull_policy)
    }

    pub fn debug_version(&self) -> &str {
        or_else(&self.debug_container.image.version, &self.linkerd_version)
    }

    pub fn debug_pull_policy(&self) -> &str {
        or_else(
            &self.debug_container.image.pull_policy,
            &self.image_pull_policy,
        )
    }
}

fn or_else<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

/// Builds [`Values`] from the built-in defaults with each YAML document of `overlays` merged
/// over them in order. Each overlay is `(name for errors, YAML text)`.
pub fn load<'a>(
    overlays: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Values, ConfigError> {
    let mut merged = parse_values_yaml("built-in defaults", DEFAULTS_YAML)?;
    let mut last = "built-in defaults";
    for (name, text) in overlays {
        let overlay = parse_values_yaml(name, text)?;
        helm_merge(&mut merged, overlay);
        last = name;
    }
    decode(last, merged)
}

/// Decodes one values document as-is, without the defaults (how the upstream webhook reads
/// `linkerd-config`; kept for callers that want that behaviour explicitly).
pub fn decode_without_defaults(name: &str, text: &str) -> Result<Values, ConfigError> {
    let v = parse_values_yaml(name, text)?;
    decode(name, v)
}

fn parse_values_yaml(name: &str, text: &str) -> Result<Map<String, Value>, ConfigError> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml {
        source_name: name.to_string(),
        message: e.to_string(),
    })?;
    let mut map = match value {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(ConfigError::NotAMapping {
                source_name: name.to_string(),
                found: json_type(&other),
            })
        }
    };
    // Legacy layout: a top-level `global` map holds what is now at the top level.
    if let Some(Value::Object(global)) = map.remove("global") {
        for (k, v) in global {
            map.entry(k).or_insert(v);
        }
    }
    Ok(map)
}

fn decode(name: &str, mut merged: Map<String, Value>) -> Result<Values, ConfigError> {
    // A null leaves a Go field at its zero value; serde would call it a type error.
    strip_nulls(&mut merged);
    serde_path_to_error::deserialize(Value::Object(merged)).map_err(|e| ConfigError::Type {
        source_name: name.to_string(),
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

/// Helm's merge: maps merge recursively, anything else replaces, `null` deletes.
pub fn helm_merge(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (k, v) in overlay {
        match v {
            Value::Null => {
                base.remove(&k);
            }
            Value::Object(o) => match base.get_mut(&k) {
                Some(Value::Object(b)) => helm_merge(b, o),
                _ => {
                    base.insert(k, Value::Object(o));
                }
            },
            other => {
                base.insert(k, other);
            }
        }
    }
}

fn strip_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, v| !v.is_null());
    for v in map.values_mut() {
        if let Value::Object(m) = v {
            strip_nulls(m);
        }
    }
}

/// A JSON value's type as error messages name it ("a string", "a list", ...).
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests;
