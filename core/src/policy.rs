//! Webhook-less injection: a `MutatingAdmissionPolicy` (admissionregistration.k8s.io/v1,
//! Kubernetes ≥ 1.36) that injects pods inside the API server, and the binding that turns it
//! on (docs/policy.md).
//!
//! What does not depend on the pod — the proxy, the init container, the volumes, the debug
//! container — is rendered here by the webhook's own renderer (`render/`) and baked into the
//! policy as CEL literals. What does is computed in CEL by the policy's `variables` (the
//! inbound ports, the default opaque ports, the service-account mount, the capabilities, the
//! owner label, the debug switch), into the holes the renderer leaves for them
//! (`policy/cel.rs`). The mutation writes the webhook's patch, op for op (`inject.rs`, `emit`).
//!
//! The policy claims only the pods it injects exactly as the webhook would: its
//! `matchConditions` are [`CONDITIONS`], each defined once, in CEL for the API server and in
//! Rust for `check` ([`coverage`]), and a pod they turn away is left to the webhook.

mod cel;

use jsonptr::Token;
use serde_json::{json, Value};

use crate::annotations as a;
use crate::config::overrides::{self, Annotations};
use crate::config::Values;
use crate::decide;
use crate::inject::sha256_hex;
use crate::render::{self, Caps, PodFacts, RenderError};
use crate::workload::{self, PodTemplate};

/// The annotations of the generated objects that say what they were made from.
pub const LINKERD_VERSION_ANNOTATION: &str = "proxy-injector.linkerd.io/linkerd-version";
pub const CONFIG_HASH_ANNOTATION: &str = "proxy-injector.linkerd.io/config-sha256";
pub const GENERATED_BY_ANNOTATION: &str = "proxy-injector.linkerd.io/generated-by";

/// The overrides the policy implements: `linkerd.io/inject` through [`CONDITIONS`], the debug
/// switch through its variable. Any other override on the pod or its namespace means the
/// webhook's rendering differs from the one baked in.
const IMPLEMENTED: &[&str] = &[a::INJECT, overrides::ENABLE_DEBUG_SIDECAR];

/// `linkerd.io/inject` values the webhook accepts, and those that turn injection on.
const INJECT_VALUES: &[&str] = &["", a::INJECT_ENABLED, a::INJECT_DISABLED, a::INJECT_INGRESS];
const INJECT_ENABLING: &[&str] = &[a::INJECT_ENABLED, a::INJECT_INGRESS];

/// What the policy is generated from.
pub struct Options<'a> {
    /// The Values, with the CLI's flags applied.
    pub values: &'a Values,
    pub control_plane_ns: &'a str,
    /// The name of the policy and of its binding.
    pub name: &'a str,
    /// The value of `linkerd.io/created-by` on injected pods.
    pub created_by: &'a str,
    /// What `generated-by` says.
    pub generator: &'a str,
}

