//! Command-line arguments. The doc comments are the `--help` text; flag names, types and
//! defaults are Linkerd's (`linkerd inject --help`), so existing scripts keep working.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::manifest::Format;

/// A drop-in, Linkerd-compatible proxy injector.
#[derive(Debug, Parser)]
#[command(name = "proxy-injector", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add the Linkerd proxy to pod templates in Kubernetes manifests.
    ///
    /// By default only the `linkerd.io/inject: enabled` annotation (and any override
    /// annotations from flags) is added, so the cluster's injector does the rest; with
    /// --manual the proxy, its init container and volumes are added to the manifest itself.
    ///
    /// INPUT is a file, a directory (read recursively, in lexical order), `-` for stdin, or an
    /// https:// URL. The result goes to stdout; a report goes to stderr.
    Inject(Box<InjectArgs>),
    /// Remove the Linkerd proxy and everything injection added from manifests.
    Uninject(UninjectArgs),
    /// Tell, offline, which workloads the webhook will mesh, with which identity, and why not.
    ///
    /// Uses the webhook's rules: `linkerd.io/inject` on the pod template or its namespace.
    /// Namespaces come from Namespace objects in the input, from --namespace-annotation, or
    /// default. Exit codes: 0 all good, 1 an input or usage error, 2 a policy failure.
    Check(Box<CheckArgs>),
    /// Write a MutatingAdmissionPolicy and its binding that inject pods inside the API server
    /// (Kubernetes 1.36 or later), with no webhook.
    ///
    /// The proxy, init container and volumes are baked in from the config; the pod-dependent
    /// parts are computed in CEL. Pods the policy cannot inject exactly as the webhook would
    /// (overrides, ingress mode, ...) are left alone: `check` says which, and why. Regenerate
    /// on every change of the Linkerd config.
    Policy(Box<PolicyArgs>),
    /// Run the mutating admission webhook (HTTPS) that injects pods as they are created.
    Webhook(Box<crate::webhook::WebhookArgs>),
    /// Print a shell completion script.
    ///
    /// bash: `source <(proxy-injector completions bash)`; zsh: `proxy-injector completions zsh >
    /// "${fpath[1]}/_proxy-injector"`; fish: `proxy-injector completions fish >
    /// ~/.config/fish/completions/proxy-injector.fish`; PowerShell: `proxy-injector completions
    /// powershell | Out-String | Invoke-Expression`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    ///
    /// `proxy-injector man | man -l -`, or `proxy-injector man --out-dir
    /// /usr/local/share/man/man1`.
    Man {
        /// Write `proxy-injector.1` and a page per command (`proxy-injector-inject.1`, ...)
        /// here instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    pub control_plane: ControlPlane,

    /// Print the long report (and ignored annotation values as log lines on stderr).
    #[arg(long, global = true)]
    pub verbose: bool,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: OutputFormat,

    /// Accepted for compatibility with `linkerd` command lines and ignored: this CLI works
    /// offline and never contacts a cluster.
    #[command(flatten)]
    pub cluster: ClusterFlags,
}

/// `linkerd`'s cluster-access flags, accepted and ignored.
#[derive(Debug, Args)]
pub struct ClusterFlags {
    #[arg(long, hide = true, value_name = "PATH")]
    pub kubeconfig: Option<String>,
    #[arg(long, hide = true)]
    pub context: Option<String>,
    #[arg(long = "as", hide = true)]
    pub impersonate: Option<String>,
    #[arg(long = "as-group", hide = true)]
    pub impersonate_group: Vec<String>,
    #[arg(long, hide = true)]
    pub api_addr: Option<String>,
    #[arg(long, hide = true)]
    pub cni_namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct UninjectArgs {
    #[command(flatten)]
    pub common: Common,

    /// Files, directories, `-` (stdin) or https:// URLs.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
}

// Boolean flags take an optional `=true|false`, as Go's pflag does (`--native-sidecar=false`).
#[derive(Debug, Args)]
pub struct InjectArgs {
    #[command(flatten)]
    pub common: Common,

