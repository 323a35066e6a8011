//! Where the pod template lives in each kind of object (docs/behaviour.md §4), and typed read
//! access to it.
//!
//! The object stays a `serde_json::Value` throughout: we only *read* it here, checking the
//! types of the fields injection touches so that a malformed manifest is a clear error naming
//! the field, never a panic. Nothing here clones or rewrites the object.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::annotations as a;
use crate::config::json_type;
use crate::config::overrides::{Annotations, NamedPorts};

/// What the injector can do with an object of a given `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// Has a pod template at the given JSON-pointer tokens (empty for a Pod).
    Injectable(&'static [&'static str]),
    /// Namespaces and Services: annotations only.
    Annotatable,
    Unsupported,
}

/// Maps a (lower-cased) kind to its category; `apiVersion` plays no part.
pub fn category(kind_lower: &str) -> Category {
    const TEMPLATE: &[&str] = &["spec", "template"];
    match kind_lower {
        "deployment"
        | "replicationcontroller"
        | "replicaset"
        | "job"
        | "daemonset"
        | "statefulset" => Category::Injectable(TEMPLATE),
        "cronjob" => Category::Injectable(&["spec", "jobTemplate", "spec", "template"]),
        "pod" => Category::Injectable(&[]),
        "namespace" | "service" => Category::Annotatable,
        _ => Category::Unsupported,
    }
}

/// A field of the document has the wrong type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: expected {expected}, found {found}")]
pub struct ShapeError {
    pub path: String,
    pub expected: &'static str,
    pub found: &'static str,
}

/// The identity of an object as the report shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Lower-cased `kind`, empty when absent.
    pub kind: String,
    /// `metadata.name`, or for a nameless Pod its `generateName`.
    pub name: String,
    pub namespace: Option<String>,
}

impl Identity {
    pub fn of(obj: &Value) -> Identity {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        let meta = obj.get("metadata");
        let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
        let mut name = field("name").unwrap_or("").to_string();
        if name.is_empty() && kind == "pod" {
            name = field("generateName").unwrap_or("").to_string();
        }
        Identity {
            kind,
            name,
            namespace: field("namespace").map(str::to_string),
        }
    }

    /// `kind/name`, as error messages and the report's warning lines show it.
    pub fn res_name(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// What marks a pod as already injected (`sidecar_already_exists`): a container (init or not)
/// whose image starts with one of these prefixes or whose name is one of these names —
/// Linkerd's proxy or Istio's — or an init container likewise marked as their init container.
/// The MutatingAdmissionPolicy tests the same lists (`policy.rs`).
pub const SIDECAR_IMAGE_PREFIXES: &[&str] =
    &["cr.l5d.io/linkerd/proxy:", "gcr.io/istio-release/proxyv2:"];
pub const SIDECAR_NAMES: &[&str] = &[a::PROXY_CONTAINER, "istio-proxy"];
pub const SIDECAR_INIT_IMAGE_PREFIXES: &[&str] = &[
    "cr.l5d.io/linkerd/proxy-init:",
    "gcr.io/istio-release/proxy_init:",
];
pub const SIDECAR_INIT_NAMES: &[&str] = &[a::INIT_CONTAINER, "istio-init"];

/// Read access to a pod template (or a Pod): `metadata` and `spec`.
#[derive(Clone, Copy, Debug)]
pub struct PodTemplate<'a> {
    pub value: &'a Value,
}

/// The pod template of `obj` at `tokens`: `Ok(None)` if it is absent, an error if any field
/// injection reads has the wrong type.
pub fn locate<'a>(obj: &'a Value, tokens: &[&str]) -> Result<Option<PodTemplate<'a>>, ShapeError> {
    let mut cur = obj;
    let mut path = String::new();
    for t in tokens {
        push_path(&mut path, t);
        match cur.get(*t) {
            None | Some(Value::Null) => return Ok(None),
            Some(v @ Value::Object(_)) => cur = v,
            Some(other) => return Err(shape(&path, "a mapping", other)),
        }
    }
    if !cur.is_object() {
        return Err(shape(
            if path.is_empty() { "<document>" } else { &path },
            "a mapping",
            cur,
        ));
    }
    check_template(cur, &path)?;
    Ok(Some(PodTemplate { value: cur }))
}

