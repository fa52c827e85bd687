//! A claim retried after a lost reply (Redis applied the script, then crashed or the connection
//! broke before answering) is applied once: a run's event log shows one `running` for one
//! start, so a client never sees a run that started twice; a new delivery is a new start.

use std::time::Duration;

use coderun_schema::messages::{RunEvent, RunEventKind, RunRecord};
use coderun_schema::run::RunStatus;
use coderun_store::{RunStore, UpdateOutcome};
use time::OffsetDateTime;

mod support;

use support::{record, store};

fn running(queued: &RunRecord, sequence: u64, started_at: OffsetDateTime) -> RunRecord {
    let mut record = queued.clone();
    record.run.status = RunStatus::Running;
    record.run.started_at = Some(started_at);
    record.job_sequence = Some(sequence);
    record
}

async fn kinds(store: &RunStore, id: &str) -> Vec<(RunEventKind, Option<usize>)> {
    store
        .events_after(id, 0)
        .await
        .expect("events")
        .into_iter()
        .map(|event| (event.kind, event.test_index))
        .collect()
}

#[tokio::test]
async fn a_claim_written_twice_logs_one_start_and_a_new_delivery_logs_another() {
    let store = store("claim_twice").await;
    let queued = record("run_twice");
    assert!(store.create(&queued).await.expect("create"));
    let started = OffsetDateTime::now_utc();
    let first = store
        .claim_for_job(&running(&queued, 7, started))
        .await
        .expect("claim");
    assert_eq!(first.0, UpdateOutcome::Updated);
    let first_seq = first.1.and_then(|event| event.seq);
    // The executor did not hear back and writes the same claim again.
    let retried = store
        .claim_for_job(&running(&queued, 7, started))
        .await
        .expect("claim");
    assert_eq!(
        retried.0,
        UpdateOutcome::Updated,
        "the retry is told it holds the run"
    );
    assert_eq!(
        retried.1.and_then(|event| event.seq),
        first_seq,
        "the same event"
    );
    assert_eq!(
        kinds(&store, "run_twice").await,
        [(RunEventKind::Queued, None), (RunEventKind::Running, None)]
    );

    let mut test = RunEvent::new("run_twice", RunEventKind::Test);
    test.test_index = Some(0);
    store.append_event(test).await.expect("append");

    // The same job delivered again (its executor died) starts the run again: that is a
    // second start, and the log says so.
    let again = store
        .claim_for_job(&running(&queued, 7, started + Duration::from_secs(40)))
        .await
        .expect("claim");
    assert_eq!(again.0, UpdateOutcome::Updated);
    assert_eq!(
        kinds(&store, "run_twice").await,
        [
            (RunEventKind::Queued, None),
            (RunEventKind::Running, None),
            (RunEventKind::Test, Some(0)),
            (RunEventKind::Running, None),
        ]
    );
}