    /// Linkerd Helm values file(s) (the `values` key of the `linkerd-config` ConfigMap),
    /// merged in order over the built-in edge-26.8.3 defaults. Repeatable.
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,

    /// Include the proxy sidecar container spec in the YAML output (the "manual" option,
    /// instead of only annotating for the cluster's injector).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub manual: Option<bool>,

    /// Inject a debug sidecar for data plane debugging.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub enable_debug_sidecar: Option<bool>,

    /// Ignore the cluster: accepted for compatibility; this CLI never contacts a cluster.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub ignore_cluster: Option<bool>,

    /// Sets nf_conntrack_tcp_timeout_close_wait (a Go duration such as 1m or 90s).
    #[arg(long)]
    pub close_wait_timeout: Option<String>,

    #[command(flatten)]
    pub proxy: ProxyFlags,

    /// Files, directories, `-` (stdin) or https:// URLs.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
}

/// The flags that change the proxy, shared by `inject` and `policy`: Linkerd's names.
#[derive(Debug, Args)]
pub struct ProxyFlags {
    /// Enable ingress mode in the linkerd proxy.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub ingress: Option<bool>,

    /// Docker registry to pull images from ($LINKERD_DOCKER_REGISTRY).
    #[arg(long, env = "LINKERD_DOCKER_REGISTRY", value_name = "REGISTRY")]
    pub registry: Option<String>,

    /// Linkerd proxy container image name [default: cr.l5d.io/linkerd/proxy].
    #[arg(long)]
    pub proxy_image: Option<String>,

    /// Tag to be used for the Linkerd proxy images [default: the linkerdVersion value].
    #[arg(short = 'v', long)]
    pub proxy_version: Option<String>,

    /// Docker image pull policy [default: IfNotPresent].
    #[arg(long)]
    pub image_pull_policy: Option<String>,

    /// Proxy port to use for inbound traffic [default: 4143].
    #[arg(long)]
    pub inbound_port: Option<u32>,

    /// Proxy port to use for outbound traffic [default: 4140].
    #[arg(long)]
    pub outbound_port: Option<u32>,

    /// Proxy port to serve metrics on [default: 4191].
    #[arg(long)]
    pub admin_port: Option<u32>,

    /// Proxy port to use for control [default: 4190].
    #[arg(long)]
    pub control_port: Option<u32>,

    /// Ports and/or port ranges (inclusive) that should skip the proxy and send directly to
    /// the application. Comma-separated and/or repeated.
    #[arg(long, value_delimiter = ',')]
    pub skip_inbound_ports: Vec<String>,

    /// Outbound ports and/or port ranges (inclusive) that should skip the proxy.
    #[arg(long, value_delimiter = ',')]
    pub skip_outbound_ports: Vec<String>,

    /// Ports that require identity. Comma-separated and/or repeated.
    #[arg(long, value_delimiter = ',')]
    pub require_identity_on_inbound_ports: Vec<String>,

    /// Set opaque ports on the proxy [default: 25,587,3306,4444,5432,6379,9300,11211].
    #[arg(long, value_delimiter = ',')]
    pub opaque_ports: Vec<String>,

    /// Run the proxy under this user ID [default: 2102].
    #[arg(long, allow_negative_numbers = true)]
    pub proxy_uid: Option<i64>,

    /// Run the proxy under this group ID [default: -1, unset].
    #[arg(long, allow_negative_numbers = true)]
    pub proxy_gid: Option<i64>,

    /// Log level for the proxy.
    #[arg(long)]
    pub proxy_log_level: Option<String>,

    /// Amount of CPU units that the proxy sidecar requests.
    #[arg(long)]
    pub proxy_cpu_request: Option<String>,

    /// Maximum amount of CPU units that the proxy sidecar can use.
    #[arg(long)]
    pub proxy_cpu_limit: Option<String>,