/// The two objects to apply.
#[derive(Debug)]
pub struct Generated {
    pub policy: Value,
    pub binding: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Why the policy leaves a pod alone: the first of its `matchConditions` that is false.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uncovered {
    /// The matchCondition's name.
    pub condition: &'static str,
    pub text: String,
}

/// One matchCondition: its name, its CEL, and the same test in Rust for `check`.
struct Condition {
    name: &'static str,
    /// Whether the config needs the condition at all.
    applies: fn(&Values) -> bool,
    cel: fn(&Values) -> String,
    /// `Err(why)` for a pod the condition turns away.
    test: fn(&Subject<'_>) -> Result<(), String>,
}

/// A pod as a condition sees it.
struct Subject<'a> {
    pod: &'a PodTemplate<'a>,
    own: Annotations,
    namespace: &'a Annotations,
    /// With tracing on, `resource.opentelemetry.io/*` annotations are overrides too.
    tracing: bool,
}

fn always(_: &Values) -> bool {
    true
}

/// The pod's annotation `key` as a CEL optional (absent: none).
fn pod_annotation(key: &str) -> String {
    format!("object.metadata.?annotations[?{}]", cel::string(key))
}

/// The same on the pod's namespace.
fn namespace_annotation(key: &str) -> String {
    format!(
        "namespaceObject.metadata.?annotations[?{}]",
        cel::string(key)
    )
}

/// The policy's matchConditions, in the order `check` reports them. Kubernetes skips the
/// policy for a pod when any is false; each mirrors a rule of the webhook's decision
/// (`decide.rs`) or marks what the policy does not implement.
const CONDITIONS: &[Condition] = &[
    Condition {
        // The webhook's truth table (docs/behaviour.md §5.3): valid values, and enabled on
        // the pod or on its namespace without the pod opting out.
        name: "injection-enabled",
        applies: always,
        cel: |_| {
            let pod = format!("{}.orValue(\"\")", pod_annotation(a::INJECT));
            let ns = format!("{}.orValue(\"\")", namespace_annotation(a::INJECT));
            let valid = cel::strings(INJECT_VALUES.iter().copied());
            let enabling = cel::strings(INJECT_ENABLING.iter().copied());
            format!(
                "{pod} in {valid} && {ns} in {valid} && \
                 (({ns} in {enabling} && {pod} != {disabled}) || {pod} in {enabling})",
                disabled = cel::string(a::INJECT_DISABLED),
            )
        },
        test: |s| {
            let get = |m: &Annotations| m.get(a::INJECT).cloned().unwrap_or_default();
            match decide::webhook_decision(&get(s.namespace), &get(&s.own)).0 {
                None => Ok(()),
                Some(reason) => Err(reason.text().to_string()),
            }
        },
    },
    Condition {
        // `ingress` turns on the proxy's ingress mode, a rendering the policy does not bake.
        // The pod's own value wins over its namespace's (it inherits only what it lacks).
        name: "not-ingress-mode",
        applies: always,
        cel: |_| {
            format!(
                "{}.orValue({}.orValue(\"\")) != {}",
                pod_annotation(a::INJECT),
                namespace_annotation(a::INJECT),
                cel::string(a::INJECT_INGRESS)
            )
        },
        test: |s| match s.own.get(a::INJECT).or(s.namespace.get(a::INJECT)) {
            Some(v) if v == a::INJECT_INGRESS => {
                Err("linkerd.io/inject: ingress (ingress mode) is left to the webhook".into())
            }
            _ => Ok(()),
        },
    },
    Condition {
        name: "not-host-network",
        applies: always,
        cel: |_| "!object.spec.?hostNetwork.orValue(false)".into(),
        test: |s| match s.pod.host_network() {
            true => Err(decide::SkipReason::HostNetwork.text().into()),
            false => Ok(()),
        },
    },
    Condition {
        // Linkerd's or Istio's proxy already there (`workload.rs`, `has_sidecar`); this also
        // makes the policy a no-op on its own output.
        name: "not-injected",
        applies: always,
        cel: |_| {
            let marked = |images: &[&str], names: &[&str]| {
                let prefixes: Vec<String> = images
                    .iter()
                    .map(|p| format!("c.?image.orValue(\"\").startsWith({})", cel::string(p)))
                    .collect();
                format!(
                    "{} || c.?name.orValue(\"\") in {}",
                    prefixes.join(" || "),
                    cel::strings(names.iter().copied())
                )
            };
            format!(
                "!(object.spec.?initContainers.orValue([]) + object.spec.?containers.orValue([]))\
                 .exists(c, {}) && !object.spec.?initContainers.orValue([]).exists(c, {})",
                marked(workload::SIDECAR_IMAGE_PREFIXES, workload::SIDECAR_NAMES),
                marked(
                    workload::SIDECAR_INIT_IMAGE_PREFIXES,
                    workload::SIDECAR_INIT_NAMES
                ),
            )
        },
        test: |s| match s.pod.has_sidecar() {
            true => Err(decide::SkipReason::SidecarExists.text().into()),
            false => Ok(()),
        },
    },
    Condition {
        // Only with token projection off: the proxy then authenticates with the pod's own
        // token, which the first container must mount (docs/behaviour.md §5.5).
        name: "service-account-token-mounted",
        applies: |v| !v.identity.service_account_token_projection,
        cel: |_| {
            format!(
                "object.spec.?automountServiceAccountToken.orValue(true) && \
                 size(object.spec.?containers.orValue([])) > 0 && \
                 object.spec.containers[0].?volumeMounts.orValue([])\
                 .exists(m, m.?mountPath.orValue(\"\") == {})",
                cel::string(a::SERVICE_ACCOUNT_MOUNT_PATH)
            )
        },
        test: |s| {
            let mounted = s.pod.automount_service_account_token() != Some(false)
                && render::service_account_mount(s.pod).is_some();
            match mounted {
                true => Ok(()),
                false => Err(decide::AUTOMOUNT_TEXT.into()),
            }
        },
    },
    Condition {
        name: "no-pod-overrides",
        applies: always,
        cel: |v| {
            let trace = match render::tracing_enabled(v) {
                true => format!(" || k.startsWith({})", cel::string(a::OTEL_RESOURCE_PREFIX)),
                false => String::new(),
            };
            format!(
                "!object.metadata.?annotations.orValue({{}}).exists(k, k in {}{trace})",
                cel::strings(pod_override_keys())
            )
        },
        test: |s| {
            let overrides = |k: &&String| {
                pod_override_keys().any(|o| o == *k)
                    || (s.tracing && k.starts_with(a::OTEL_RESOURCE_PREFIX))
            };
            match s.own.keys().find(overrides) {
                Some(k) => Err(format!(
                    "{k} is set on the pod: the policy renders only the config's defaults"
                )),
                None => Ok(()),
            }
        },
    },
    Condition {
        name: "no-namespace-overrides",
        applies: always,
        cel: |_| {
            format!(
                "!namespaceObject.metadata.?annotations.orValue({{}}).exists(k, k in {})",
                cel::strings(namespace_override_keys())
            )
        },
        test: |s| match s
            .namespace
            .keys()
            .find(|k| namespace_override_keys().any(|o| o == *k))
        {
            Some(k) => Err(format!(
                "{k} is set on the namespace: the policy renders only the config's defaults"
            )),
            None => Ok(()),
        },
    },
];

/// The override annotations that, on a pod, make its rendering differ from the baked one.
fn pod_override_keys() -> impl Iterator<Item = &'static str> {
    let mut seen = Vec::new();
    overrides::keys().filter(move |k| {
        let new = !IMPLEMENTED.contains(k) && !seen.contains(k);
        seen.push(*k);
        new
    })
}

