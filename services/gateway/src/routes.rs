//! The HTTP handlers. Each one authenticates, does its work through the shared [`State`], and
//! answers a schema type or an [`ApiError`].

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::http::{header, StatusCode};
use actix_web::web::{Data, Json, Path, Query};
use actix_web::{HttpRequest, HttpResponse, Responder};
use anyhow::Context as _;
use apistos::paths::{MediaType, Response, Responses};
use apistos::reference_or::ReferenceOr;
use apistos::{api_operation, ApiComponent};
use coderun_schema::messages::RunRecord;
use coderun_schema::problem::FieldError;
use coderun_schema::run::{
    CreateRunQuery, GetRunQuery, Health, LanguageInfo, LanguageList, Run, RunRequest,
};

use crate::error::ApiError;
use crate::{accept, auth, idempotency, wait, State};

/// A run, answered 200 when it is terminal and 202 while it is not.
pub struct RunReply(pub Run);

impl Responder for RunReply {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse<BoxBody> {
        let status = if self.0.status.is_terminal() {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        HttpResponse::build(status)
            .insert_header((header::LOCATION, format!("/v1/runs/{}", self.0.id)))
            .json(&self.0)
    }
}

impl ApiComponent for RunReply {
    fn child_schemas() -> Vec<(String, ReferenceOr<apistos::Schema>)> {
        let mut schemas = <Run as ApiComponent>::child_schemas();
        // apistos adds an error body's own schema (Problem) but not the schemas it refers
        // to; every operation answering a run can answer a problem, so FieldError goes here.
        schemas.extend(<FieldError as ApiComponent>::schema());
        schemas
    }

    fn schema() -> Option<(String, ReferenceOr<apistos::Schema>)> {
        <Run as ApiComponent>::schema()
    }

    fn responses(_content_type: Option<String>) -> Option<Responses> {
        let (name, _) = Self::schema()?;
        let response = |description: &str| {
            ReferenceOr::Object(Response {
                description: description.to_owned(),
                content: BTreeMap::from([(
                    "application/json".to_owned(),
                    MediaType {
                        schema: Some(ReferenceOr::Reference {
                            _ref: format!("#/components/schemas/{name}"),
                        }),
                        ..Default::default()
                    },
                )]),
                ..Default::default()
            })
        };
        Some(Responses {
            responses: BTreeMap::from([
                ("200".to_owned(), response("The run, finished")),
                (
                    "202".to_owned(),
                    response("The run, not finished yet (see Location)"),
                ),
            ])
            .into_iter()
            .collect(),
            ..Default::default()
        })
    }
}

/// Create a run
///
/// Validates the request against the language catalog and the tenant's limits, stores the
/// run and queues it. With `wait=true`, answers 200 with the finished run, or 202 with its
/// current state if it did not finish in `timeout_ms`.
#[tracing::instrument(skip_all, fields(tenant, run_id, language = %body.language))]
#[api_operation(
    tag = "runs",
    operation_id = "create_run",
    error_code = 400,
    error_code = 401,
    error_code = 429,
    error_code = 413,
    error_code = 415,
    error_code = 422,
    error_code = 503
)]
pub async fn create_run(
    request: HttpRequest,
    state: Data<State>,
    query: Query<CreateRunQuery>,
    body: Json<RunRequest>,
) -> Result<RunReply, ApiError> {
    let tenant = auth::tenant_of(&request)?;
    tracing::Span::current().record("tenant", tenant.id.as_str());
    // Checked with or without `wait`: a timeout over the maximum is a 422 either way.
    let timeout = state.wait_duration(query.timeout_ms, "timeout_ms")?;
    let wait_for = query.wait.then_some(timeout);
    let job = accept::job_for(&state, &tenant, &body).await?;

    let idempotency_key = idempotency::key_of(&request)?;
    accept::accept(
        &state,
        &tenant,
        job,
        idempotency_key,
        wait_for,
        incoming_trace(&request),
    )
    .await
}

async fn answer_existing(
    state: &State,
    tenant: &str,
    run_id: &str,
    wait_for: Option<Duration>,
) -> Result<RunReply, ApiError> {
    let record = own_run(read_run(state, run_id).await?, tenant)?;
    answer_record(state, record, wait_for).await
}

/// Answers a stored run: as it stands, or once it is terminal when `wait_for` is given.
pub(crate) async fn answer_record(
    state: &State,
    record: RunRecord,
    wait_for: Option<Duration>,
) -> Result<RunReply, ApiError> {
    match wait_for {
        Some(timeout) if !record.run.status.is_terminal() => {
            let events = wait::subscribe(&state.bus, &record.run.id)
                .await
                .map_err(ApiError::Unavailable)?;
            wait_reply(state, events, timeout, record.run).await
        }
        _ => Ok(RunReply(record.run)),
    }
}