    /// Amount of Memory that the proxy sidecar requests.
    #[arg(long)]
    pub proxy_memory_request: Option<String>,

    /// Maximum amount of Memory that the proxy sidecar can use.
    #[arg(long)]
    pub proxy_memory_limit: Option<String>,

    /// Deprecated: use --proxy-cpu-request.
    #[arg(long, hide = true)]
    pub proxy_cpu: Option<String>,

    /// Deprecated: use --proxy-memory-request.
    #[arg(long, hide = true)]
    pub proxy_memory: Option<String>,

    /// Enable service profiles for non-Kubernetes services.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub enable_external_profiles: Option<bool>,

    /// Inbound policy to use to control inbound access to the proxy [default: all-unauthenticated].
    #[arg(long)]
    pub default_inbound_policy: Option<String>,

    /// Enable the proxy as a native sidecar (an init container with restartPolicy: Always).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub native_sidecar: Option<bool>,

    /// Seconds the proxy waits before exiting after its pod is asked to stop (classic
    /// placement only).
    #[arg(long, allow_negative_numbers = true)]
    pub wait_before_exit_seconds: Option<i64>,

    /// No longer supported: identity is always required.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub disable_identity: Option<bool>,
}

/// Where Linkerd's control plane is: `-L` of every command that needs it (global, so that
/// it may follow a subcommand's other flags as in `linkerd`'s command lines).
#[derive(Clone, Debug, Args)]
pub struct ControlPlane {
    /// Namespace in which Linkerd is installed.
    #[arg(
        short = 'L',
        long,
        env = "LINKERD_NAMESPACE",
        default_value = "linkerd",
        global = true
    )]
    pub linkerd_namespace: String,
}

impl ControlPlane {
    /// The namespace, when it is a plausible one (letters, digits and `-`); else its text.
    pub fn namespace(&self) -> Result<&str, String> {
        let ns = self.linkerd_namespace.as_str();
        let ok = !ns.is_empty() && ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then_some(ns).ok_or_else(|| ns.to_string())
    }
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub control_plane: ControlPlane,

    /// Linkerd Helm values file(s) (the `values` key of the `linkerd-config` ConfigMap),
    /// merged in order over the built-in defaults. Repeatable.
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,

    /// Name of the MutatingAdmissionPolicy and of its binding.
    #[arg(long, default_value = "linkerd-proxy-injector")]
    pub name: String,

    /// Output format (`json`: one v1 List holding both objects).
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: OutputFormat,

    #[command(flatten)]
    pub proxy: ProxyFlags,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Table,
    Json,
    Junit,
    /// SARIF 2.1.0, for GitHub and GitLab code scanning.
    Sarif,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Warning,
    Error,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Linkerd Helm values file(s), merged in order over the built-in defaults. Repeatable.
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,

    #[command(flatten)]
    pub control_plane: ControlPlane,

    /// Annotation of a namespace that lives in the cluster, as NAMESPACE:KEY=VALUE
    /// (e.g. shop:linkerd.io/inject=enabled). Repeatable. A Namespace object in the input
    /// takes precedence.
    #[arg(long, value_name = "NS:KEY=VALUE")]
    pub namespace_annotation: Vec<String>,

    /// Namespace of workloads that name none.
    #[arg(long, default_value = "default")]
    pub namespace: String,

    /// Fail (exit 2) when a workload will not be meshed.
    #[arg(long)]
    pub require_meshed: bool,

    /// Exempt KIND/NAME (e.g. deployment/legacy) from --require-meshed. Repeatable.
    #[arg(long, value_name = "KIND/NAME")]
    pub allow_unmeshed: Vec<String>,

    /// The finding level that fails the run (exit 2).
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: FailOn,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: CheckFormat,

    /// Files, directories, `-` (stdin) or https:// URLs.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
}

/// `-o` of `inject` and `uninject`: the core's [`Format`], named for the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Yaml => Format::Yaml,
            OutputFormat::Json => Format::Json,
        }
    }
}