/// The same on a namespace: those its pods inherit or read.
fn namespace_override_keys() -> impl Iterator<Item = &'static str> {
    pod_override_keys().filter(|k| overrides::reads_from_namespace(k))
}

/// Whether the policy made from `values` injects `pod` in a namespace with these annotations
/// (`Err`: the first matchCondition that turns it away, and why). A covered pod gets what the
/// webhook would give it, up to the differences docs/policy.md lists.
pub fn coverage(
    pod: &PodTemplate<'_>,
    namespace: &Annotations,
    values: &Values,
) -> Result<(), Uncovered> {
    let subject = Subject {
        pod,
        own: pod.annotations(),
        namespace,
        tracing: render::tracing_enabled(values),
    };
    for c in CONDITIONS.iter().filter(|c| (c.applies)(values)) {
        (c.test)(&subject).map_err(|text| Uncovered {
            condition: c.name,
            text,
        })?;
    }
    Ok(())
}

/// The policy and its binding for `opts`.
pub fn generate(opts: &Options<'_>) -> Result<Generated, PolicyError> {
    let values = opts.values;
    render::require_trust_anchors(values)?;
    render::check(values)?;
    let baked = Baked::render(values, opts.control_plane_ns)?;
    let conditions: Vec<Value> = CONDITIONS
        .iter()
        .filter(|c| (c.applies)(values))
        .map(|c| json!({"name": c.name, "expression": (c.cel)(values)}))
        .collect();
    let variables: Vec<Value> = variables(values)
        .into_iter()
        .map(|(name, expression)| json!({"name": name, "expression": expression}))
        .collect();
    let metadata = json!({
        "name": opts.name,
        "labels": {
            "app.kubernetes.io/managed-by": "proxy-injector",
            a::CONTROL_PLANE_NS_LABEL: opts.control_plane_ns,
        },
        "annotations": {
            LINKERD_VERSION_ANNOTATION: values.linkerd_version,
            CONFIG_HASH_ANNOTATION: config_hash(values, opts.control_plane_ns),
            GENERATED_BY_ANNOTATION: opts.generator,
        },
    });
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": metadata,
        "spec": {
            // Pods only: the webhook's other object, a Service's opaque-ports annotation, is
            // left to it.
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["pods"],
                }],
                "matchPolicy": "Equivalent",
            },
            "matchConditions": conditions,
            "variables": variables,
            "mutations": [{
                "patchType": "JSONPatch",
                "jsonPatch": {"expression": mutation(&baked, opts)},
            }],
            // A CEL error is deterministic: with Ignore every such pod would start without a
            // proxy, silently; Fail refuses it with the error, where it is seen.
            "failurePolicy": "Fail",
            // The `not-injected` condition turns away a pod the policy injected, so a second
            // call could change nothing (the webhook's default is Never too).
            "reinvocationPolicy": "Never",
        },
    });
    let mut binding_meta = metadata;
    binding_meta["annotations"] = json!({GENERATED_BY_ANNOTATION: opts.generator});
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": binding_meta,
        "spec": {
            "policyName": opts.name,
            // The chart's selectors with failurePolicy Fail (charts/proxy-injector/values.yaml):
            // never the cluster's own namespaces or Linkerd's control plane.
            "matchResources": {
                "namespaceSelector": {"matchExpressions": [
                    {"key": "config.linkerd.io/admission-webhooks", "operator": "NotIn", "values": ["disabled"]},
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                     "values": excluded_namespaces(opts.control_plane_ns)},
                ]},
                "objectSelector": {"matchExpressions": [
                    {"key": a::CONTROL_PLANE_COMPONENT_LABEL, "operator": "DoesNotExist"},
                    {"key": "linkerd.io/cni-resource", "operator": "DoesNotExist"},
                ]},
            },
        },
    });
    Ok(Generated { policy, binding })
}

