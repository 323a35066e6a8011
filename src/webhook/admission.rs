//! One admission review: the body within the limits, decoding, the core's decision, and the
//! answer.
//!
//! The review's deadline starts when its headers arrive and covers the body's arrival, the
//! wait for a large review's decoding turn, decoding and the decision (`limits.rs`). A body that cannot be
//! taken is answered with its own status (413, 408, 503, 400). Faults of ours or of the
//! cluster after decoding (no config, caches not synced, a failed or rate-limited lookup, the
//! deadline) are answered as `--on-error` says: HTTP 500 so that the webhook's
//! `failurePolicy` decides, or `allowed: false` naming the cause. A pod whose own
//! annotations make injection impossible is denied, as Linkerd does, with a message that
//! names the annotation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request as HttpRequest, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kube::core::admission::{AdmissionRequest, AdmissionResponse};
use kube::core::DynamicObject;
use serde_json::Value;

use crate::patch::Patch;

use super::args::OnError;
use super::cache::Caches;
use super::config::ConfigStore;
use super::events::EventSink;
use super::limits::{BodyError, Limits, Received};
use super::metrics::{Metrics, OutcomeLabels};
pub use super::verdict::object_value;
use super::verdict::{self, Context, Fault, Step, Verdict};

/// Everything a review needs, shared by all requests.
pub struct AppState {
    pub config: Arc<ConfigStore>,
    pub caches: Caches,
    pub events: Option<EventSink>,
    pub metrics: Arc<Metrics>,
    /// What the webhook says about itself in every review, shared with the reviews' workers.
    pub context: Arc<Context>,
    pub request_timeout: Duration,
    pub limits: Limits,
    pub on_error: OnError,
}

/// `POST /`.
pub async fn review(State(state): State<Arc<AppState>>, request: HttpRequest) -> Response {
    let start = Instant::now();
    // One deadline for the whole review, from its headers: the body, decoding, the decision.
    let deadline = tokio::time::Instant::from_std(start) + state.request_timeout;
    let (parts, body) = request.into_parts();
    if !is_json(&parts.headers) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    let mut received = match receive(&state, body, deadline).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    if received.bytes.is_empty() {
        return plain(
            StatusCode::BAD_REQUEST,
            "empty body: expected an AdmissionReview",
        );
    }
    if tokio::time::timeout_at(deadline, state.limits.decoding_turn(&mut received))
        .await
        .is_err()
    {
        let message = format!(
            "overloaded: large reviews of {} bytes in all are being decoded \
             (--max-request-bytes) and this one's turn did not come before the review \
             deadline of {:?}",
            state.limits.max_request_bytes, state.request_timeout
        );
        state.metrics.rejected("decoding_queue");
        tracing::warn!(%message, "review refused");
        return plain(StatusCode::SERVICE_UNAVAILABLE, &message);
    }
    // The budgets are held until the answer is built, and by work on the blocking pool that
    // outlives the deadline: decoding and rendering cost memory in proportion to the body.
    let paid = Arc::new(received);
    let body = paid.clone();
    let decoded = tokio::time::timeout_at(
        deadline,
        blocking(&paid, move || decode_request(&body.bytes)),
    )
    .await;
    let decoded = match decoded {
        Ok(Ok(Ok(r))) => r,
        Ok(Ok(Err(message))) => return plain(StatusCode::BAD_REQUEST, &message),
        Ok(Err(e)) => return plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => return deadline_passed(&state, start),
    };
    let name = object_name(&decoded);
    let uid = decoded.req.uid.clone();
    let ns = decoded.req.namespace.clone().unwrap_or_default();
    let base = AdmissionResponse::from(&decoded.req);
    let result = tokio::time::timeout_at(deadline, handle(&state, decoded, &paid)).await;
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    let (response, outcome) = match result {
        Ok(Ok((response, outcome))) => (response, outcome),
        Ok(Err(fault)) => return answer_fault(&state, base, fault, (&ns, &name), start),
        Err(_) => {
            let fault = Fault::Deadline(state.request_timeout);
            return answer_fault(&state, base, fault, (&ns, &name), start);
        }
    };
    drop(paid);
    observe(&state, outcome, elapsed_ms);
    tracing::info!(%uid, namespace = %ns, name = %name, decision = outcome, latency_ms = elapsed_ms, "review");
    json_response(response)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The body, paid for from the buffer budget as it arrives, before the deadline; or the
/// answer saying why not.
async fn receive(
    state: &AppState,
    body: axum::body::Body,
    deadline: tokio::time::Instant,
) -> Result<Received, Response> {
    let refuse = |reason: &'static str, status: StatusCode, message: String| {
        state.metrics.rejected(reason);
        tracing::warn!(reason, %message, "review refused");
        plain(status, &message)
    };
    match tokio::time::timeout_at(deadline, state.limits.receive(body)).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e @ BodyError::TooLarge { .. })) => Err(refuse(
            "body_too_large",
            StatusCode::PAYLOAD_TOO_LARGE,
            e.to_string(),
        )),
        Ok(Err(e @ BodyError::Full { .. })) => Err(refuse(
            "buffer_full",
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        )),
        Ok(Err(e @ BodyError::Read(_))) => Err(refuse(
            "body_unreadable",
            StatusCode::BAD_REQUEST,
            e.to_string(),
        )),
        Err(_) => {
            let message = format!(
                "the request body did not arrive within the review deadline of {:?}",
                state.request_timeout
            );
            Err(refuse("body_timeout", StatusCode::REQUEST_TIMEOUT, message))
        }
    }
}

