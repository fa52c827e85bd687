//! The gateway's Prometheus metrics (`GET /metrics` on its public listener): requests by
//! route, method and status with their durations, runs accepted by language, and the NATS
//! and Redis errors of its connections. The catalog is `docs/observability.md`.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::HttpResponse;
use apistos::api_operation;
use coderun_bus::Bus;
use coderun_store::RunStore;
use coderun_telemetry::metrics::{labels, render, seconds_family, Labels, SecondsFamily};
use coderun_telemetry::prometheus_client::metrics::counter::Counter;
use coderun_telemetry::prometheus_client::metrics::family::Family;
use coderun_telemetry::prometheus_client::registry::Registry;

use crate::State;

/// What the gateway measures, registered in a registry of its own.
pub struct GatewayMetrics {
    registry: Arc<Registry>,
    /// `coderun_http_requests_total{route, method, status}`.
    requests: Family<Labels, Counter>,
    /// `coderun_http_request_duration_seconds{route, method}`.
    durations: SecondsFamily,
    /// `coderun_runs_accepted_total{language}`.
    accepted: Family<Labels, Counter>,
}

impl GatewayMetrics {
    /// A registry with the gateway's metrics and its connections' error counters.
    pub fn new(bus: &Bus, store: &RunStore) -> Self {
        let mut registry =
            coderun_telemetry::metrics::registry_for("gateway", env!("CARGO_PKG_VERSION"));
        let requests = Family::<Labels, Counter>::default();
        let durations: SecondsFamily = seconds_family();
        let accepted = Family::<Labels, Counter>::default();
        registry.register(
            "coderun_http_requests",
            "HTTP requests answered, by matched route, method and status",
            requests.clone(),
        );
        registry.register(
            "coderun_http_request_duration_seconds",
            "Time to answer an HTTP request (a long-poll's wait included)",
            durations.clone(),
        );
        registry.register(
            "coderun_runs_accepted",
            "Runs stored and queued, by language",
            accepted.clone(),
        );
        coderun_telemetry::metrics::register_connection_errors(
            &mut registry,
            bus.error_counter(),
            store.error_counter(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            durations,
            accepted,
        }
    }

    /// Counts a run stored and queued.
    pub fn run_accepted(&self, language: &str) {
        self.accepted
            .get_or_create(&labels([("language", language)]))
            .inc();
    }

    /// The registry as OpenMetrics text.
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

/// Middleware: counts and times every request by the route pattern it matched, so a path's
/// ids never become label values.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let state = request.app_data::<Data<State>>().cloned();
    let method = method_label(request.method());
    let result = next.call(request).await;
    if let Some(state) = state {
        let (route, status) = match &result {
            Ok(response) => (
                response
                    .request()
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_owned()),
                response.status().as_u16(),
            ),
            Err(error) => (
                "unmatched".to_owned(),
                error.as_response_error().status_code().as_u16(),
            ),
        };
        let metrics = &state.metrics;
        metrics
            .requests
            .get_or_create(&labels([
                ("route", &route),
                ("method", &method),
                ("status", &status.to_string()),
            ]))
            .inc();
        metrics
            .durations
            .get_or_create(&labels([("route", &route), ("method", &method)]))
            .observe(started.elapsed().as_secs_f64());
    }
    result.map(ServiceResponse::map_into_boxed_body)
}

/// The `method` label: the standard methods by name, anything else (a client may send any
/// token as a method) as `other`, so clients cannot add series.
fn method_label(method: &actix_web::http::Method) -> String {
    match method.as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => {
            known.to_owned()
        }
        _ => "other".to_owned(),
    }
}

/// Metrics
///
/// The gateway's Prometheus metrics, as OpenMetrics text.
#[api_operation(tag = "health", operation_id = "metrics")]
pub async fn metrics(state: Data<State>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(coderun_telemetry::metrics::CONTENT_TYPE)
        .body(state.metrics.render())
}