fn excluded_namespaces(control_plane_ns: &str) -> Vec<String> {
    let mut names = vec!["kube-system".to_string(), "cert-manager".to_string()];
    if !names.iter().any(|n| n == control_plane_ns) {
        names.push(control_plane_ns.to_string());
    }
    names
}

/// SHA-256 of the effective config the policy bakes in (this build's reading of the Values,
/// and the control-plane namespace): regenerate and compare to find an outdated policy.
pub fn config_hash(values: &Values, control_plane_ns: &str) -> String {
    sha256_hex(&format!("{values:?}\n{control_plane_ns}"))
}

/// The proxy's trace attributes: the config's, with the pod's `service.name` (`render/proxy.rs`).
const TRACE_ATTRIBUTES: &str = "LINKERD2_PROXY_TRACE_EXTRA_ATTRIBUTES";

/// What the config adds to every pod, as CEL with holes (`policy/cel.rs`).
struct Baked {
    init: String,
    proxy: String,
    debug: String,
    volumes: Vec<String>,
    xtables_lock: Option<String>,
}

impl Baked {
    fn render(values: &Values, control_plane_ns: &str) -> Result<Baked, PolicyError> {
        let mut values = values.clone();
        if !values.proxy.opaque_ports.is_empty() {
            values.proxy.opaque_ports = cel::value("opaqueEnv");
        }
        let facts = PodFacts {
            proxy_capabilities: None,
            init_capabilities: None,
            sa_mount: Some(Value::String(cel::splice("serviceAccountMounts"))),
            inbound_ports: cel::value("inboundPorts"),
            service_name: None,
        };
        let init = if values.cni_enabled {
            render::network_validator(&values)
        } else {
            let mut init = render::init_container(&values, &facts)?;
            init["securityContext"]["capabilities"] = Value::String(cel::value("initCapabilities"));
            init
        };
        let mut proxy = render::proxy_container(&values, &facts, control_plane_ns);
        for var in proxy["env"].as_array_mut().into_iter().flatten() {
            if var["name"] == TRACE_ATTRIBUTES {
                var["value"] = Value::String(cel::value("traceAttributes"));
            }
        }
        if values.proxy.security_context.is_empty() {
            if let Some(sc) = proxy["securityContext"].as_object_mut() {
                sc.insert(
                    "capabilities".into(),
                    Value::String(cel::optional("proxyCapabilities")),
                );
            }
        }
        let vols = render::volumes(&values);
        let volumes = [Some(vols.end_entity), vols.podinfo, vols.token]
            .into_iter()
            .flatten()
            .map(|v| cel::literal(&v))
            .collect();
        Ok(Baked {
            init: cel::literal(&init),
            proxy: cel::literal(&proxy),
            debug: cel::literal(&render::debug_container(&values)),
            volumes,
            xtables_lock: vols.xtables_lock.map(|v| cel::literal(&v)),
        })
    }
}