/// A decoded review: the request's fields, and its object as the API server sent it.
pub struct Decoded {
    /// The request without `object` and `oldObject`.
    pub req: AdmissionRequest<DynamicObject>,
    /// `request.object`, untouched: the patch's paths must match the API server's JSON, and a
    /// typed round trip of a large `managedFields` cost tens of milliseconds.
    pub object: Option<Value>,
}

/// Decodes an AdmissionReview body; the error is the HTTP 400 message.
pub fn decode_request(body: &[u8]) -> Result<Decoded, String> {
    let bad = |e: serde_json::Error| format!("failed to decode admission review request: {e}");
    // One UTF-8 check of the whole body: from bytes, serde_json checks each string on its own,
    // which cost more than the body's one check (a tenth of decoding, by callgrind).
    let text = std::str::from_utf8(body)
        .map_err(|e| format!("failed to decode admission review request: {e}"))?;
    let review: wire::Review = serde_json::from_str(text).map_err(bad)?;
    let Some(request) = review.request else {
        return Err("invalid admission review request: no request".into());
    };
    if request.uid.is_empty() {
        return Err("invalid admission review request: no request.uid".into());
    }
    let types = kube::core::TypeMeta {
        api_version: review.api_version,
        kind: review.kind,
    };
    let decoded = request.into_decoded(types);
    if decoded.object.as_ref().is_some_and(|o| !o.is_object()) {
        return Err(
            "failed to decode admission review request: request.object is not an object".into(),
        );
    }
    Ok(decoded)
}

/// The review as the API server sends it, read in one pass: `request.object` straight into
/// the value the core reads, `oldObject` skipped without being built, the other fields into
/// kube's own types. (Reading the whole review into JSON values first, then converting the
/// rest, built every value twice; kube's `AdmissionReview` would type the object.)
mod wire {
    use kube::core::admission::{AdmissionRequest, Operation};
    use kube::core::{DynamicObject, GroupVersionKind, GroupVersionResource, TypeMeta};
    use serde::de::IgnoredAny;
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Review {
        pub api_version: String,
        pub kind: String,
        #[serde(default)]
        pub request: Option<Request>,
    }

    /// kube's `AdmissionRequest`, field for field, with the object as a JSON value.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Request {
        pub uid: String,
        kind: GroupVersionKind,
        resource: GroupVersionResource,
        #[serde(default)]
        sub_resource: Option<String>,
        #[serde(default)]
        request_kind: Option<GroupVersionKind>,
        #[serde(default)]
        request_resource: Option<GroupVersionResource>,
        #[serde(default)]
        request_sub_resource: Option<String>,
        #[serde(default)]
        name: String,
        #[serde(default)]
        namespace: Option<String>,
        operation: Operation,
        user_info: k8s_openapi::api::authentication::v1::UserInfo,
        #[serde(default)]
        pub object: Option<Value>,
        #[serde(default, rename = "oldObject")]
        _old_object: Option<IgnoredAny>,
        #[serde(default)]
        dry_run: bool,
        #[serde(default)]
        options: Option<k8s_openapi::apimachinery::pkg::runtime::RawExtension>,
    }

    impl Request {
        pub fn into_decoded(self, types: TypeMeta) -> super::Decoded {
            let req = AdmissionRequest::<DynamicObject> {
                types,
                uid: self.uid,
                kind: self.kind,
                resource: self.resource,
                sub_resource: self.sub_resource,
                request_kind: self.request_kind,
                request_resource: self.request_resource,
                request_sub_resource: self.request_sub_resource,
                name: self.name,
                namespace: self.namespace,
                operation: self.operation,
                user_info: self.user_info,
                object: None,
                old_object: None,
                dry_run: self.dry_run,
                options: self.options,
            };
            super::Decoded {
                req,
                object: self.object.filter(|o| !o.is_null()),
            }
        }
    }
}

