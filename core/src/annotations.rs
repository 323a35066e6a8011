//! The annotation and label names of the decision and of what injection writes, and the names
//! of the containers and volumes it adds.
//!
//! The names are Linkerd's own (edge-26.8.3): operators already have them in their manifests,
//! so they are part of our interface and must never drift. The `config.linkerd.io/*` overrides
//! are not here: each is defined, whole, in the override registry (`config/overrides.rs`);
//! search the repository for an annotation's name and you land on its definition.

/// Prefix of every Linkerd-owned annotation and label that `uninject` strips.
pub const LINKERD_PREFIX: &str = "linkerd.io";

/// Whether an annotation is one Linkerd reads: `linkerd.io/*`, `config.linkerd.io/*` or
/// `config.alpha.linkerd.io/*` (what a namespace can pass on to its pods).
pub fn is_linkerd_key(key: &str) -> bool {
    key.contains("linkerd.io/")
}

// --- Decision -------------------------------------------------------------------------------

/// `enabled`, `disabled` or `ingress`: whether (and how) a pod is injected.
pub const INJECT: &str = "linkerd.io/inject";
pub const INJECT_ENABLED: &str = "enabled";
pub const INJECT_DISABLED: &str = "disabled";
pub const INJECT_INGRESS: &str = "ingress";

// --- Written by injection -------------------------------------------------------------------

pub const CREATED_BY: &str = "linkerd.io/created-by";
pub const PROXY_VERSION: &str = "linkerd.io/proxy-version";
pub const TRUST_ROOT_SHA256: &str = "linkerd.io/trust-root-sha256";

// Labels.
pub const CONTROL_PLANE_NS_LABEL: &str = "linkerd.io/control-plane-ns";
pub const WORKLOAD_NS_LABEL: &str = "linkerd.io/workload-ns";
/// `linkerd.io/proxy-<kind>: <owner name>`.
pub const PROXY_OWNER_LABEL_PREFIX: &str = "linkerd.io/proxy-";
/// Set on Linkerd's own control-plane pods; such metadata is left alone by `uninject`.
pub const CONTROL_PLANE_COMPONENT_LABEL: &str = "linkerd.io/control-plane-component";

// --- Proxy configuration overrides -------------------------------------------------------

// Every `config.linkerd.io/*` override is defined, with its parsing, effect, inheritance and
// CLI write-back, in the override registry: `config/overrides.rs`.

/// `resource.opentelemetry.io/<X>`: extra trace attribute `<X>` (only with a tracing config).
pub const OTEL_RESOURCE_PREFIX: &str = "resource.opentelemetry.io/";
/// Pod labels that name the trace `service.name`, in order of preference.
pub const APP_INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const APP_NAME_LABEL: &str = "app.kubernetes.io/name";

// --- Names of what injection adds -----------------------------------------------------------

pub const PROXY_CONTAINER: &str = "linkerd-proxy";
pub const INIT_CONTAINER: &str = "linkerd-init";
pub const VALIDATOR_CONTAINER: &str = "linkerd-network-validator";
pub const DEBUG_CONTAINER: &str = "linkerd-debug";
pub const XTABLES_LOCK_VOLUME: &str = "linkerd-proxy-init-xtables-lock";
pub const IDENTITY_END_ENTITY_VOLUME: &str = "linkerd-identity-end-entity";
pub const IDENTITY_TOKEN_VOLUME: &str = "linkerd-identity-token";
pub const PODINFO_VOLUME: &str = "linkerd-podinfo";

/// Where Kubernetes mounts the service-account token in a container.
pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
