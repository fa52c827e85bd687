//! Supervision by the active scheduler: a run whose submission was lost is queued again, a
//! run left `running` by an executor that died ends `internal_error` with a reason, and a job
//! whose deliveries ran out ends its run and leaves the jobs stream.

mod support;

use std::time::Duration;

use coderun_bus::ConsumerSettings;
use coderun_schema::messages::{RunEventKind, RunRecord, VERSION};
use coderun_schema::run::{Run, RunStatus, Verdict};
use futures::StreamExt;
use support::submission;
use time::OffsetDateTime;

fn quick_sweeps(config: &mut coderun_scheduler::config::Config) {
    config.sweeper.every_secs = 1;
    config.sweeper.lost_after_secs = 1;
    config.sweeper.running_margin_secs = 1;
    config.sweeper.stale_job_secs = 1;
}

fn record_of(run_id: &str) -> RunRecord {
    let submitted = submission(run_id, "tenant-a", "bash");
    RunRecord {
        v: VERSION,
        tenant: submitted.tenant.clone(),
        run: Run::queued(
            run_id.to_owned(),
            "bash".to_owned(),
            OffsetDateTime::now_utc(),
        ),
        submission: Some(submitted),
        traceparent: None,
        job_sequence: None,
    }
}

/// The run once final, within 10 s.
async fn final_run(scheduler: &support::Scheduler, run_id: &str) -> Run {
    for _ in 0..200 {
        let record = scheduler.store.get(run_id).await.expect("Redis answers");
        if let Some(record) = record.filter(|record| record.run.status.is_terminal()) {
            return record.run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{run_id} is not final within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_submission_was_lost_is_queued_again_and_released_once() {
    let mut scheduler = support::start(quick_sweeps).await;
    scheduler.announce_executor("executor-1", &["bash"], 2);
    // Stored as the gateway stores it, but its submission never reaches NATS.
    let record = record_of("run_lost_submission");
    assert!(scheduler.store.create(&record).await.expect("stored"));
    let jobs = scheduler.jobs_of("bash", Duration::from_secs(5)).await;
    let ids: Vec<&str> = jobs.iter().map(|job| job.run_id.as_str()).collect();
    assert_eq!(ids, ["run_lost_submission"]);
    assert_eq!(jobs[0].job, record.submission.expect("a submission").job);
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_left_running_by_a_dead_executor_ends_internal_error_with_a_reason() {
    let scheduler = support::start(quick_sweeps).await;
    let mut record = record_of("run_left_running");
    assert!(scheduler.store.create(&record).await.expect("stored"));
    // Marked running by an executor an hour ago, which then died on its last delivery.
    record.run.status = RunStatus::Running;
    record.run.started_at = Some(OffsetDateTime::now_utc() - Duration::from_secs(3600));
    scheduler
        .store
        .update_and_log(&record, Some(RunEventKind::Running))
        .await
        .expect("marked running");
    let run = final_run(&scheduler, "run_left_running").await;
    assert_eq!(
        (run.status, run.verdict),
        (RunStatus::Completed, Some(Verdict::InternalError))
    );
    let reason = run.error.expect("a reason");
    assert!(reason.contains("executor"), "{reason}");
    assert!(run.finished_at.is_some());
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_deliveries_ran_out_ends_its_run_and_leaves_the_stream() {
    let mut scheduler = support::start(|_| {}).await;
    // The executors' consumer: one delivery, and a second's wait for its acknowledgement.
    let consumer = scheduler
        .bus
        .pool_consumer(
            "bash",
            ConsumerSettings {
                ack_wait: Duration::from_secs(1),
                max_deliver: 1,
            },
        )
        .await
        .expect("a pool consumer");
    scheduler.announce_executor("executor-1", &["bash"], 2);
    scheduler
        .submit(&submission("run_out_of_deliveries", "tenant-a", "bash"))
        .await;
    // The executor takes the job and dies: it never acknowledges it.
    let (job, message) = support::next_job(&consumer).await;
    assert_eq!(job.run_id, "run_out_of_deliveries");
    drop(message);
    // The other executors keep asking for work: JetStream looks at redelivering (and finds
    // the deliveries spent) when a pull is waiting.
    let pulling = tokio::spawn(async move {
        loop {
            if let Ok(mut batch) = consumer
                .fetch()
                .max_messages(1)
                .expires(Duration::from_millis(500))
                .messages()
                .await
            {
                if let Some(Ok(message)) = batch.next().await {
                    panic!(
                        "a job delivered beyond its deliveries: {:?}",
                        message.info()
                    );
                }
            }
        }
    });

    let run = final_run(&scheduler, "run_out_of_deliveries").await;
    pulling.abort();
    assert_eq!(run.verdict, Some(Verdict::InternalError));
    let reason = run.error.expect("a reason");
    assert!(reason.contains("attempts"), "{reason}");
    let mut left = u64::MAX;
    for _ in 0..100 {
        left = scheduler
            .bus
            .jobs_by_pool()
            .await
            .expect("the jobs stream reads")
            .get("bash")
            .copied()
            .unwrap_or(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "the job holds the pool's room");
    scheduler.stop().await;
}