/// The response with `patch` as its JSON patch. kube-rs sets the patch type only through
/// `with_patch`, which serialises a copy of every operation; the text comes from
/// [`Patch::to_json`] instead, which writes the containers shared by a config from memory.
pub fn with_patch(
    response: AdmissionResponse,
    patch: &Patch,
) -> Result<AdmissionResponse, kube::core::admission::SerializePatchError> {
    let mut response = response.with_patch(json_patch::Patch(Vec::new()))?;
    response.patch = Some(patch.to_json());
    Ok(response)
}

/// The review as JSON, with the patch as base64 text: the wire form of Go's `[]byte`, as
/// every webhook sends it (kube-rs would write a list of byte values). The patch is taken out
/// before the rest is serialised (as a list of numbers it cost more than the whole injection)
/// and its text is added last to `response`, which is added last to the review: base64 needs
/// no escaping, and scanning ~14 KB of it for characters to escape cost a tenth of a review.
pub fn encode_review(mut response: AdmissionResponse) -> Result<Vec<u8>, serde_json::Error> {
    use base64::Engine;
    let patch = response.patch.take();
    let mut review = serde_json::to_value(response.into_review())?;
    let Some(bytes) = patch else {
        return serde_json::to_vec(&review);
    };
    let answer = review
        .as_object_mut()
        .and_then(|m| m.shift_remove("response"))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(bytes.len() * 4 / 3 + 1024);
    serde_json::to_writer(&mut out, &review)?;
    reopen(&mut out, "response");
    serde_json::to_writer(&mut out, &answer)?;
    reopen(&mut out, "patch");
    out.push(b'"');
    let start = out.len();
    out.resize(
        start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
        0,
    );
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(&bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.extend_from_slice(b"\"}}");
    Ok(out)
}

/// Reopens the object whose JSON text ends `out` to write one more entry, `key`, into it:
/// its value and the closing brace are the caller's to write.
fn reopen(out: &mut Vec<u8>, key: &str) {
    out.pop();
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// HTTP 500 for a review that ran out of time before its uid was known: nothing else can
/// answer it.
fn deadline_passed(state: &AppState, start: Instant) -> Response {
    let fault = Fault::Deadline(state.request_timeout);
    tracing::error!(error = %fault, "review failed before it was decoded");
    state.metrics.fault(fault.reason());
    observe(state, "error", start.elapsed().as_secs_f64() * 1000.0);
    plain(StatusCode::INTERNAL_SERVER_ERROR, &fault.to_string())
}

/// A fault after decoding, answered as `--on-error` says.
fn answer_fault(
    state: &AppState,
    base: AdmissionResponse,
    fault: Fault,
    (ns, name): (&str, &str),
    start: Instant,
) -> Response {
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    let on_error = format!("{:?}", state.on_error).to_lowercase();
    tracing::error!(uid = %base.uid, namespace = %ns, name = %name, error = %fault, on_error, latency_ms = elapsed_ms, "review failed");
    state.metrics.fault(fault.reason());
    observe(state, "error", elapsed_ms);
    match state.on_error {
        OnError::Defer => plain(StatusCode::INTERNAL_SERVER_ERROR, &fault.to_string()),
        OnError::Deny => json_response(base.deny(format!(
            "linkerd proxy injection could not be decided, so the pod is refused \
             (proxy-injector --on-error=deny): {fault}"
        ))),
    }
}

fn observe(state: &AppState, outcome: &'static str, elapsed_ms: f64) {
    state
        .metrics
        .latency
        .get_or_create(&OutcomeLabels { outcome })
        .observe(elapsed_ms);
}

fn json_response(response: AdmissionResponse) -> Response {
    match encode_review(response) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("encoding the response: {e}"),
        ),
    }
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// Runs `f` on the blocking pool when the body is heavy (it has its decoding turn,
/// `limits.rs`), inline otherwise.
async fn blocking<T: Send + 'static>(
    paid: &Arc<Received>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Fault> {
    if !paid.is_heavy() {
        return Ok(f());
    }
    // The budgets go with the work: a review past its deadline stops waiting for it, but the
    // work runs on until it ends, and keeps its memory until then.
    let paid = paid.clone();
    tokio::task::spawn_blocking(move || {
        let _held = paid;
        f()
    })
    .await
    .map_err(|e| Fault::Join(e.to_string()))
}

fn object_name(d: &Decoded) -> String {
    let meta = d.object.as_ref().and_then(|o| o.get("metadata"));
    let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
    field("name")
        .or_else(|| field("generateName"))
        .unwrap_or(&d.req.name)
        .to_string()
}

/// The decision on the review (`verdict.rs`), carried out: the core's half on the blocking
/// pool for a large review, then the log, the metrics and the Event.
async fn handle(
    state: &AppState,
    decoded: Decoded,
    paid: &Arc<Received>,
) -> Result<(AdmissionResponse, &'static str), Fault> {
    let uid = decoded.req.uid.clone();
    let verdict = match verdict::prepare(decoded, state.config.current(), &state.caches).await? {
        Step::Decided(v) => *v,
        Step::Core(prepared) => {
            let ctx = state.context.clone();
            blocking(paid, move || verdict::judge(&prepared, &ctx)).await??
        }
    };
    let Verdict {
        response,
        outcome,
        request,
        response_labels,
        event,
        warnings,
    } = verdict;
    if let Some(labels) = request {
        for w in &warnings {
            tracing::warn!(%uid, namespace = %labels.namespace, "{w}");
        }
        state.metrics.requests.get_or_create(&labels).inc();
    }
    if let Some(labels) = response_labels {
        state.metrics.responses.get_or_create(&labels).inc();
    }
    if let (Some(events), Some((reference, event))) = (state.events.as_ref(), event) {
        events.record(reference, event);
    }
    Ok((response, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The review as serde writes it, the patch put in as a base64 string value.
    fn by_value(mut response: AdmissionResponse) -> Vec<u8> {
        use base64::Engine;
        let patch = response.patch.take();
        let mut review = serde_json::to_value(response.into_review()).unwrap();
        if let (Some(bytes), Some(Value::Object(r))) = (patch, review.get_mut("response")) {
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            r.insert("patch".into(), Value::String(text));
        }
        serde_json::to_vec(&review).unwrap()
    }

    /// The review read the way kube reads it: whole into JSON values, then typed.
    fn by_kube(body: &[u8]) -> Option<(Value, Option<Value>)> {
        use kube::core::admission::AdmissionReview;
        let mut review: Value = serde_json::from_slice(body).ok()?;
        let mut object = None;
        if let Some(Value::Object(request)) = review.get_mut("request") {
            object = request.remove("object").filter(|o| !o.is_null());
            request.remove("oldObject");
        }
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(review).ok()?;
        let req: AdmissionRequest<DynamicObject> = review.try_into().ok()?;
        let mut typed = serde_json::to_value(&req).ok()?;
        // `types` is not serialised with the request.
        typed["_types"] = serde_json::to_value(&req.types).ok()?;
        Some((typed, object))
    }

    #[test]
    fn one_pass_decoding_reads_what_kube_reads() {
        let full = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "subResource": "ephemeralcontainers",
                "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                "requestSubResource": "status",
                "name": "p", "namespace": "shop", "operation": "UPDATE",
                "userInfo": {"username": "u", "uid": "1", "groups": ["a", "b"], "extra": {"k": ["v"]}},
                "object": {"kind": "Pod", "metadata": {"name": "p"}},
                "oldObject": {"kind": "Pod", "metadata": {"name": "old"}},
                "dryRun": true,
                "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"},
                "unknown": [1, {"x": null}]
            }
        });
        let mut cases = vec![full.clone()];
        for (field, value) in [
            ("object", Value::Null),
            ("oldObject", Value::Null),
            ("options", Value::Null),
            ("object", serde_json::json!([1])),
            ("operation", serde_json::json!("EXPLODE")),
            ("uid", serde_json::json!(7)),
            ("userInfo", serde_json::json!("x")),
        ] {
            let mut c = full.clone();
            c["request"][field] = value;
            cases.push(c);
        }
        for field in [
            "subResource",
            "namespace",
            "name",
            "dryRun",
            "object",
            "uid",
            "kind",
            "userInfo",
        ] {
            let mut c = full.clone();
            c["request"].as_object_mut().unwrap().remove(field);
            cases.push(c);
        }
        for top in ["apiVersion", "kind", "request"] {
            let mut c = full.clone();
            c.as_object_mut().unwrap().remove(top);
            cases.push(c);
        }
        for case in cases {
            let body = serde_json::to_vec(&case).unwrap();
            let ours = decode_request(&body).map(|d| {
                let mut typed = serde_json::to_value(&d.req).unwrap();
                typed["_types"] = serde_json::to_value(&d.req.types).unwrap();
                (typed, d.object)
            });
            let kube = by_kube(&body)
                .filter(|(t, o)| t["uid"] != "" && o.as_ref().is_none_or(Value::is_object));
            assert_eq!(ours.ok(), kube, "{case}");
        }
    }

    #[test]
    fn the_patch_is_written_as_serde_would() {
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u\"1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "resource": {"group": "", "version": "v1", "resource": "pods"},
                        "operation": "CREATE", "userInfo": {}, "object": {"kind": "Pod"}}
        });
        let decoded = decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
        let base = || AdmissionResponse::from(&decoded.req);
        let mut warned = base();
        warned.warnings = Some(vec!["a \"warning\"".into()]);
        let mut with = with_patch(warned.clone(), &Default::default()).unwrap();
        with.patch = Some((0..=255u8).cycle().take(1000).collect());
        for response in [base(), base().deny("no"), warned, with] {
            let expected = by_value(response.clone());
            assert_eq!(
                String::from_utf8(encode_review(response).unwrap()).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }
}
