//! The scheduler against a real NATS and Redis, under a prefix of the test's own, with an
//! executor announced for the languages: each accepted run reaches its language's pool queue
//! once, as submitted; a submission that cannot be read is dropped, not retried for ever.

mod support;

use std::time::Duration;

use coderun_bus::async_nats;
use support::submission;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_submission_reaches_its_languages_pool_once_and_as_submitted() {
    let mut scheduler = support::start(|_| {}).await;
    scheduler.announce_executor("executor-1", &["python", "c"], 4);
    let names = scheduler.bus.names().clone();
    let python = submission("run_python_1", "tenant-a", "python");
    let c = submission("run_c_1", "tenant-a", "c");
    for submitted in [&python, &c, &python] {
        // The third is a client's retry of the first: same run id, one job.
        scheduler.submit(submitted).await;
    }
    // A retry the stream cannot tell apart (a new message id) is still one run in the queue
    // only if the scheduler's own publish is deduplicated by run id.
    scheduler
        .bus
        .publish_durable(names.runs_submit(), &python, "another-message-id")
        .await
        .expect("submitted again");

    let jobs = scheduler.jobs_of("python", Duration::from_secs(2)).await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let job = &jobs[0];
    assert_eq!(job.run_id, python.run_id);
    assert_eq!(job.pool, "python");
    assert_eq!(job.tenant, python.tenant);
    assert_eq!(job.job, python.job, "the job travels unchanged");
    assert_eq!(job.submitted_at, python.submitted_at);
    assert!(job.dispatched_at >= job.submitted_at);
    let c_jobs = scheduler.jobs_of("c", Duration::from_millis(500)).await;
    assert_eq!(
        c_jobs
            .iter()
            .map(|job| job.run_id.as_str())
            .collect::<Vec<_>>(),
        ["run_c_1"]
    );
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_submission_is_dropped_and_the_next_one_still_goes_through() {
    let mut scheduler = support::start(|_| {}).await;
    scheduler.announce_executor("executor-1", &["python"], 4);
    let names = scheduler.bus.names().clone();
    let client: &async_nats::Client = scheduler.bus.client();
    let jetstream = async_nats::jetstream::new(client.clone());
    jetstream
        .publish(names.runs_submit(), "not a submission".into())
        .await
        .expect("published")
        .await
        .expect("stored");
    let next = submission("run_after_garbage", "tenant-a", "python");
    scheduler.submit(&next).await;
    let jobs = scheduler.jobs_of("python", Duration::from_secs(2)).await;
    assert_eq!(
        jobs.iter()
            .map(|job| job.run_id.as_str())
            .collect::<Vec<_>>(),
        ["run_after_garbage"]
    );
    // Nothing waits to come back: the garbage was terminated, not left to be redelivered.
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = jetstream
        .get_consumer_from_stream(names.scheduler_consumer(), names.submit_stream())
        .await
        .expect("the scheduler's consumer");
    let info = consumer.info().await.expect("consumer info");
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0), "{info:?}");
    scheduler.stop().await;
}
