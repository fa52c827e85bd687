//! The legacy runner API, for integrations written against the older runner protocol:
//! `POST /runners/create`, `GET /runners/get_status`, `GET /runners/get_details` (each also
//! with a `.json` suffix), the key given as the `api_key` parameter. Runs are the same runs as
//! `/v1`'s: created through the same validation and accept sequence, readable either way.
//!
//! - [`body`]: a form or JSON body.
//! - [`answers`]: a run in the old protocol's words and units.

pub mod answers;
pub mod body;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{Data, Json, Query};
use apistos::api_operation;
use coderun_schema::legacy::{LegacyCreate, LegacyDetails, LegacyQuery, LegacyStatus};
use coderun_schema::run::{Run, RunRequest};

use crate::auth::Tenant;
use crate::error::ApiError;
use crate::routes::{own_run, read_run};
use crate::{accept, auth, State};

use self::answers::{details_of, status_of};
use self::body::FormOrJson;

/// Seconds a `longpoll` waits when `longpoll_timeout` is not given.
const DEFAULT_LONGPOLL_SECS: u64 = 10;

/// The tenant of an `api_key` parameter, its request counted against its rate as `/v1`'s are.
async fn tenant_of_key(state: &State, api_key: &str) -> Result<Arc<Tenant>, ApiError> {
    let tenant = state
        .tenants
        .find(api_key)
        .cloned()
        .ok_or(ApiError::Unauthorized)?;
    auth::admit_tenant(state, &tenant).await?;
    Ok(tenant)
}

/// How long a create waits: nothing without `longpoll`, else `longpoll_timeout` seconds
/// (default 10), cut to the gateway's longest wait.
fn longpoll_wait(state: &State, body: &LegacyCreate) -> Result<Option<Duration>, ApiError> {
    if !matches!(body.longpoll.as_deref(), Some("true" | "1")) {
        return Ok(None);
    }
    let seconds = match body.longpoll_timeout.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LONGPOLL_SECS as f64,
        Some(text) => text
            .parse::<f64>()
            .ok()
            .filter(|secs| *secs >= 0.0)
            .ok_or_else(|| {
                ApiError::invalid_field("longpoll_timeout", "must be a number of seconds")
            })?,
    };
    let ms = (seconds.ceil() * 1000.0).min(state.config.runs.max_wait_ms as f64) as u64;
    state.wait_duration(Some(ms), "longpoll_timeout").map(Some)
}

/// The run a `get_*` query names, if the key's tenant owns it.
async fn run_of(state: &State, query: &LegacyQuery) -> Result<Run, ApiError> {
    let tenant = tenant_of_key(state, &query.api_key).await?;
    Ok(own_run(read_run(state, &query.id).await?, &tenant.id)?.run)
}

/// Create a run (legacy runner API)
///
/// Form or JSON: `source_code`, `language`, `input`, `longpoll`, `longpoll_timeout` (seconds),
/// `api_key`. Answers `{id, status, error}`; with `longpoll=true`, once the run has finished
/// or the timeout passed.
#[tracing::instrument(skip_all, fields(language = %body.0.language))]
#[api_operation(
    tag = "legacy",
    operation_id = "legacy_create",
    error_code = 400,
    error_code = 401,
    error_code = 413,
    error_code = 422,
    error_code = 429,
    error_code = 503
)]
pub async fn create(
    http: actix_web::HttpRequest,
    state: Data<State>,
    body: FormOrJson<LegacyCreate>,
) -> Result<Json<LegacyStatus>, ApiError> {
    let body = body.0;
    let tenant = tenant_of_key(&state, &body.api_key).await?;
    let wait_for = longpoll_wait(&state, &body)?;
    let request = RunRequest {
        language: body.language,
        source: Some(body.source_code),
        stdin: body.input.unwrap_or_default(),
        ..Default::default()
    };
    let job = accept::job_for(&state, &tenant, &request).await?;
    let trace = crate::routes::incoming_trace(&http);
    let reply = accept::accept(&state, &tenant, job, None, wait_for, trace).await?;
    Ok(Json(status_of(&reply.0)))
}

/// A run's status (legacy runner API)
///
/// `{id, status, error}`: `status` is `running` until the run is final, then `completed`.
#[api_operation(
    tag = "legacy",
    operation_id = "legacy_get_status",
    error_code = 400,
    error_code = 401,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn get_status(
    state: Data<State>,
    query: Query<LegacyQuery>,
) -> Result<Json<LegacyStatus>, ApiError> {
    Ok(Json(status_of(&run_of(&state, &query).await?)))
}

/// A run's details (legacy runner API)
///
/// Build and run output, exit codes, times (seconds, as strings with two decimals), memory
/// (bytes), and results (`success`, `failure`, `error`, `timeout`).
#[api_operation(
    tag = "legacy",
    operation_id = "legacy_get_details",
    error_code = 400,
    error_code = 401,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn get_details(
    state: Data<State>,
    query: Query<LegacyQuery>,
) -> Result<Json<LegacyDetails>, ApiError> {
    Ok(Json(details_of(&run_of(&state, &query).await?)))
}
