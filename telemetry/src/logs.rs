//! The global `tracing` subscriber of a service binary: logs on stderr, readable on a terminal,
//! one JSON object per line with `CODERUN_LOG_FORMAT=json` (production), `RUST_LOG` filtering
//! (default `info`), and the spans exported over OTLP/HTTP when an endpoint is configured with
//! the standard OpenTelemetry variables:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): the collector,
//!   e.g. `http://127.0.0.1:4318`; unset or empty: nothing is exported;
//! - `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (default) or `http/json`;
//! - `OTEL_SERVICE_NAME`: overrides the service's own name (`coderun-gateway`, …).
//!
//! Only binaries call [`init`]; the tests install subscribers of their own.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// Whether spans are exported: [`crate::trace::join`] then takes ids from the exported spans.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports its spans over OTLP.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Flushes and stops the span export when dropped (at the end of `main`).
#[must_use = "spans are flushed when the guard is dropped"]
pub struct TracingGuard(Option<SdkTracerProvider>);

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(error) = provider.shutdown() {
                eprintln!("failed to flush the exported spans: {error}");
            }
        }
    }
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// Whether an OTLP endpoint is configured.
pub fn otlp_requested() -> bool {
    variable("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
}

/// A tracer provider exporting to the configured OTLP endpoint in batches.
pub fn otlp_provider(service: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|error| format!("cannot export spans over OTLP: {error}"))?;
    let name = variable("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_owned());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(name)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Installs the global subscriber for the binary `service` (e.g. `coderun-gateway`).
pub fn init(service: &str) -> TracingGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CODERUN_LOG_FORMAT").as_deref() == Ok("json");
    // Logs go to stderr: stdout is what a command prints (`coderun-prober --once`'s table).
    let format = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    let (export, provider, problem) = if otlp_requested() {
        match otlp_provider(service) {
            Ok(provider) => {
                let layer = tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("coderun"))
                    .boxed();
                EXPORTING.store(true, Ordering::Relaxed);
                (Some(layer), Some(provider), None)
            }
            Err(problem) => (None, None, Some(problem)),
        }
    } else {
        (None, None, None)
    };
    tracing_subscriber::registry()
        .with(format)
        .with(export)
        .with(filter)
        .init();
    if let Some(problem) = problem {
        tracing::error!(%problem, "spans are not exported");
    }
    TracingGuard(provider)
}

/// Installs a subscriber that exports spans through `provider` and writes nothing: for tests
/// that collect the exported spans. Returns false if a global subscriber is already set.
pub fn init_exporting_only(provider: &SdkTracerProvider) -> bool {
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("coderun"));
    let installed = tracing_subscriber::registry()
        .with(layer)
        .with(EnvFilter::new("info"))
        .try_init()
        .is_ok();
    if installed {
        EXPORTING.store(true, Ordering::Relaxed);
    }
    installed
}
