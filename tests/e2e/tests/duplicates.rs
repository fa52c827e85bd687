//! A second job of a run (a submission released twice, past the jobs stream's duplicate
//! window) is dropped by the executor that takes it: the run is executed once, with one
//! `running` event, whichever job an executor takes first.

use std::time::Duration;

use coderun_bus::Bus;
use coderun_client::CreateOptions;
use coderun_e2e::{nats_url, redis_url, times_started, wait_until, StackOptions, TestStack};
use coderun_schema::messages::{JobDispatched, VERSION};
use coderun_schema::run::{RunRequest, RunStatus, Verdict};
use coderun_store::RunStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_job_of_a_running_run_is_dropped_not_run() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        isolation: coderun_executor::config::Isolation::Fast,
        ..StackOptions::default()
    })
    .await;
    let client = stack.client();
    let created = client
        .create_run(
            &RunRequest {
                language: "bash".to_owned(),
                source: Some("sleep 2; echo once".to_owned()),
                ..Default::default()
            },
            &CreateOptions::default(),
        )
        .await
        .expect("accepted");
    let id = created.body.id.clone();
    let store = RunStore::connect(&redis_url(), stack.names.clone(), Duration::from_secs(600))
        .await
        .expect("Redis is up");
    let running = wait_until(Duration::from_secs(20), || async {
        store
            .get(&id)
            .await
            .ok()
            .flatten()
            .filter(|record| record.run.status == RunStatus::Running)
    })
    .await
    .expect("the run starts");

    // The same run's job again, as a second release would store it (another message id).
    let submitted = running.submission.expect("the record keeps its submission");
    let duplicate = JobDispatched {
        v: VERSION,
        run_id: submitted.run_id.clone(),
        tenant: submitted.tenant.clone(),
        pool: "bash".to_owned(),
        job: submitted.job.clone(),
        submitted_at: submitted.submitted_at,
        dispatched_at: submitted.submitted_at,
    };
    let bus = Bus::connect(&nats_url(), stack.names.clone(), "duplicates-test")
        .await
        .expect("NATS is up");
    bus.publish_durable(stack.names.jobs("bash"), &duplicate, "a-second-release")
        .await
        .expect("the duplicate is stored");

    let run = client.get_run(&id, Some(30_000)).await.expect("read").body;
    assert_eq!(
        (run.status, run.verdict),
        (RunStatus::Completed, Some(Verdict::Ok))
    );
    assert_eq!(run.stdout(), "once\n");
    // The duplicate was taken and dropped: the jobs stream empties, no second `running`.
    let drained = wait_until(Duration::from_secs(10), || async {
        let jobs = bus.jobs_by_pool().await.ok()?;
        (jobs.get("bash").copied().unwrap_or(0) == 0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "the duplicate job was never taken");
    let runnings = times_started(&client, &id).await;
    assert_eq!(runnings, 1, "the run was started by both jobs");
    stack.stop().await;
}
