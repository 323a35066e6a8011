//! A local stand-in for the Kubernetes API server — not a real one: an HTTP server on
//! loopback that speaks enough of the API for the webhook's caches and events. It serves
//! list and watch (newline-delimited watch events, replayed from a resource version) for
//! namespaces, replicasets, jobs and pods, in full or as `PartialObjectMetadata` when the
//! client asks for metadata only, filtered by `labelSelector`; GETs of single objects; and
//! accepts Events (`events.k8s.io/v1`). It counts the requests it serves, by kind and verb.
//! Objects carry realistic metadata (uid, resourceVersion, creationTimestamp, labels,
//! ownerReferences).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::broadcast;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    ReplicaSet,
    Job,
    Pod,
}

impl Kind {
    fn api_version(self) -> &'static str {
        match self {
            Kind::Namespace => "v1",
            Kind::ReplicaSet => "apps/v1",
            Kind::Job => "batch/v1",
            Kind::Pod => "v1",
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Job => "Job",
            Kind::Pod => "Pod",
        }
    }
}

#[derive(Default)]
struct World {
    rv: u64,
    objects: BTreeMap<(Kind, String, String), Value>,
    history: Vec<(Kind, u64, Value)>,
    events: Vec<Value>,
    gets: u64,
    /// Requests served, by kind and verb (`list`, `watch`, `get`).
    requests: BTreeMap<(Kind, &'static str), u64>,
    /// Leases by namespace and name, with the field manager that owns each spec field.
    leases: BTreeMap<(String, String), (Value, BTreeMap<String, String>)>,
    /// Eviction requests (namespace/name, HTTP status answered), in order.
    evictions: Vec<(String, u16)>,
    /// Evictions still to refuse with 429, as a PodDisruptionBudget would.
    refuse_evictions: u32,
}

#[derive(Clone)]
pub struct KubeApi {
    pub addr: SocketAddr,
    world: Arc<Mutex<World>>,
    tx: broadcast::Sender<(Kind, u64, Value)>,
}

type Shared = (Arc<Mutex<World>>, broadcast::Sender<(Kind, u64, Value)>);

impl KubeApi {
    pub async fn start() -> KubeApi {
        let world = Arc::new(Mutex::new(World {
            rv: 100,
            ..World::default()
        }));
        let (tx, _) = broadcast::channel(4096);
        let shared: Shared = (world.clone(), tx.clone());
        let app = Router::new()
            .route("/api/v1/namespaces", get(list_namespaces))
            .route("/api/v1/namespaces/{name}", get(get_namespace))
            .route("/apis/apps/v1/replicasets", get(list_replicasets))
            .route(
                "/apis/apps/v1/namespaces/{ns}/replicasets/{name}",
                get(get_replicaset),
            )
            .route("/apis/batch/v1/jobs", get(list_jobs))
            .route("/api/v1/pods", get(list_pods))
            .route("/api/v1/namespaces/{ns}/pods/{name}", get(get_pod))
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}/eviction",
                post(evict_pod),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                post(create_lease),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                get(get_lease).patch(patch_lease),
            )
            .route("/apis/batch/v1/namespaces/{ns}/jobs/{name}", get(get_job))
            .route(
                "/apis/events.k8s.io/v1/namespaces/{ns}/events",
                post(create_event),
            )
            .route(
                "/apis/events.k8s.io/v1/namespaces/{ns}/events/{name}",
                patch(patch_event),
            )
            .fallback(|| async {
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            })
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        KubeApi { addr, world, tx }
    }

    /// A kubeconfig that points at this stand-in.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: http://{}\n\
             users:\n- name: standin\n  user: {{}}\ncontexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n\
             current-context: standin\n",
            self.addr
        )
    }

    fn put(&self, kind: Kind, ns: &str, name: &str, mut obj: Value) {
        let mut w = self.world.lock().unwrap();
        w.rv += 1;
        let rv = w.rv;
        let key = (kind, ns.to_string(), name.to_string());
        let existed = w.objects.contains_key(&key);
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        w.objects.insert(key, obj.clone());
        let event = json!({"type": if existed { "MODIFIED" } else { "ADDED" }, "object": obj});
        w.history.push((kind, rv, event.clone()));
        let _ = self.tx.send((kind, rv, event));
    }

    /// A namespace with labels besides `kubernetes.io/metadata.name`.
    pub fn add_labelled_namespace(&self, name: &str, annotations: Value, labels: Value) {
        self.add_namespace(name, annotations);
        let mut obj = self.object(Kind::Namespace, "", name).unwrap();
        for (k, v) in labels.as_object().into_iter().flatten() {
            obj["metadata"]["labels"][k] = v.clone();
        }
        self.put(Kind::Namespace, "", name, obj);
    }

    /// A running pod, created `age_seconds` ago, owned by `owner` (kind, name) if given.
    pub fn add_pod(
        &self,
        ns: &str,
        name: &str,
        annotations: Value,
        spec: Value,
        owner: Option<(&str, &str)>,
        age_seconds: i64,
    ) {
        let owners = owner
            .map(|(kind, owner)| {
                json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": uid_for(owner),
                        "controller": true, "blockOwnerDeletion": true}])
            })
            .unwrap_or(json!([]));
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - age_seconds;
        self.put(
            Kind::Pod,
            ns,
            name,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "uid": uid_for(&format!("{ns}/{name}")),
                             "creationTimestamp": rfc3339(created),
                             "labels": {"app": name}, "annotations": annotations,
                             "ownerReferences": owners},
                "spec": spec,
                "status": {"phase": "Running", "podIP": "10.0.0.7"},
            }),
        );
    }

    /// Removes an object, as a DELETED watch event.
    pub fn delete(&self, kind: Kind, ns: &str, name: &str) {
        let mut w = self.world.lock().unwrap();
        let Some(mut obj) = w.objects.remove(&(kind, ns.to_string(), name.to_string())) else {
            return;
        };
        w.rv += 1;
        let rv = w.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let event = json!({"type": "DELETED", "object": obj});
        w.history.push((kind, rv, event.clone()));
        let _ = self.tx.send((kind, rv, event));
    }

    fn object(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let w = self.world.lock().unwrap();
        w.objects
            .get(&(kind, ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Requests served for `kind` with `verb` (`list`, `watch` or `get`).
    pub fn requests(&self, kind: Kind, verb: &'static str) -> u64 {
        let w = self.world.lock().unwrap();
        w.requests.get(&(kind, verb)).copied().unwrap_or(0)
    }

    /// The next `n` evictions are refused with 429, as a PodDisruptionBudget refuses them.
    pub fn refuse_evictions(&self, n: u32) {
        self.world.lock().unwrap().refuse_evictions = n;
    }

    /// Eviction requests served: `namespace/name` and the status answered.
    pub fn evictions(&self) -> Vec<(String, u16)> {
        self.world.lock().unwrap().evictions.clone()
    }

    /// The lease `ns/name`, if it exists.
    pub fn lease(&self, ns: &str, name: &str) -> Option<Value> {
        let w = self.world.lock().unwrap();
        w.leases
            .get(&(ns.to_string(), name.to_string()))
            .map(|(l, _)| l.clone())
    }

    pub fn add_namespace(&self, name: &str, annotations: Value) {
        let uid = uid_for(name);
        self.put(
            Kind::Namespace,
            "",
            name,
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {
                    "name": name, "uid": uid, "creationTimestamp": "2026-11-01T10:00:00Z",
                    "labels": {"kubernetes.io/metadata.name": name},
                    "annotations": annotations,
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }),
        );
    }

    pub fn add_replicaset(&self, ns: &str, name: &str, deployment: Option<&str>) {
        let owners = deployment
            .map(|d| {
                json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": d, "uid": uid_for(d),
                             "controller": true, "blockOwnerDeletion": true}])
            })
            .unwrap_or(json!([]));
        self.put(
            Kind::ReplicaSet,
            ns,
            name,
            json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": ns, "uid": uid_for(name),
                             "creationTimestamp": "2026-11-01T10:00:00Z",
                             "labels": {"app": name, "pod-template-hash": "7d9f8b6c5"},
                             "annotations": {"deployment.kubernetes.io/revision": "1"},
                             "ownerReferences": owners},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "app", "image": "example/app:1"}]}}},
                "status": {"replicas": 1, "readyReplicas": 1},
            }),
        );
    }

    pub fn add_job(&self, ns: &str, name: &str, cronjob: Option<&str>) {
        let owners = cronjob
            .map(|c| {
                json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": c, "uid": uid_for(c),
                             "controller": true, "blockOwnerDeletion": true}])
            })
            .unwrap_or(json!([]));
        self.put(
            Kind::Job,
            ns,
            name,
            json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "namespace": ns, "uid": uid_for(name),
                             "creationTimestamp": "2026-11-01T10:00:00Z", "ownerReferences": owners},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                                               "containers": [{"name": "job", "image": "example/job:1"}]}}},
                "status": {"active": 1},
            }),
        );
    }

    /// Events the webhook recorded, in order.
    pub fn events(&self) -> Vec<Value> {
        self.world.lock().unwrap().events.clone()
    }

    /// Single-object GETs served (a cache miss in the webhook makes one).
    pub fn gets(&self) -> u64 {
        self.world.lock().unwrap().gets
    }
}

