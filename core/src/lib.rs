//! # proxy-injector-core
//!
//! The pure core shared by the offline CLI and the admission webhook: it reads an object as a
//! `serde_json::Value`, decides whether and how to inject it with Linkerd's rules, and answers
//! with an RFC 6902 patch and a report. It does no I/O and reads no clock; this crate's
//! dependencies keep it so (no async runtime, HTTP, TLS or Kubernetes client).
//!
//! - [`config`]: Linkerd's Helm values, defaults and annotation overrides.
//! - [`workload`]: where the pod template is, per kind.
//! - [`decide`]: inject or skip, with Linkerd's reasons.
//! - [`render`]: the containers and volumes injection adds.
//! - [`inject`] / [`uninject`]: the entry points.
//! - [`check`]: the webhook's verdict and lints for each workload of a manifest, offline.
//! - [`manifest`]: splitting YAML streams into documents and writing them back.
//!
//! The behaviour these modules implement is described in `docs/behaviour.md`; where it differs
//! from Linkerd's, `docs/differences.md` says how and why.

pub mod annotations;
pub mod check;
pub mod config;
pub mod decide;
pub mod escaped;
pub mod inject;
pub mod manifest;
pub mod parse;
pub mod patch;
pub mod policy;
pub mod render;
pub mod uninject;
pub mod workload;

/// This build's version, as written into `linkerd.io/created-by`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
