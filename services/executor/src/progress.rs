//! Progress of a run while its sandbox works: each stage the agent reports as ended becomes a
//! `compiled` or `test` event, appended to the run's log and published on its subject, in the
//! order the stages ended. Progress is best effort: an event that cannot be stored or sent is
//! skipped (logged); the final result never depends on it.

use std::time::Duration;

use coderun_bus::Bus;
use coderun_schema::agent::AgentStageDone;
use coderun_schema::messages::{Job, RunEvent, RunEventKind};
use coderun_schema::trace::TraceContext;
use coderun_store::RunStore;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::outcome;

/// How long storing one progress event may take before it is skipped.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Forwards stage reports until the sandbox drops its sender (the run is over).
pub async fn forward(
    mut reports: UnboundedReceiver<AgentStageDone>,
    store: &RunStore,
    bus: &Bus,
    job: &Job,
    run_id: &str,
    trace: TraceContext,
) {
    while let Some(done) = reports.recv().await {
        let Some(event) = event_of(&done, job, run_id) else {
            tracing::warn!(test = ?done.test, "the agent reported a stage the job does not have");
            continue;
        };
        let stored = tokio::time::timeout(STORE_TIMEOUT, store.append_event(event)).await;
        match stored {
            Ok(Ok(Some(event))) => bus.publish_run_event(&event, Some(trace)).await,
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "failed to store a progress event"),
            Err(_) => tracing::warn!("storing a progress event timed out"),
        }
    }
}

/// The event for one ended stage: `compiled` for the compile command, `test` for a test.
fn event_of(done: &AgentStageDone, job: &Job, run_id: &str) -> Option<RunEvent> {
    let (kind, stage, test_index) = match done.test {
        None => (
            RunEventKind::Compiled,
            outcome::compile_result(&done.stage_done, job),
            None,
        ),
        Some(test) => {
            let index = test as usize;
            let stage = outcome::test_result(&done.stage_done, job, index)?;
            (RunEventKind::Test, stage, Some(index))
        }
    };
    Some(RunEvent {
        stage: Some(stage),
        test_index,
        ..RunEvent::new(run_id, kind)
    })
}
