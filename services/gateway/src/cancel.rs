//! `POST /v1/runs/{id}/cancel`: a run that has not finished is made final as `cancelled` at
//! once, and the executor running it (if any) is told to kill its sandbox.
//!
//! The record is written first, through the store's "terminal is final" update: an executor
//! that picks the run up afterwards finds it final and never starts it, and one that is running
//! it cannot overwrite it with a result. Then `CancelRequested` goes to the executors and a
//! `completed` event (carrying the cancelled run) to anyone waiting. Cancelling a cancelled run
//! answers it again; cancelling a completed one is a 409.

use actix_web::web::{Data, Path};
use actix_web::HttpRequest;
use anyhow::Context as _;
use apistos::api_operation;
use coderun_schema::messages::{CancelRequested, RunEvent, RunEventKind, RunRecord, VERSION};
use coderun_schema::run::{RunStatus, Verdict};
use coderun_schema::trace::TraceContext;
use coderun_store::UpdateOutcome;
use time::OffsetDateTime;
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::routes::{own_run, read_run, RunReply};
use crate::{auth, State};

/// Cancel a run
///
/// A queued run is cancelled at once and never starts; a running one is stopped and its
/// sandbox killed. The answer is the run, `cancelled`. Cancelling it again answers the same;
/// a run that already finished is a 409.
#[tracing::instrument(skip_all, fields(run_id = %path.as_str()))]
#[api_operation(
    tag = "runs",
    operation_id = "cancel_run",
    error_code = 401,
    error_code = 429,
    error_code = 404,
    error_code = 409,
    error_code = 503
)]
pub async fn cancel_run(
    request: HttpRequest,
    state: Data<State>,
    path: Path<String>,
) -> Result<RunReply, ApiError> {
    let tenant = auth::tenant_of(&request)?;
    let run_id = path.into_inner();
    let record = own_run(read_run(&state, &run_id).await?, &tenant.id)?;
    // The cancel is a hop of the run's own trace (exported spans too), not of this request's.
    let span = tracing::info_span!("cancel", run_id = %run_id, trace_id = tracing::field::Empty);
    let trace = coderun_telemetry::trace::join(&span, record.trace());
    cancel_traced(&state, &tenant.id, record, trace)
        .instrument(span)
        .await
}

async fn cancel_traced(
    state: &State,
    tenant: &str,
    record: RunRecord,
    trace: TraceContext,
) -> Result<RunReply, ApiError> {
    let run_id = record.run.id.clone();
    if record.run.status.is_terminal() {
        return already_final(record);
    }
    let mut cancelled = record;
    cancelled.run.status = RunStatus::Cancelled;
    cancelled.run.verdict = Some(Verdict::Cancelled);
    cancelled.run.finished_at = Some(OffsetDateTime::now_utc());
    let (outcome, event) = state
        .store
        .update_and_log(&cancelled, Some(RunEventKind::Completed))
        .await
        .context("failed to cancel the run")
        .map_err(ApiError::Unavailable)?;
    match outcome {
        UpdateOutcome::Updated => {}
        // It finished (or was cancelled) meanwhile: answer what it is now.
        UpdateOutcome::AlreadyTerminal => {
            return already_final(own_run(read_run(state, &run_id).await?, tenant)?)
        }
        UpdateOutcome::Missing => return Err(ApiError::NotFound),
        // Only a claim is refused this way, and a cancel claims nothing.
        UpdateOutcome::HeldByAnotherJob => {
            return Err(ApiError::Unavailable(anyhow::anyhow!(
                "the record refused an unconditional update"
            )))
        }
    }
    tracing::info!("run cancelled");
    announce(state, &cancelled, event, trace).await;
    Ok(RunReply(cancelled.run))
}

fn already_final(record: RunRecord) -> Result<RunReply, ApiError> {
    match record.run.status {
        RunStatus::Cancelled => Ok(RunReply(record.run)),
        _ => Err(ApiError::Conflict(
            "the run has already finished; only a queued or running run can be cancelled"
                .to_owned(),
        )),
    }
}

/// Tells the executors to stop the run, waiters that it ended, and the scheduler that its
/// webhook is due. Both are best effort: the
/// record is already final, and an executor that misses the message runs the program to its
/// end, its result refused by the store.
async fn announce(
    state: &State,
    cancelled: &RunRecord,
    event: Option<RunEvent>,
    trace: TraceContext,
) {
    let run_id = &cancelled.run.id;
    let names = state.bus.names();
    let request = CancelRequested {
        v: VERSION,
        run_id: run_id.clone(),
        at: OffsetDateTime::now_utc(),
    };
    let cancel_subject = names.run_cancel(run_id);
    if let Err(error) = state
        .bus
        .publish_traced(cancel_subject, &request, Some(trace))
        .await
    {
        tracing::warn!(error = %coderun_bus::describe(&error), "failed to ask for the sandbox to be killed");
    }
    let event =
        event.unwrap_or_else(|| RunEvent::with_run(&cancelled.run, RunEventKind::Completed));
    state.bus.publish_run_event(&event, Some(trace)).await;
    if let Some(due) = cancelled.webhook_due() {
        state.bus.announce_webhook(&due, Some(trace)).await;
    }
}