/// The policy's variables, in order (a variable may use those before it).
fn variables(values: &Values) -> Vec<(&'static str, String)> {
    let sa = cel::string(a::SERVICE_ACCOUNT_MOUNT_PATH);
    let wanted = cel::strings(values.proxy.opaque_ports.split(','));
    let mut out = vec![
        (
            "containers",
            "object.spec.?initContainers.orValue([]) + object.spec.?containers.orValue([])".into(),
        ),
        // `LINKERD2_PROXY_INBOUND_PORTS` (docs/behaviour.md §7.4): every container port and
        // numeric HTTP probe port, de-duplicated, sorted as text.
        (
            "inboundPorts",
            "variables.containers.map(c, \
             c.?ports.orValue([]).filter(p, has(p.containerPort)).map(p, string(p.containerPort)) + \
             [c.?readinessProbe.?httpGet.?port, c.?livenessProbe.?httpGet.?port]\
             .filter(o, o.hasValue() && type(o.value()) == int).map(o, string(o.value())))\
             .flatten().distinct().sort().join(\",\")"
                .into(),
        ),
        // The webhook's default `opaque-ports`: the container ports in the config's list, in
        // order, duplicates kept (`workload.rs`, `ports_in`).
        (
            "opaquePorts",
            format!(
                "variables.containers.map(c, c.?ports.orValue([])\
                 .filter(p, has(p.containerPort) && string(p.containerPort) in {wanted})\
                 .map(p, string(p.containerPort))).flatten()"
            ),
        ),
        // The proxy's opaque ports: the pod's, else the config's list.
        (
            "opaqueEnv",
            format!(
                "size(variables.opaquePorts) > 0 ? variables.opaquePorts.join(\",\") : {}",
                cel::string(&values.proxy.opaque_ports)
            ),
        ),
        // The first container's mount of its service-account token, copied to the proxy and
        // the init container (`render`, `service_account_mount`).
        (
            "tokenMounts",
            format!(
                "size(object.spec.?containers.orValue([])) == 0 ? [] : \
                 object.spec.containers[0].?volumeMounts.orValue([])\
                 .filter(m, m.?mountPath.orValue(\"\") == {sa})"
            ),
        ),
        (
            "serviceAccountMounts",
            format!(
                "size(variables.tokenMounts) == 0 ? [] : [dyn({{\
                 \"mountPath\": dyn({sa}), \"name\": dyn(variables.tokenMounts[0].?name.orValue(\"\")), \
                 \"readOnly\": dyn(variables.tokenMounts[0].?readOnly.orValue(false))}})]"
            ),
        ),
    ];
    out.extend(capability_variables(values));
    out.extend([
        // `config.linkerd.io/enable-debug-sidecar`, the pod's or else its namespace's, read as
        // Go reads a boolean.
        (
            "debug",
            format!(
                "{}.orValue({}.orValue(\"\")) in {}",
                pod_annotation(overrides::ENABLE_DEBUG_SIDECAR),
                namespace_annotation(overrides::ENABLE_DEBUG_SIDECAR),
                cel::strings(crate::parse::GO_TRUE.iter().copied())
            ),
        ),
        ("ownerLabel", owner_label()),
        ("traceAttributes", trace_attributes(values)),
    ]);
    out
}