/// Waits for the run to finish and answers its latest state (`current` if it vanished).
pub(crate) async fn wait_reply(
    state: &State,
    events: async_nats::Subscriber,
    timeout: Duration,
    current: Run,
) -> Result<RunReply, ApiError> {
    let latest = wait::until_terminal(&state.store, events, &current.id, timeout)
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(RunReply(latest.unwrap_or(current)))
}

/// A run record as stored, if it is.
pub(crate) async fn read_run(state: &State, run_id: &str) -> Result<Option<RunRecord>, ApiError> {
    state
        .store
        .get(run_id)
        .await
        .context("failed to read the run")
        .map_err(ApiError::Unavailable)
}

/// The record if it is the tenant's: another tenant's run is indistinguishable from a missing
/// one.
pub(crate) fn own_run(record: Option<RunRecord>, tenant: &str) -> Result<RunRecord, ApiError> {
    match record {
        Some(record) if record.tenant == tenant => Ok(record),
        _ => Err(ApiError::NotFound),
    }
}

/// Get a run
///
/// The run as it stands. With `wait_ms`, answers as soon as the run is terminal, or after
/// `wait_ms` milliseconds.
#[tracing::instrument(skip_all, fields(run_id = %path.as_str()))]
#[api_operation(
    tag = "runs",
    operation_id = "get_run",
    error_code = 400,
    error_code = 401,
    error_code = 429,
    error_code = 404,
    error_code = 422,
    error_code = 503
)]
pub async fn get_run(
    request: HttpRequest,
    state: Data<State>,
    path: Path<String>,
    query: Query<GetRunQuery>,
) -> Result<RunReply, ApiError> {
    let tenant = auth::tenant_of(&request)?;
    let run_id = path.into_inner();
    let wait_for = match query.wait_ms {
        Some(wait_ms) if wait_ms > 0 => Some(state.wait_duration(Some(wait_ms), "wait_ms")?),
        _ => None,
    };
    answer_existing(&state, &tenant.id, &run_id, wait_for).await
}

/// List languages
///
/// The catalog languages that at least one live executor serves, with the version read from
/// the image that executor runs.
#[api_operation(
    tag = "languages",
    operation_id = "list_languages",
    error_code = 401,
    error_code = 429
)]
pub async fn list_languages(
    request: HttpRequest,
    state: Data<State>,
) -> Result<Json<LanguageList>, ApiError> {
    auth::tenant_of(&request)?;
    let served = state.executors.served_languages();
    let languages = state
        .catalog
        .languages
        .iter()
        .filter_map(|spec| {
            let version = served.get(&spec.id)?;
            Some(LanguageInfo {
                id: spec.id.clone(),
                name: spec.name.clone(),
                aliases: spec.aliases.clone(),
                version: version.clone(),
                source_file: spec.source_file.clone(),
                compiled: spec.compile.is_some(),
            })
        })
        .collect();
    Ok(Json(LanguageList { languages }))
}

/// The `traceparent` a client sent, if valid: its run joins the client's trace.
pub fn incoming_trace(request: &HttpRequest) -> Option<coderun_schema::trace::TraceContext> {
    request
        .headers()
        .get(coderun_schema::trace::TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(coderun_schema::trace::TraceContext::parse)
}

/// Liveness
///
/// 200 while the process serves HTTP.
#[api_operation(tag = "health", operation_id = "healthz")]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        checks: BTreeMap::new(),
    })
}

/// Readiness
///
/// 200 when NATS and Redis are reachable, 503 otherwise.
#[api_operation(tag = "health", operation_id = "readyz")]
pub async fn readyz(state: Data<State>) -> HttpResponse {
    let mut checks = BTreeMap::new();
    let nats_ok = state.bus.is_connected();
    checks.insert(
        "nats".to_owned(),
        if nats_ok { "ok" } else { "disconnected" }.to_owned(),
    );
    let redis_ok = match state.store.ping().await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "readiness: redis unreachable");
            false
        }
    };
    checks.insert(
        "redis".to_owned(),
        if redis_ok { "ok" } else { "unreachable" }.to_owned(),
    );
    let ready = nats_ok && redis_ok;
    let body = Health {
        status: if ready { "ok" } else { "unavailable" }.to_owned(),
        checks,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(body)
}
