//! Every annotation and label name the injector reads or writes, in one place.
//!
//! The names are Linkerd's own (edge-26.8.3): operators already have them in their manifests,
//! so they are part of our interface and must never drift. Search this file for a name to find
//! its constant, then search for the constant to find where it takes effect.

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

// --- Proxy configuration overrides (`config.linkerd.io/*`) ----------------------------------

pub const PROXY_IMAGE: &str = "config.linkerd.io/proxy-image";
pub const PROXY_VERSION_OVERRIDE: &str = "config.linkerd.io/proxy-version";
pub const IMAGE_PULL_POLICY: &str = "config.linkerd.io/image-pull-policy";
pub const CONTROL_PORT: &str = "config.linkerd.io/control-port";
pub const INBOUND_PORT: &str = "config.linkerd.io/inbound-port";
pub const ADMIN_PORT: &str = "config.linkerd.io/admin-port";
pub const OUTBOUND_PORT: &str = "config.linkerd.io/outbound-port";
pub const POD_INBOUND_PORTS: &str = "config.linkerd.io/pod-inbound-ports";
pub const PROXY_ADMIN_SHUTDOWN: &str = "config.linkerd.io/proxy-admin-shutdown";
pub const PROXY_LOG_LEVEL: &str = "config.linkerd.io/proxy-log-level";
pub const PROXY_LOG_HTTP_HEADERS: &str = "config.linkerd.io/proxy-log-http-headers";
pub const PROXY_LOG_FORMAT: &str = "config.linkerd.io/proxy-log-format";
pub const PROXY_REQUIRE_IDENTITY_INBOUND_PORTS: &str =
    "config.linkerd.io/proxy-require-identity-inbound-ports";
pub const PROXY_METRICS_HOSTNAME_LABELS: &str = "config.linkerd.io/proxy-metrics-hostname-labels";
pub const PROXY_OUTBOUND_CONNECT_TIMEOUT: &str = "config.linkerd.io/proxy-outbound-connect-timeout";
pub const PROXY_INBOUND_CONNECT_TIMEOUT: &str = "config.linkerd.io/proxy-inbound-connect-timeout";
pub const PROXY_OUTBOUND_DISCOVERY_CACHE_UNUSED_TIMEOUT: &str =
    "config.linkerd.io/proxy-outbound-discovery-cache-unused-timeout";
pub const PROXY_INBOUND_DISCOVERY_CACHE_UNUSED_TIMEOUT: &str =
    "config.linkerd.io/proxy-inbound-discovery-cache-unused-timeout";
pub const PROXY_DISABLE_OUTBOUND_PROTOCOL_DETECT_TIMEOUT: &str =
    "config.linkerd.io/proxy-disable-outbound-protocol-detect-timeout";
pub const PROXY_DISABLE_INBOUND_PROTOCOL_DETECT_TIMEOUT: &str =
    "config.linkerd.io/proxy-disable-inbound-protocol-detect-timeout";
pub const SHUTDOWN_GRACE_PERIOD: &str = "config.linkerd.io/shutdown-grace-period";
pub const ENABLE_GATEWAY: &str = "config.linkerd.io/enable-gateway";
pub const PROXY_WAIT_BEFORE_EXIT_SECONDS: &str =
    "config.alpha.linkerd.io/proxy-wait-before-exit-seconds";
/// Native-sidecar switch; the stable key wins by *presence* over beta, which wins over alpha.
pub const PROXY_ENABLE_NATIVE_SIDECAR: &str = "config.linkerd.io/proxy-enable-native-sidecar";
pub const PROXY_ENABLE_NATIVE_SIDECAR_BETA: &str =
    "config.beta.linkerd.io/proxy-enable-native-sidecar";
pub const PROXY_ENABLE_NATIVE_SIDECAR_ALPHA: &str =
    "config.alpha.linkerd.io/proxy-enable-native-sidecar";
pub const PROXY_CPU_REQUEST: &str = "config.linkerd.io/proxy-cpu-request";
pub const PROXY_CPU_LIMIT: &str = "config.linkerd.io/proxy-cpu-limit";
pub const PROXY_CPU_RATIO_LIMIT: &str = "config.linkerd.io/proxy-cpu-ratio-limit";
pub const PROXY_MEMORY_REQUEST: &str = "config.linkerd.io/proxy-memory-request";
pub const PROXY_MEMORY_LIMIT: &str = "config.linkerd.io/proxy-memory-limit";
pub const PROXY_EPHEMERAL_STORAGE_REQUEST: &str =
    "config.linkerd.io/proxy-ephemeral-storage-request";