/// The capabilities the proxy and the init container take (`render`, `PodFacts::of`): the
/// first container's, else the Helm values', as lists of zero or one `{add, drop}` (no
/// optional-typed variables: `policy/cel.rs` says why).
fn capability_variables(values: &Values) -> Vec<(&'static str, String)> {
    let helm_caps = |c: &Option<crate::config::Capabilities>| {
        c.as_ref().map(|c| Caps {
            add: c.add.clone(),
            drop: c.drop.clone(),
        })
    };
    let caps_map = |c: &Caps| {
        format!(
            "{{\"add\": {}, \"drop\": {}}}",
            cel::strings(c.add.iter().map(String::as_str)),
            cel::strings(c.drop.iter().map(String::as_str))
        )
    };
    // The proxy copies the first container's capabilities, else the Helm values' (`render`,
    // `PodFacts::of`); the init container derives its own from the same source.
    let source = match helm_caps(&values.proxy.capabilities) {
        Some(h) => format!(
            "size(variables.appCapabilities) > 0 ? variables.appCapabilities : [{}]",
            caps_map(&h)
        ),
        None => "variables.appCapabilities".into(),
    };
    // Without a source, the init container's are the Helm values' (`render/containers.rs`).
    let init_default = {
        let helm = helm_caps(&values.proxy_init.capabilities).unwrap_or_default();
        let mut add = vec!["NET_ADMIN".to_string(), "NET_RAW".to_string()];
        add.extend(helm.add);
        let mut c = json!({"add": add});
        if !helm.drop.is_empty() {
            c["drop"] = json!(helm.drop);
        }
        cel::literal(&c)
    };
    let non_empty =
        |list: &str| format!("size({list}) > 0 ? optional.of(dyn({list})) : optional.none()");
    vec![
        (
            "appCapabilities",
            "size(object.spec.?containers.orValue([])) > 0 && \
             object.spec.containers[0].?securityContext.?capabilities.hasValue() ? \
             [{\"add\": object.spec.containers[0].securityContext.capabilities.?add.orValue([]), \
             \"drop\": object.spec.containers[0].securityContext.capabilities.?drop.orValue([])}] : []"
                .into(),
        ),
        ("capabilities", source),
        (
            "proxyCapabilities",
            format!(
                "size(variables.capabilities) > 0 && \
                 size(variables.capabilities[0].add) + size(variables.capabilities[0].drop) > 0 ? \
                 [dyn({{?\"add\": {}, ?\"drop\": {}}})] : []",
                non_empty("variables.capabilities[0].add"),
                non_empty("variables.capabilities[0].drop"),
            ),
        ),
        (
            "initCapabilities",
            format!(
                "size(variables.capabilities) > 0 ? dyn({{\
                 \"add\": dyn([\"NET_ADMIN\", \"NET_RAW\"] + variables.capabilities[0].add), \
                 ?\"drop\": {}}}) : dyn({init_default})",
                non_empty(
                    "variables.capabilities[0].drop.filter(d, d != \"NET_RAW\" && d != \"NET_ADMIN\")"
                ),
            ),
        ),
    ]
}

/// `LINKERD2_PROXY_TRACE_EXTRA_ATTRIBUTES` (`render/proxy.rs`): the config's attributes, sorted,
/// one `key=value` a line, with `service.name` taken from the pod's
/// `app.kubernetes.io/instance` or else `app.kubernetes.io/name` label when it has one.
fn trace_attributes(values: &Values) -> String {
    const KEY: &str = "service.name";
    let Some(t) = values.proxy.tracing.as_ref() else {
        return "\"\"".into();
    };
    let line = |(k, v): (&String, &String)| format!("{k}={v}\n");
    let before: String = t
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() < KEY)
        .map(line)
        .collect();
    let after: String = t
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() > KEY)
        .map(line)
        .collect();
    let baked = t
        .labels
        .get(KEY)
        .map(|v| format!("{KEY}={v}\n"))
        .unwrap_or_default();
    let label = |name: &str| {
        format!(
            "object.metadata.?labels[?{n}].hasValue() ? {prefix} + object.metadata.labels[{n}] + \"\\n\"",
            n = cel::string(name),
            prefix = cel::string(&format!("{KEY}=")),
        )
    };
    format!(
        "{} + ({} : {} : {}) + {}",
        cel::string(&before),
        label(a::APP_INSTANCE_LABEL),
        label(a::APP_NAME_LABEL),
        cel::string(&baked),
        cel::string(&after),
    )
}

