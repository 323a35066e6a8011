//! # proxy-injector
//!
//! A drop-in, Linkerd-compatible proxy injector. The library is the pure core shared by the
//! offline CLI and the admission webhook: it reads an object as a `serde_json::Value`, decides
//! whether and how to inject it with Linkerd's rules, and answers with an RFC 6902 patch and a
//! report. It does no I/O and reads no clock.
//!
//! - [`config`]: Linkerd's Helm values, defaults and annotation overrides.
//! - [`workload`]: where the pod template is, per kind.
//! - [`decide`]: inject or skip, with Linkerd's reasons.
//! - [`render`]: the containers and volumes injection adds.
//! - [`inject`] / [`uninject`]: the entry points.
//! - [`check`]: the webhook's verdict and lints for each workload of a manifest, offline.
//! - [`manifest`]: splitting YAML streams into documents and writing them back.
//!
//! The front-ends: [`cli`] (offline `inject`/`uninject`) and [`webhook`] (the admission
//! server); they do the I/O.

pub mod annotations;
pub mod check;
pub mod cli;
pub mod config;
pub mod decide;
pub mod inject;
pub mod manifest;
pub mod parse;
pub mod patch;
pub mod render;
pub mod uninject;
pub mod webhook;
pub mod workload;

/// This build's version, as written into `linkerd.io/created-by`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
