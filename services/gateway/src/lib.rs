//! coderun-gateway: the public HTTP API.
//!
//! - [`config`]: the layered configuration, tenants included.
//! - [`auth`]: API keys (stored hashed) → tenants.
//! - [`validate`]: a request → a resolved job, or a 413/422 naming every bad field;
//!   [`budget`]: the per-request output and wall-time budgets.
//! - [`wait`]: waiting for a run to finish without missing its completion; [`events`]: a
//!   run's events as Server-Sent Events, resumable, replayed from its log in Redis.
//! - [`idempotency`]: `Idempotency-Key`, one run per key and tenant even for concurrent requests.
//! - [`accept`]: a valid run stored and queued (or the run its idempotency key names);
//!   [`batch`]: many runs in one request, each accepted or refused on its own;
//!   [`cancel`]: a run made final as `cancelled` and its sandbox stopped; [`listing`]: the
//!   tenant's runs, a page at a time.
//! - [`legacy`]: the older runner API (`/runners/*`) over the same runs.
//! - [`docs_page`]: the `/docs` page's assets, embedded (no CDN); [`openapi_extras`]: what
//!   the generated spec cannot say by itself (auth schemes, headers, links), with
//!   [`openapi_examples`].
//! - [`metrics`]: requests, accepted runs and connection errors, on `GET /metrics`.
//! - [`routes`]: the handlers; [`error`]: every error as problem+json, in one place.
//! - [`Application`]: binds its own listener (port 0 in tests) and serves until shutdown.
//!
//! Architecture invariant: the gateway never talks to Docker and never decides scheduling; it
//! validates, records (Redis), queues (NATS) and reports.

pub mod accept;
pub mod auth;
pub mod batch;
pub mod budget;
pub mod cancel;
pub mod config;
pub mod docs_page;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod legacy;
pub mod listing;
pub mod metrics;
pub mod openapi_examples;
pub mod openapi_extras;
pub mod routes;
pub mod validate;
pub mod wait;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::web::{self as actix, Data};
use actix_web::{App, HttpRequest, HttpServer};
use anyhow::Context as _;
use apistos::app::{BuildConfig, OpenApiWrapper};
use apistos::info::Info;
use apistos::spec::Spec;
use apistos::web::{get, post, resource, scope};
use apistos::SwaggerUIConfig;
use coderun_bus::Bus;
use coderun_schema::catalog::Catalog;
use coderun_store::RunStore;
use tokio_util::sync::CancellationToken;

use crate::auth::Tenants;
use crate::config::Config;
use crate::error::ApiError;
use coderun_bus::executors::ExecutorView;

/// What every handler shares.
pub struct State {
    pub config: Config,
    pub catalog: Catalog,
    pub tenants: Tenants,
    pub bus: Bus,
    pub store: RunStore,
    pub executors: ExecutorView,
    pub metrics: metrics::GatewayMetrics,
}

impl State {
    /// A client's wait, checked against the configured maximum.
    pub fn wait_duration(
        &self,
        requested_ms: Option<u64>,
        field: &str,
    ) -> Result<Duration, ApiError> {
        let runs = &self.config.runs;
        let wait_ms = requested_ms.unwrap_or(runs.default_wait_ms);
        if wait_ms > runs.max_wait_ms {
            return Err(ApiError::invalid_field(
                field,
                format!("must be at most {}", runs.max_wait_ms),
            ));
        }
        Ok(Duration::from_millis(wait_ms))
    }
}

/// The gateway, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    state: Data<State>,
    workers: usize,
    stop_following: CancellationToken,
}

fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let api_error = match &error {
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("send the body as application/json".to_owned())
        }
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::TooLarge(format!("the body is larger than {limit} bytes"))
        }
        JsonPayloadError::Deserialize(inner) if inner.is_data() => ApiError::Invalid {
            detail: inner.to_string(),
            errors: Vec::new(),
        },
        JsonPayloadError::Deserialize(inner) => {
            ApiError::BadRequest(format!("the body is not valid JSON: {inner}"))
        }
        other => ApiError::BadRequest(other.to_string()),
    };
    api_error.into()
}

fn query_error(error: QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {error}")).into()
}

async fn no_route() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NoRoute)
}