/// `linkerd.io/proxy-<kind>: <name>` for the pod's single owner (docs/behaviour.md §10.5), as
/// the list of patch ops that writes it. The webhook looks a ReplicaSet's or a Job's owner up
/// in the cluster; CEL cannot, so a ReplicaSet named `<deployment>-<pod-template-hash>` is
/// taken as that Deployment's, and a Job is labelled as itself (docs/policy.md).
fn owner_label() -> String {
    let kinds = cel::strings(crate::inject::OWNER_LABEL_KINDS.iter().copied());
    format!(
        "size(object.metadata.?ownerReferences.orValue([])) != 1 ? [] : \
         [object.metadata.ownerReferences[0]].map(r, \
         r.kind == \"ReplicaSet\" && object.metadata.?labels[?\"pod-template-hash\"].hasValue() && \
         r.name.endsWith(\"-\" + object.metadata.labels[\"pod-template-hash\"]) ? \
         [\"deployment\", r.name.substring(0, size(r.name) - size(object.metadata.labels[\"pod-template-hash\"]) - 1)] : \
         [r.kind.lowerAscii(), string(r.name)])\
         .filter(o, o[0] in {kinds})\
         .map(o, JSONPatch{{op: \"add\", path: \"/metadata/labels/\" + jsonpatch.escapeKey({prefix} + o[0]), value: o[1]}})",
        prefix = cel::string(a::PROXY_OWNER_LABEL_PREFIX),
    )
}

fn add(path: &str, value: &str) -> String {
    format!(
        "JSONPatch{{op: \"add\", path: {}, value: {value}}}",
        cel::string(path)
    )
}

/// The mutation: the webhook's patch, op for op, in its order (`inject.rs`, `emit`).
fn mutation(baked: &Baked, opts: &Options<'_>) -> String {
    let values = opts.values;
    let mut parts: Vec<String> = Vec::new();
    // 1. Annotations: the map if missing, then each key.
    parts.push(format!(
        "(has(object.metadata.annotations) ? [] : [{}])",
        add("/metadata/annotations", "{}")
    ));
    let ann = |key: &str| format!("/metadata/annotations/{}", Token::new(key).encoded());
    let mut fixed = vec![
        add(&ann(a::CREATED_BY), &cel::string(opts.created_by)),
        add(&ann(a::PROXY_VERSION), &cel::string(values.proxy_version())),
        add(
            &ann(a::TRUST_ROOT_SHA256),
            &cel::string(&sha256_hex(&values.identity_trust_anchors_pem)),
        ),
    ];
    parts.push(format!("[{}]", fixed.join(", ")));
    for key in IMPLEMENTED {
        // Inherited from the namespace when the pod lacks it (docs/behaviour.md §6.1).
        parts.push(format!(
            "({pod}.hasValue() || !{ns}.hasValue() ? [] : [{op}])",
            pod = pod_annotation(key),
            ns = namespace_annotation(key),
            op = add(&ann(key), &format!("{}.value()", namespace_annotation(key))),
        ));
    }
    parts.push(format!(
        "(size(variables.opaquePorts) > 0 ? [{}] : [])",
        add(
            &ann(overrides::OPAQUE_PORTS),
            "variables.opaquePorts.join(\",\")"
        )
    ));
    // 2. Labels.
    parts.push(format!(
        "(has(object.metadata.labels) ? [] : [{}])",
        add("/metadata/labels", "{}")
    ));
    let label = |key: &str| format!("/metadata/labels/{}", Token::new(key).encoded());
    fixed = vec![add(
        &label(a::CONTROL_PLANE_NS_LABEL),
        &cel::string(opts.control_plane_ns),
    )];
    parts.push(format!("[{}]", fixed.join(", ")));
    parts.push("variables.ownerLabel".into());
    parts.push(format!(
        "[{}]",
        add(&label(a::WORKLOAD_NS_LABEL), "request.namespace")
    ));
    // 3. The lists, then what goes into them.
    parts.push(format!(
        "(size(object.spec.?volumes.orValue([])) > 0 ? [] : [{}])",
        add("/spec/volumes", "[]")
    ));
    parts.push(format!(
        "(size(object.spec.?initContainers.orValue([])) > 0 ? [] : [{}])",
        add("/spec/initContainers", "[]")
    ));
    let native = values.proxy.native_sidecar;
    let mut ops = Vec::new();
    if let Some(v) = &baked.xtables_lock {
        ops.push(add("/spec/volumes/-", v));
    }
    let init_at = if native { "0" } else { "-" };
    ops.push(add(&format!("/spec/initContainers/{init_at}"), &baked.init));
    parts.push(format!("[{}]", ops.join(", ")));
    parts.push(format!(
        "(variables.debug ? (has(object.spec.containers) ? [] : [{}]) + [{}] : [])",
        add("/spec/containers", "[]"),
        add("/spec/containers/-", &baked.debug)
    ));
    let vols: Vec<String> = baked
        .volumes
        .iter()
        .map(|v| add("/spec/volumes/-", v))
        .collect();
    parts.push(format!("[{}]", vols.join(", ")));
    if native {
        parts.push(format!("[{}]", add("/spec/initContainers/1", &baked.proxy)));
    } else {
        let slot = if values.proxy.r#await { "0" } else { "-" };
        parts.push(format!(
            "(has(object.spec.containers) || variables.debug ? [] : [{}])",
            add("/spec/containers", "[]")
        ));
        parts.push(format!(
            "[{}]",
            add(&format!("/spec/containers/{slot}"), &baked.proxy)
        ));
    }
    parts.join("\n+ ")
}