pub const PROXY_EPHEMERAL_STORAGE_LIMIT: &str = "config.linkerd.io/proxy-ephemeral-storage-limit";
pub const PROXY_UID: &str = "config.linkerd.io/proxy-uid";
pub const PROXY_GID: &str = "config.linkerd.io/proxy-gid";
pub const ENABLE_EXTERNAL_PROFILES: &str = "config.linkerd.io/enable-external-profiles";
pub const SKIP_INBOUND_PORTS: &str = "config.linkerd.io/skip-inbound-ports";
pub const SKIP_OUTBOUND_PORTS: &str = "config.linkerd.io/skip-outbound-ports";
pub const OPAQUE_PORTS: &str = "config.linkerd.io/opaque-ports";
pub const DEBUG_IMAGE: &str = "config.linkerd.io/debug-image";
pub const DEBUG_IMAGE_VERSION: &str = "config.linkerd.io/debug-image-version";
pub const DEBUG_IMAGE_PULL_POLICY: &str = "config.linkerd.io/debug-image-pull-policy";
pub const PROXY_AWAIT: &str = "config.linkerd.io/proxy-await";
pub const DEFAULT_INBOUND_POLICY: &str = "config.linkerd.io/default-inbound-policy";
pub const SKIP_SUBNETS: &str = "config.linkerd.io/skip-subnets";
pub const ACCESS_LOG: &str = "config.linkerd.io/access-log";
pub const PROXY_ADDITIONAL_ENV: &str = "config.linkerd.io/proxy-additional-env";
pub const ENABLE_DEBUG_SIDECAR: &str = "config.linkerd.io/enable-debug-sidecar";
pub const CLOSE_WAIT_TIMEOUT: &str = "config.linkerd.io/close-wait-timeout";

/// `resource.opentelemetry.io/<X>`: extra trace attribute `<X>` (only with a tracing config).
pub const OTEL_RESOURCE_PREFIX: &str = "resource.opentelemetry.io/";
/// Pod labels that name the trace `service.name`, in order of preference.
pub const APP_INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const APP_NAME_LABEL: &str = "app.kubernetes.io/name";

/// Annotations a pod inherits from its namespace in the webhook (docs/behaviour.md §6.1), in
/// Linkerd's order. The first 40 are also the per-annotation metric labels upstream.
pub const INHERITABLE: &[&str] = &[
    ADMIN_PORT,
    CONTROL_PORT,
    ENABLE_DEBUG_SIDECAR,
    ENABLE_EXTERNAL_PROFILES,
    IMAGE_PULL_POLICY,
    INBOUND_PORT,
    OUTBOUND_PORT,
    POD_INBOUND_PORTS,
    PROXY_CPU_LIMIT,
    PROXY_CPU_REQUEST,
    PROXY_IMAGE,
    PROXY_ADMIN_SHUTDOWN,
    PROXY_LOG_FORMAT,
    PROXY_LOG_LEVEL,
    PROXY_LOG_HTTP_HEADERS,
    PROXY_MEMORY_LIMIT,
    PROXY_MEMORY_REQUEST,
    PROXY_EPHEMERAL_STORAGE_LIMIT,
    PROXY_EPHEMERAL_STORAGE_REQUEST,
    PROXY_UID,
    PROXY_GID,
    PROXY_VERSION_OVERRIDE,
    PROXY_REQUIRE_IDENTITY_INBOUND_PORTS,
    SKIP_INBOUND_PORTS,
    OPAQUE_PORTS,
    SKIP_OUTBOUND_PORTS,
    PROXY_METRICS_HOSTNAME_LABELS,
    PROXY_OUTBOUND_CONNECT_TIMEOUT,
    PROXY_INBOUND_CONNECT_TIMEOUT,
    PROXY_AWAIT,
    DEFAULT_INBOUND_POLICY,
    SKIP_SUBNETS,
    ACCESS_LOG,
    SHUTDOWN_GRACE_PERIOD,
    PROXY_OUTBOUND_DISCOVERY_CACHE_UNUSED_TIMEOUT,
    PROXY_INBOUND_DISCOVERY_CACHE_UNUSED_TIMEOUT,
    PROXY_DISABLE_OUTBOUND_PROTOCOL_DETECT_TIMEOUT,
    PROXY_DISABLE_INBOUND_PROTOCOL_DETECT_TIMEOUT,
    PROXY_ENABLE_NATIVE_SIDECAR,
    PROXY_ADDITIONAL_ENV,
    PROXY_WAIT_BEFORE_EXIT_SECONDS,
    PROXY_ENABLE_NATIVE_SIDECAR_ALPHA,
    INJECT,
];

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
