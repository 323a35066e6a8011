//! # proxy-injector
//!
//! The two front-ends over the pure core (`core/`, the `proxy-injector-core` crate):
//!
//! - [`cli`]: offline `inject`, `uninject` and `check` on YAML from stdin, files, directories
//!   or URLs;
//! - [`webhook`]: the mutating admission server, its caches, metrics and Events.
//!
//! They do the I/O; the core decides and renders. The core's modules are re-exported under
//! their own names so that the front-ends, the tests and the benchmarks name one thing one way.

pub use proxy_injector_core::{
    annotations, check, config, decide, escaped, inject, manifest, parse, patch, policy, render,
    uninject, workload, VERSION,
};

pub mod cli;
pub mod webhook;