/// Size limits of the generated expressions, checked by `tests/policy.rs`. Kubernetes bounds
/// a policy by its CEL cost (estimated when the policy is written, and charged per
/// evaluation), not by its length; these keep the policy far inside both, so that a change
/// that makes it grow fails a test first:
///
/// - a matchCondition or variable is a test or a small computation over the pod: 4 KiB (the
///   longest, the list of override keys, is about 2 KiB);
/// - the mutation carries the baked containers as literals: 64 KiB (about 11 KiB with the
///   default config, the proxy's env being most of it); literals cost nothing per pod beyond
///   their construction;
/// - the whole policy: 256 KiB, a sixth of etcd's default 1.5 MiB object limit.
///
/// Comprehensions (`map`, `filter`, `exists`, `all`) nest at most two deep (containers, then
/// their ports), so each expression's cost is linear in the pod's size.
pub const EXPRESSION_LIMIT: usize = 4 * 1024;
pub const MUTATION_LIMIT: usize = 64 * 1024;
pub const OBJECT_LIMIT: usize = 256 * 1024;

/// How deep comprehension macros nest in `text` (string literals skipped).
pub fn comprehension_depth(text: &str) -> usize {
    const MACROS: &[&str] = &[".map(", ".filter(", ".exists(", ".all(", ".exists_one("];
    // For each open parenthesis: whether it opened a macro.
    let mut open: Vec<bool> = Vec::new();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut in_string = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'(' {
            let rest = &text[..=i];
            let is_macro = MACROS.iter().any(|m| rest.ends_with(m));
            if is_macro {
                depth += 1;
                max = max.max(depth);
            }
            open.push(is_macro);
        } else if b == b')' && open.pop() == Some(true) {
            depth -= 1;
        }
        i += 1;
    }
    max
}

/// Every CEL expression of a generated policy, by where it is (for size checks).
pub fn expressions(policy: &Value) -> Vec<(String, String)> {
    let spec = &policy["spec"];
    let mut out = Vec::new();
    for field in ["matchConditions", "variables"] {
        for item in spec[field].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            if let (Some(n), Some(e)) = (item["name"].as_str(), item["expression"].as_str()) {
                out.push((format!("{field}/{n}"), e.to_string()));
            }
        }
    }
    for (i, m) in spec["mutations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        if let Some(e) = m["jsonPatch"]["expression"].as_str() {
            out.push((format!("mutations/{i}"), e.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
