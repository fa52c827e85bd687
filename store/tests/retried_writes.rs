//! A claim retried after a lost reply (Redis applied the script, then crashed or the connection
//! broke before answering) is applied once: a run's event log shows one `running` for one
//! start, so a client never sees a run that started twice; a new delivery is a new start.

use std::time::Duration;

use coderun_schema::messages::{RunEvent, RunEventKind, RunRecord, VERSION};
use coderun_schema::names::Names;
use coderun_schema::run::{Run, RunStatus};
use coderun_store::{RunStore, UpdateOutcome};
use time::OffsetDateTime;

async fn store(test: &str) -> RunStore {
    let url = std::env::var("CODERUN_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("test_store_{test}_{}", std::process::id());
    let names = Names::new(prefix).expect("a valid prefix");
    RunStore::connect(&url, names, Duration::from_secs(600))
        .await
        .expect("Redis is up (scripts/test.sh starts it)")
}

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
    let queued = RunRecord {
        v: VERSION,
        tenant: "acme".to_owned(),
        run: Run::queued(
            "run_twice".to_owned(),
            "python".to_owned(),
            OffsetDateTime::now_utc(),
        ),
        submission: None,
        traceparent: None,
        job_sequence: None,
    };
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
