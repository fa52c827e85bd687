//! The global `tracing` subscriber of a service binary: logs on stderr, readable on a terminal,
//! one JSON object per line with `CODERUN_LOG_FORMAT=json` (production), `RUST_LOG` filtering
//! (default `info`), and the spans exported over OTLP/HTTP when an endpoint is configured with
//! the standard OpenTelemetry variables:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): the collector,
//!   e.g. `http://127.0.0.1:4318`; unset or empty: nothing is exported;
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` (or `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`): `http/protobuf`
//!   (default) or `http/json`; anything else stops the export (logged);
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

/// The OTLP protocol asked for (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, then
/// `OTEL_EXPORTER_OTLP_PROTOCOL`): `http/protobuf` when unset; anything but the two HTTP
/// protocols is refused, not silently replaced.
pub fn otlp_protocol(
    traces: Option<&str>,
    general: Option<&str>,
) -> Result<opentelemetry_otlp::Protocol, String> {
    match traces.or(general).map(str::trim) {
        None | Some("") | Some("http/protobuf") => Ok(opentelemetry_otlp::Protocol::HttpBinary),
        Some("http/json") => Ok(opentelemetry_otlp::Protocol::HttpJson),
        Some(other) => Err(format!(
            "OTLP protocol `{other}` is not supported: use http/protobuf or http/json"
        )),
    }
}

/// A tracer provider exporting to the configured OTLP endpoint in batches.
pub fn otlp_provider(service: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::WithExportConfig as _;
    let protocol = otlp_protocol(
        variable("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").as_deref(),
        variable("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref(),
    )?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_otlp::Protocol;

    #[test]
    fn the_protocol_is_protobuf_unless_json_is_asked_for_and_others_are_refused() {
        assert_eq!(otlp_protocol(None, None), Ok(Protocol::HttpBinary));
        assert_eq!(
            otlp_protocol(None, Some("http/json")),
            Ok(Protocol::HttpJson)
        );
        assert_eq!(
            otlp_protocol(Some("http/protobuf"), Some("http/json")),
            Ok(Protocol::HttpBinary),
            "the traces variable wins"
        );
        assert!(otlp_protocol(None, Some("grpc")).is_err());
    }
}
