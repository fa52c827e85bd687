//! Making a run final from the executor: the result stored and announced once
//! ([`Worker::finish`]), a run given up as `internal_error` when its job cannot be tried again
//! ([`Worker::give_up`]), and the verdict of a sandbox that failed as a whole.

use coderun_schema::messages::{RunEvent, RunEventKind, RunRecord};
use coderun_schema::run::{RunStatus, Verdict};
use coderun_schema::trace::TraceContext;
use coderun_store::UpdateOutcome;
use time::OffsetDateTime;

use crate::sandbox::SandboxError;
use crate::worker::Worker;

impl Worker {
    /// Makes the run final (`completed`, `finished_at` now), stores it (retrying while Redis is
    /// away) and publishes the `completed` event.
    pub(crate) async fn finish(
        &self,
        record: &mut RunRecord,
        trace: TraceContext,
    ) -> anyhow::Result<()> {
        record.run.status = RunStatus::Completed;
        record.run.finished_at = Some(OffsetDateTime::now_utc());
        let (stored, event) = self
            .persist("store the result", || {
                self.store
                    .update_and_log(record, Some(RunEventKind::Completed))
            })
            .await?;
        // An attempt that timed out may still have been applied (its event too): the retry
        // then finds the record final, and it is ours if it ended at this very instant.
        let event = match stored {
            UpdateOutcome::Updated => event,
            UpdateOutcome::AlreadyTerminal => self
                .persist("read the run back", || self.store.get(&record.run.id))
                .await?
                .filter(|stored| stored.run.finished_at == record.run.finished_at)
                .map(|_| RunEvent::with_run(&record.run, RunEventKind::Completed)),
            UpdateOutcome::Missing | UpdateOutcome::HeldByAnotherJob => None,
        };
        if let Some(event) = event {
            tracing::info!(verdict = ?record.run.verdict, "run finished");
            self.metrics.finished(&record.run);
            self.bus.publish_run_event(&event, Some(trace)).await;
            if let Some(due) = record.webhook_due() {
                self.bus.announce_webhook(&due, Some(trace)).await;
            }
        }
        Ok(())
    }

    /// Ends a run whose job cannot be tried again as `internal_error`, unless it is final or
    /// running for another job.
    pub(crate) async fn give_up(
        &self,
        run_id: &str,
        job_sequence: u64,
        trace: TraceContext,
    ) -> anyhow::Result<()> {
        let Some(mut record) = self
            .persist("read the run", || self.store.get(run_id))
            .await?
        else {
            return Ok(());
        };
        // Another job of the run holds it: that one ends it, not this duplicate.
        if record.run.status.is_terminal() || !record.held_by(job_sequence) {
            return Ok(());
        }
        record.run.verdict = Some(Verdict::InternalError);
        record.run.error = Some("the run could not be executed".to_owned());
        self.finish(&mut record, trace).await
    }
}

/// The verdict and the reason given for a sandbox that failed as a whole.
pub(crate) fn failure_verdict(error: &SandboxError) -> (Verdict, &'static str) {
    match error {
        SandboxError::OutOfMemory => (
            Verdict::MemoryLimit,
            "the sandbox ran out of memory as a whole",
        ),
        SandboxError::OutputBudget => (
            Verdict::OutputLimit,
            "the program's output passed the run's budget",
        ),
        SandboxError::Deadline(_) => (
            Verdict::InternalError,
            "the sandbox did not finish within its deadline",
        ),
        SandboxError::Protocol(_) => (
            Verdict::InternalError,
            "the sandbox ended without a valid answer",
        ),
        _ => (Verdict::InternalError, "the sandbox could not be started"),
    }
}
