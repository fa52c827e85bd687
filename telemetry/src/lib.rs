//! What every coderun service exposes about itself, so each one exposes it the same way.
//!
//! - [`metrics`]: rendering a service's Prometheus registry, the shared bucket layouts, and
//!   `coderun_build_info`.
//! - [`process`]: the process's own memory, CPU and open files, in every registry.
//! - [`ops`]: the operations listener of the services that serve no HTTP API themselves
//!   (scheduler, executor, prober): `GET /metrics`, `/healthz`, `/readyz`.
//! - [`trace`]: making a service's span one hop of a run's trace (the W3C context in
//!   `coderun_schema::trace`), with the exported span's ids when spans are exported.
//! - [`logs`]: the global subscriber of a binary: readable or JSON logs, and the optional OTLP
//!   export of its spans.
//!
//! Architecture invariant: this crate knows how to expose and name telemetry, not what any
//! service measures; each service owns its metrics (its `metrics` module) and registers them
//! in a registry of its own, so services sharing one process (the tests) never mix figures.

pub mod logs;
pub mod metrics;
pub mod ops;
pub mod process;
pub mod trace;

pub use prometheus_client;