/// A stable, realistic-looking uid for a name.
pub fn uid_for(name: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h as u32,
        (h >> 32) as u16,
        (h >> 48) & 0xfff,
        h & 0xfff,
        h >> 16
    )
}

/// Unix seconds as RFC 3339 (UTC), as the API server writes timestamps.
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A label selector in its string form (`k=v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`,
/// `!k`, comma-separated): what the client sends as `labelSelector`.
#[derive(Clone, Default)]
struct LabelSelector(Vec<Term>);

#[derive(Clone)]
enum Term {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Eq(String, String),
    NotEq(String, String),
    Exists(String),
    DoesNotExist(String),
}

impl LabelSelector {
    fn parse(selector: &str) -> LabelSelector {
        let mut terms = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in selector.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    terms.push(&selector[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        terms.push(&selector[start..]);
        let set = |rest: &str| -> Vec<String> {
            rest.trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .map(|v| v.trim().to_string())
                .collect()
        };
        let term = |t: &str| -> Term {
            let key = |k: &str| k.trim().to_string();
            if let Some((k, rest)) = t.split_once(" notin ") {
                return Term::NotIn(key(k), set(rest));
            }
            if let Some((k, rest)) = t.split_once(" in ") {
                return Term::In(key(k), set(rest));
            }
            if let Some((k, v)) = t.split_once("!=") {
                return Term::NotEq(key(k), key(v));
            }
            if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
                return Term::Eq(key(k), key(v));
            }
            match t.strip_prefix('!') {
                Some(k) => Term::DoesNotExist(key(k)),
                None => Term::Exists(key(t)),
            }
        };
        LabelSelector(
            terms
                .iter()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
                .map(term)
                .collect(),
        )
    }

    fn matches(&self, labels: &Value) -> bool {
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|t| match t {
            Term::In(k, set) => label(k).is_some_and(|v| set.iter().any(|s| s == v)),
            Term::NotIn(k, set) => label(k).is_none_or(|v| !set.iter().any(|s| s == v)),
            Term::Eq(k, v) => label(k) == Some(v),
            Term::NotEq(k, v) => label(k) != Some(v),
            Term::Exists(k) => label(k).is_some(),
            Term::DoesNotExist(k) => label(k).is_none(),
        })
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

/// The client asked for `PartialObjectMetadata(List)`.
fn wants_metadata(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=PartialObjectMetadata"))
}

fn as_metadata(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": obj["metadata"]})
}

fn shape(obj: &Value, meta: bool) -> Value {
    if meta {
        as_metadata(obj)
    } else {
        obj.clone()
    }
}

async fn list(
    kind: Kind,
    shared: Shared,
    headers: HeaderMap,
    q: BTreeMap<String, String>,
) -> Response {
    let meta = wants_metadata(&headers);
    let (world, tx) = shared;
    let selector = q.get("labelSelector").cloned().unwrap_or_default();
    let watching = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    *world
        .lock()
        .unwrap()
        .requests
        .entry((kind, if watching { "watch" } else { "list" }))
        .or_default() += 1;
    let chosen = {
        let selector = LabelSelector::parse(&selector);
        move |obj: &Value| selector.matches(&obj["metadata"]["labels"])
    };
    if watching {
        let from: u64 = q
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let rx = tx.subscribe();
        let backlog: Vec<(u64, Value)> = world
            .lock()
            .unwrap()
            .history
            .iter()
            .filter(|(k, rv, e)| *k == kind && *rv > from && chosen(&e["object"]))
            .map(|(_, rv, e)| (*rv, e.clone()))
            .collect();
        let last = backlog.last().map(|(rv, _)| *rv).unwrap_or(from);
        let reshape = move |e: Value| {
            let mut e = e;
            e["object"] = shape(&e["object"], meta);
            Bytes::from(format!("{}\n", e))
        };
        let live = tokio_stream_from(rx)
            .filter(move |(k, rv, e)| {
                std::future::ready(*k == kind && *rv > last && chosen(&e["object"]))
            })
            .map(move |(_, _, e)| e);
        let stream = futures_util::stream::iter(backlog.into_iter().map(|(_, e)| e))
            .chain(live)
            .map(move |e| Ok::<_, Infallible>(reshape(e)));
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    let w = world.lock().unwrap();
    // Pages as the API server gives them: `limit` items, then a `continue` token (here the
    // namespace and name of the next item) while there are more. Each page costs its own
    // length, not the list's.
    let from = q
        .get("continue")
        .and_then(|c| c.split_once('/'))
        .map(|(ns, name)| (ns.to_string(), name.to_string()))
        .unwrap_or_default();
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let mut all = w
        .objects
        .range((kind, from.0, from.1)..)
        .take_while(|((k, _, _), _)| *k == kind)
        .filter(|(_, o)| chosen(o));
    let items: Vec<Value> = all
        .by_ref()
        .take(limit)
        .map(|(_, o)| shape(o, meta))
        .collect();
    let continue_token = all.next().map(|((_, ns, name), _)| format!("{ns}/{name}"));
    let (api_version, list_kind) = if meta {
        (
            "meta.k8s.io/v1".to_string(),
            "PartialObjectMetadataList".to_string(),
        )
    } else {
        (
            kind.api_version().to_string(),
            format!("{}List", kind.kind()),
        )
    };
    axum::Json(json!({"apiVersion": api_version, "kind": list_kind,
                      "metadata": {"resourceVersion": w.rv.to_string(), "continue": continue_token},
                      "items": items}))
    .into_response()
}

fn tokio_stream_from(
    rx: broadcast::Receiver<(Kind, u64, Value)>,
) -> impl futures_util::Stream<Item = (Kind, u64, Value)> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(item) => return Some((item, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

fn get_one(kind: Kind, shared: &Shared, headers: &HeaderMap, ns: &str, name: &str) -> Response {
    let mut w = shared.0.lock().unwrap();
    w.gets += 1;
    *w.requests.entry((kind, "get")).or_default() += 1;
    match w.objects.get(&(kind, ns.to_string(), name.to_string())) {
        Some(o) => axum::Json(shape(o, wants_metadata(headers))).into_response(),
        None => status(
            404,
            "NotFound",
            &format!("{}s {name:?} not found", kind.kind().to_lowercase()),
        ),
    }
}

async fn list_namespaces(
    State(s): State<Shared>,
    h: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    list(Kind::Namespace, s, h, q).await
}
async fn list_replicasets(
    State(s): State<Shared>,
    h: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    list(Kind::ReplicaSet, s, h, q).await
}
async fn list_jobs(
    State(s): State<Shared>,
    h: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    list(Kind::Job, s, h, q).await
}
async fn list_pods(
    State(s): State<Shared>,
    h: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    list(Kind::Pod, s, h, q).await
}
async fn get_pod(
    State(s): State<Shared>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    get_one(Kind::Pod, &s, &h, &ns, &name)
}
/// `pods/eviction`: refused with 429 while `refuse_evictions` lasts, else the pod is deleted.
async fn evict_pod(State(s): State<Shared>, Path((ns, name)): Path<(String, String)>) -> Response {
    let (world, tx) = s;
    let mut w = world.lock().unwrap();
    let key = (Kind::Pod, ns.clone(), name.clone());
    let who = format!("{ns}/{name}");
    if w.refuse_evictions > 0 {
        w.refuse_evictions -= 1;
        w.evictions.push((who, 429));
        return status(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        );
    }
    let Some(mut obj) = w.objects.remove(&key) else {
        w.evictions.push((who, 404));
        return status(404, "NotFound", &format!("pods {name:?} not found"));
    };
    w.evictions.push((who, 201));
    w.rv += 1;
    let rv = w.rv;
    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
    let event = json!({"type": "DELETED", "object": obj});
    w.history.push((Kind::Pod, rv, event.clone()));
    let _ = tx.send((Kind::Pod, rv, event));
    (
        StatusCode::CREATED,
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201})),
    )
        .into_response()
}

fn lease_status(code: u16, reason: &str, name: &str) -> Response {
    status(
        code,
        reason,
        &format!("leases.coordination.k8s.io {name:?}: {reason}"),
    )
}

async fn get_lease(State(s): State<Shared>, Path((ns, name)): Path<(String, String)>) -> Response {
    let w = s.0.lock().unwrap();
    match w.leases.get(&(ns, name.clone())) {
        Some((lease, _)) => axum::Json(lease.clone()).into_response(),
        None => lease_status(404, "NotFound", &name),
    }
}

async fn create_lease(State(s): State<Shared>, Path(ns): Path<String>, body: Bytes) -> Response {
    let Ok(mut lease) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    let name = lease["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut w = s.0.lock().unwrap();
    let key = (ns.clone(), name.clone());
    if w.leases.contains_key(&key) {
        return lease_status(409, "AlreadyExists", &name);
    }
    w.rv += 1;
    lease["apiVersion"] = json!("coordination.k8s.io/v1");
    lease["kind"] = json!("Lease");
    lease["metadata"]["namespace"] = json!(ns);
    lease["metadata"]["uid"] = json!(uid_for(&format!("lease/{name}")));
    lease["metadata"]["resourceVersion"] = json!(w.rv.to_string());
    if !lease["spec"].is_object() {
        lease["spec"] = json!({});
    }
    w.leases.insert(key, (lease.clone(), BTreeMap::new()));
    (StatusCode::CREATED, axum::Json(lease)).into_response()
}

/// A Lease PATCH with server-side apply's ownership rule, which lease managers rely on: an
/// apply (`application/apply-patch+yaml`) that changes a spec field another field manager
/// owns is a 409 Conflict; a merge or strategic patch sets fields (null removes them) and
/// takes their ownership.
async fn patch_lease(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    let apply = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/apply-patch"));
    let manager = q.get("fieldManager").cloned().unwrap_or_default();
    let force = q.get("force").is_some_and(|f| f == "true");
    let mut w = s.0.lock().unwrap();
    w.rv += 1;
    let rv = w.rv;
    let Some((lease, owners)) = w.leases.get_mut(&(ns, name.clone())) else {
        return lease_status(404, "NotFound", &name);
    };
    let fields = patch["spec"].as_object().cloned().unwrap_or_default();
    if apply && !force {
        for (field, value) in &fields {
            let owner = owners.get(field);
            if owner.is_some_and(|o| *o != manager) && lease["spec"][field] != *value {
                return lease_status(409, "Conflict", &name);
            }
        }
    }
    for (field, value) in fields {
        if value.is_null() {
            if let Some(spec) = lease["spec"].as_object_mut() {
                spec.remove(&field);
            }
            owners.remove(&field);
        } else {
            lease["spec"][&field] = value;
            owners.insert(field, manager.clone());
        }
    }
    lease["metadata"]["resourceVersion"] = json!(rv.to_string());
    axum::Json(lease.clone()).into_response()
}

async fn get_namespace(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    get_one(Kind::Namespace, &s, &h, "", &name)
}
async fn get_replicaset(
    State(s): State<Shared>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    get_one(Kind::ReplicaSet, &s, &h, &ns, &name)
}
async fn get_job(
    State(s): State<Shared>,
    h: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    get_one(Kind::Job, &s, &h, &ns, &name)
}

async fn create_event(State(s): State<Shared>, Path(_ns): Path<String>, body: Bytes) -> Response {
    let Ok(ev) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    s.0.lock().unwrap().events.push(ev.clone());
    (StatusCode::CREATED, axum::Json(ev)).into_response()
}

async fn patch_event(
    State(s): State<Shared>,
    Path((_ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut w = s.0.lock().unwrap();
    match w
        .events
        .iter_mut()
        .find(|e| e["metadata"]["name"] == json!(name))
    {
        Some(e) => {
            if let (Some(dst), Some(src)) = (e.as_object_mut(), patch.as_object()) {
                for (k, v) in src {
                    dst.insert(k.clone(), v.clone());
                }
            }
            axum::Json(e.clone()).into_response()
        }
        None => status(404, "NotFound", "event not found"),
    }
}