fn push_path(path: &mut String, token: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(token);
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn shape(path: &str, expected: &'static str, found: &Value) -> ShapeError {
    ShapeError {
        path: path.to_string(),
        expected,
        found: json_type(found),
    }
}

/// `Ok(Some(map))`, `Ok(None)` when absent or null, or a type error.
fn opt_map<'a>(
    v: &'a Value,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ShapeError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(shape(&join(path, key), "a mapping", other)),
    }
}

fn opt_list<'a>(v: &'a Value, key: &str, path: &str) -> Result<Option<&'a Vec<Value>>, ShapeError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(l)) => Ok(Some(l)),
        Some(other) => Err(shape(&join(path, key), "a list", other)),
    }
}

fn check_template(t: &Value, path: &str) -> Result<(), ShapeError> {
    if opt_map(t, "metadata", path)?.is_some() {
        let mpath = join(path, "metadata");
        let meta = &t["metadata"];
        opt_map(meta, "annotations", &mpath)?;
        opt_map(meta, "labels", &mpath)?;
    }
    let Some(spec) = t.get("spec").filter(|s| !s.is_null()) else {
        return Ok(());
    };
    let spath = join(path, "spec");
    if !spec.is_object() {
        return Err(shape(&spath, "a mapping", spec));
    }
    for list in ["containers", "initContainers"] {
        let Some(items) = opt_list(spec, list, &spath)? else {
            continue;
        };
        for (i, c) in items.iter().enumerate() {
            let cpath = format!("{}[{i}]", join(&spath, list));
            if !c.is_object() {
                return Err(shape(&cpath, "a mapping", c));
            }
            for key in ["ports", "volumeMounts"] {
                if let Some(entries) = opt_list(c, key, &cpath)? {
                    for (j, e) in entries.iter().enumerate() {
                        if !e.is_object() {
                            return Err(shape(&format!("{cpath}.{key}[{j}]"), "a mapping", e));
                        }
                    }
                }
            }
            if opt_map(c, "securityContext", &cpath)?.is_some() {
                let sc = &c["securityContext"];
                let sc_path = join(&cpath, "securityContext");
                if opt_map(sc, "capabilities", &sc_path)?.is_some() {
                    let cap_path = join(&sc_path, "capabilities");
                    opt_list(&sc["capabilities"], "add", &cap_path)?;
                    opt_list(&sc["capabilities"], "drop", &cap_path)?;
                }
            }
        }
    }
    if let Some(vols) = opt_list(spec, "volumes", &spath)? {
        for (i, v) in vols.iter().enumerate() {
            if !v.is_object() {
                return Err(shape(
                    &format!("{}[{i}]", join(&spath, "volumes")),
                    "a mapping",
                    v,
                ));
            }
        }
    }
    Ok(())
}

/// An annotation or label value as a string; YAML may have given a boolean or a number.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A string map (annotations, labels) as owned strings.
pub fn string_map(m: Option<&Map<String, Value>>) -> Annotations {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), scalar_text(v))).collect())
        .unwrap_or_default()
}

const EMPTY: &[Value] = &[];