/// The OpenAPI document's header.
fn spec() -> Spec {
    Spec {
        info: Info {
            title: "coderun".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: Some(
                "Runs untrusted source code in fresh, locked-down containers. Authenticate with `Authorization: Bearer <key>` or `X-Api-Key: <key>`. Errors are application/problem+json (RFC 9457).".to_owned(),
            ),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The whole route table, documented by apistos.
pub fn app(
    state: Data<State>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let max_body = state.config.http.max_body_bytes;
    App::new()
        .document(spec())
        .app_data(state)
        .app_data(
            actix::JsonConfig::default()
                .limit(max_body)
                .error_handler(json_error),
        )
        .app_data(actix::QueryConfig::default().error_handler(query_error))
        .app_data(actix::PayloadConfig::new(max_body))
        .service(
            scope("/v1")
                .wrap(actix_web::middleware::from_fn(auth::require_key))
                .service(
                    resource("/runs")
                        .route(post().to(routes::create_run))
                        .route(get().to(listing::list_runs)),
                )
                .service(resource("/runs/batch").route(post().to(batch::create_runs_batch)))
                .service(resource("/runs/{id}").route(get().to(routes::get_run)))
                .service(resource("/runs/{id}/events").route(get().to(events::run_events)))
                .service(resource("/runs/{id}/cancel").route(post().to(cancel::cancel_run)))
                .service(resource("/languages").route(get().to(routes::list_languages))),
        )
        .service(resource("/runners/create").route(post().to(legacy::create)))
        .service(resource("/runners/create.json").route(post().to(legacy::create)))
        .service(resource("/runners/get_status").route(get().to(legacy::get_status)))
        .service(resource("/runners/get_status.json").route(get().to(legacy::get_status)))
        .service(resource("/runners/get_details").route(get().to(legacy::get_details)))
        .service(resource("/runners/get_details.json").route(get().to(legacy::get_details)))
        .service(
            resource(&format!("{}/swagger-ui-bundle.js", docs_page::ASSETS))
                .route(get().to(docs_page::bundle_js)),
        )
        .service(
            resource(&format!("{}/swagger-ui.css", docs_page::ASSETS))
                .route(get().to(docs_page::stylesheet)),
        )
        .service(resource("/healthz").route(get().to(routes::healthz)))
        .service(resource("/readyz").route(get().to(routes::readyz)))
        .service(resource("/metrics").route(get().to(metrics::metrics)))
        .default_service(actix::to(no_route))
        .wrap(actix_web::middleware::from_fn(
            openapi_extras::decorate_spec,
        ))
        .wrap(actix_web::middleware::from_fn(metrics::observe))
        .build_with(
            "/openapi.json",
            BuildConfig::default()
                .with(SwaggerUIConfig::new(&"/docs").with_html(docs_page::INDEX_HTML.to_owned())),
        )
}

impl Application {
    /// Connects to NATS and Redis, starts following executor heartbeats, binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let bus = Bus::connect_with(&config.bus, "coderun-gateway").await?;
        bus.ensure_submit_stream().await?;
        bus.ensure_webhooks_stream().await?;
        let store = RunStore::connect_with(&config.store, bus.names().clone())
            .await
            .context("failed to connect to Redis")?;
        store.ping().await.context("Redis does not answer")?;
        let stop_following = CancellationToken::new();
        let executors = ExecutorView::follow(
            &bus,
            Duration::from_secs(config.runs.heartbeat_ttl_secs),
            stop_following.clone(),
        )
        .await?;
        let listener = TcpListener::bind((config.http.host.as_str(), config.http.port))
            .with_context(|| format!("failed to bind {}:{}", config.http.host, config.http.port))?;
        let workers = if config.http.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            config.http.workers
        };
        let state = Data::new(State {
            metrics: metrics::GatewayMetrics::new(&bus, &store),
            tenants: Tenants::new(&config.tenants),
            catalog: Catalog::builtin(),
            config,
            bus,
            store,
            executors,
        });
        Ok(Self {
            listener,
            state,
            workers,
            stop_following,
        })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown`, then stops accepting and finishes requests in flight.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let port = self.port();
        let state = self.state.clone();
        let server = HttpServer::new(move || app(state.clone()))
            .workers(self.workers)
            .disable_signals()
            .shutdown_timeout(30)
            .listen(self.listener)?
            .run();
        let handle = server.handle();
        tracing::info!(port, "gateway serving");
        let stop = tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        server.await?;
        self.stop_following.cancel();
        stop.abort();
        tracing::info!("gateway stopped");
        Ok(())
    }
}
