//! Making a run final from the scheduler, when no executor will: `internal_error` with the
//! reason, its `completed` event logged and published, and its webhook announced.

use coderun_bus::Bus;
use coderun_schema::messages::{RunEventKind, RunRecord};
use coderun_schema::run::{RunStatus, Verdict};
use coderun_store::{RunStore, UpdateOutcome};
use time::OffsetDateTime;

/// Ends `record`'s run as `internal_error` for `reason` (words a client may read), unless it
/// is final already; true when this call made it final.
pub async fn end_as_internal_error(
    bus: &Bus,
    store: &RunStore,
    mut record: RunRecord,
    reason: &str,
) -> anyhow::Result<bool> {
    if record.run.status.is_terminal() {
        return Ok(false);
    }
    record.run.status = RunStatus::Completed;
    record.run.verdict = Some(Verdict::InternalError);
    record.run.error = Some(reason.to_owned());
    record.run.finished_at = Some(OffsetDateTime::now_utc());
    let (outcome, event) = store
        .update_and_log(&record, Some(RunEventKind::Completed))
        .await?;
    if outcome != UpdateOutcome::Updated {
        return Ok(false);
    }
    tracing::warn!(run_id = %record.run.id, reason, "run ended by the scheduler");
    let trace = record.trace();
    if let Some(event) = event {
        bus.publish_run_event(&event, trace).await;
    }
    if let Some(due) = record.webhook_due() {
        bus.announce_webhook(&due, trace).await;
    }
    Ok(true)
}