impl<'a> PodTemplate<'a> {
    pub fn metadata(&self) -> Option<&'a Map<String, Value>> {
        self.value.get("metadata").and_then(Value::as_object)
    }

    /// Metadata absent or with no field at all: the patch must create it first.
    pub fn metadata_is_empty(&self) -> bool {
        self.metadata().is_none_or(Map::is_empty)
    }

    fn meta_map(&self, key: &str) -> Option<&'a Map<String, Value>> {
        self.metadata()
            .and_then(|m| m.get(key))
            .and_then(Value::as_object)
    }

    pub fn annotations(&self) -> Annotations {
        string_map(self.meta_map("annotations"))
    }

    pub fn raw_annotations(&self) -> Option<&'a Map<String, Value>> {
        self.meta_map("annotations")
    }

    pub fn raw_labels(&self) -> Option<&'a Map<String, Value>> {
        self.meta_map("labels")
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        string_map(self.meta_map("labels"))
    }

    pub fn spec(&self) -> Option<&'a Map<String, Value>> {
        self.value.get("spec").and_then(Value::as_object)
    }

    fn spec_list(&self, key: &str) -> &'a [Value] {
        self.spec()
            .and_then(|s| s.get(key))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(EMPTY)
    }

    pub fn containers(&self) -> &'a [Value] {
        self.spec_list("containers")
    }

    pub fn init_containers(&self) -> &'a [Value] {
        self.spec_list("initContainers")
    }

    pub fn volumes(&self) -> &'a [Value] {
        self.spec_list("volumes")
    }

    /// `initContainers` then `containers`.
    pub fn all_containers(&self) -> impl Iterator<Item = &'a Value> {
        self.init_containers()
            .iter()
            .chain(self.containers().iter())
    }

    pub fn host_network(&self) -> bool {
        self.spec()
            .and_then(|s| s.get("hostNetwork"))
            .and_then(Value::as_bool)
            == Some(true)
    }

    pub fn automount_service_account_token(&self) -> Option<bool> {
        self.spec()
            .and_then(|s| s.get("automountServiceAccountToken"))
            .and_then(Value::as_bool)
    }

    pub fn service_account_name(&self) -> Option<&'a str> {
        self.spec()
            .and_then(|s| s.get("serviceAccountName"))
            .and_then(Value::as_str)
    }

    /// Any `protocol: UDP` port among `containers` (initContainers are not looked at,
    /// docs/differences.md Q-22).
    pub fn has_udp(&self) -> bool {
        self.containers()
            .iter()
            .flat_map(ports)
            .any(|p| p.get("protocol").and_then(Value::as_str) == Some("UDP"))
    }

    /// A Linkerd or Istio proxy (or init container) already present (docs/behaviour.md §5.4).
    pub fn has_sidecar(&self) -> bool {
        let marks = |c: &Value, images: &[&str], names: &[&str]| {
            let image = str_field(c, "image");
            images.iter().any(|p| image.starts_with(p)) || names.contains(&str_field(c, "name"))
        };
        self.all_containers()
            .any(|c| marks(c, SIDECAR_IMAGE_PREFIXES, SIDECAR_NAMES))
            || self
                .init_containers()
                .iter()
                .any(|c| marks(c, SIDECAR_INIT_IMAGE_PREFIXES, SIDECAR_INIT_NAMES))
    }

    /// `LINKERD2_PROXY_INBOUND_PORTS` (docs/behaviour.md §7.4): every container port and numeric
    /// HTTP probe port, de-duplicated and sorted *as strings* (docs/differences.md Q-2).
    pub fn inbound_ports(&self) -> String {
        let mut set = std::collections::BTreeSet::new();
        for c in self.all_containers() {
            for p in ports(c) {
                if let Some(n) = p.get("containerPort").and_then(Value::as_i64) {
                    set.insert(n);
                }
            }
            for probe in ["readinessProbe", "livenessProbe"] {
                let port = c
                    .get(probe)
                    .and_then(|p| p.get("httpGet"))
                    .and_then(|h| h.get("port"));
                if let Some(n) = port.and_then(Value::as_i64) {
                    set.insert(n);
                }
            }
        }
        let mut texts: Vec<String> = set.into_iter().map(|n| n.to_string()).collect();
        texts.sort();
        texts.join(",")
    }

    /// Container ports (initContainers, then containers) that appear in `list`, in order, as
    /// text, duplicates kept: the webhook's default `opaque-ports` annotation.
    pub fn ports_in(&self, list: &str) -> Vec<String> {
        let wanted: Vec<&str> = list.split(',').collect();
        self.all_containers()
            .flat_map(ports)
            .filter_map(|p| p.get("containerPort").and_then(Value::as_i64))
            .map(|n| n.to_string())
            .filter(|t| wanted.contains(&t.as_str()))
            .collect()
    }
}

impl NamedPorts for PodTemplate<'_> {
    /// A later container port with the same name wins.
    fn port_by_name(&self, name: &str) -> Option<i64> {
        self.all_containers()
            .flat_map(ports)
            .filter(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .filter_map(|p| p.get("containerPort").and_then(Value::as_i64))
            .last()
    }
}

/// A container's `ports`.
pub fn ports(c: &Value) -> impl Iterator<Item = &Value> {
    c.get("ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(EMPTY)
        .iter()
}

pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}
