//! `POST /v1/runs/batch`: up to 100 runs in one request, each validated and accepted on its
//! own through the same sequence as a single run (`accept`), so one bad item refuses only
//! itself. With an `Idempotency-Key`, item `i` uses the key `<key>#<i>`: the same batch sent
//! again answers the same run ids.

use actix_web::web::{Data, Json};
use actix_web::HttpRequest;
use apistos::api_operation;
use coderun_schema::batch::{BatchItem, BatchRequest, BatchResponse, MAX_BATCH_RUNS};
use coderun_schema::run::RunRequest;

use crate::auth::Tenant;
use crate::error::ApiError;
use crate::{accept, auth, idempotency, State};

/// Create runs in a batch
///
/// Up to 100 runs. The answer holds one item per run, in order: `{id}` when it was accepted,
/// `{problem}` when it was refused (the problem a single `POST /v1/runs` would have given).
#[tracing::instrument(skip_all, fields(tenant, runs = body.runs.len()))]
#[api_operation(
    tag = "runs",
    operation_id = "create_runs_batch",
    error_code = 400,
    error_code = 401,
    error_code = 429,
    error_code = 413,
    error_code = 415,
    error_code = 422
)]
pub async fn create_runs_batch(
    request: HttpRequest,
    state: Data<State>,
    body: Json<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let tenant = auth::tenant_of(&request)?;
    tracing::Span::current().record("tenant", tenant.id.as_str());
    if body.runs.is_empty() || body.runs.len() > MAX_BATCH_RUNS {
        return Err(ApiError::invalid_field(
            "runs",
            format!("give 1 to {MAX_BATCH_RUNS} runs"),
        ));
    }
    let key = idempotency::key_of(&request)?;
    let trace = crate::routes::incoming_trace(&request);
    let mut runs = Vec::with_capacity(body.runs.len());
    for (index, item) in body.into_inner().runs.into_iter().enumerate() {
        let item_key = key.as_ref().map(|key| format!("{key}#{index}"));
        let outcome = accept_one(&state, &tenant, index, item, item_key, trace).await;
        runs.push(match outcome {
            Ok(id) => BatchItem {
                id: Some(id),
                problem: None,
            },
            Err(error) => BatchItem {
                id: None,
                problem: Some(error.problem()),
            },
        });
    }
    Ok(Json(BatchResponse { runs }))
}

async fn accept_one(
    state: &Data<State>,
    tenant: &Tenant,
    index: usize,
    item: serde_json::Value,
    key: Option<String>,
    trace: Option<coderun_schema::trace::TraceContext>,
) -> Result<String, ApiError> {
    let request: RunRequest = serde_json::from_value(item).map_err(|error| {
        ApiError::invalid_field(
            format!("runs[{index}]"),
            format!("not a run request: {error}"),
        )
    })?;
    let job = accept::job_for(state, tenant, &request).await?;
    let reply = accept::accept(state, tenant, job, key, None, trace).await?;
    Ok(reply.0.id)
}
