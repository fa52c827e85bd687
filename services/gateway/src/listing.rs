//! `GET /v1/runs`: the tenant's recent runs, newest first, a page at a time (cursor
//! pagination over the store's per-tenant index, `coderun_store::RunStore::list`).

use actix_web::web::{Data, Json, Query};
use actix_web::HttpRequest;
use anyhow::Context as _;
use apistos::api_operation;
use coderun_schema::run::{ListRunsQuery, RunList};

use crate::error::ApiError;
use crate::{auth, State};

/// Runs per page when the request does not say.
const DEFAULT_LIMIT: u32 = 20;
/// The most runs one page may hold.
const MAX_LIMIT: u32 = 100;

/// List runs
///
/// The tenant's runs that have not expired, newest first. Pass a page's `next_cursor` as
/// `cursor` for the next, older page; the last page has none.
#[tracing::instrument(skip_all, fields(tenant))]
#[api_operation(
    tag = "runs",
    operation_id = "list_runs",
    error_code = 400,
    error_code = 401,
    error_code = 429,
    error_code = 422,
    error_code = 503
)]
pub async fn list_runs(
    request: HttpRequest,
    state: Data<State>,
    query: Query<ListRunsQuery>,
) -> Result<Json<RunList>, ApiError> {
    let tenant = auth::tenant_of(&request)?;
    tracing::Span::current().record("tenant", tenant.id.as_str());
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let cursor = query.cursor.as_deref();
    if let Some(cursor) = cursor {
        if !is_run_id(cursor) {
            return Err(ApiError::invalid_field(
                "cursor",
                "must be the `next_cursor` of a previous page",
            ));
        }
    }
    let page = state
        .store
        .list(&tenant.id, cursor, limit as usize)
        .await
        .context("failed to list the runs")
        .map_err(ApiError::Unavailable)?;
    Ok(Json(RunList {
        runs: page.records.into_iter().map(|record| record.run).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `run_` and a ULID: 26 characters of Crockford's base32.
fn is_run_id(text: &str) -> bool {
    text.strip_prefix("run_")
        .is_some_and(|ulid| ulid.len() == 26 && ulid.parse::<ulid::Ulid>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_a_run_id() {
        assert!(is_run_id(&format!("run_{}", ulid::Ulid::new())));
        for bad in [
            "",
            "run_",
            "run_123",
            "01JDZ8W8N6P4Q2R3S4T5V6W7X8",
            "run_01JDZ8W8N6P4Q2R3S4T5V6W7X!",
        ] {
            assert!(!is_run_id(bad), "{bad}");
        }
    }
}
