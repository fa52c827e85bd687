//! The scheduler against a real NATS (`CODERUN_TEST_NATS_URL`, loopback by default), under a
//! prefix of the test's own: each accepted run reaches its language's pool queue once, as
//! submitted; a submission that cannot be read is dropped, not retried for ever.

use std::time::Duration;

use coderun_bus::{async_nats, Bus, ConsumerSettings};
use coderun_schema::messages::{JobDispatched, JobSubmitted};
use coderun_schema::names::Names;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

fn nats_url() -> String {
    std::env::var("CODERUN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// The committed fixture of a submission, with a run id and language of the test's choosing.
fn submission(run_id: &str, language: &str) -> JobSubmitted {
    let fixture = include_str!("../../../schema/tests/fixtures/job_submitted.v1.json");
    let mut submitted: JobSubmitted = serde_json::from_str(fixture).expect("the fixture reads");
    submitted.run_id = run_id.to_owned();
    submitted.job.language = language.to_owned();
    submitted
}

struct Scheduler {
    bus: Bus,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Scheduler {
    let prefix = format!("test_{}", unique_suffix());
    let mut config: coderun_scheduler::config::Config =
        toml::from_str(coderun_scheduler::config::DEFAULTS).expect("defaults");
    config.bus.url = nats_url();
    config.bus.prefix = prefix.clone();
    config.submit.ack_wait_secs = 2;
    config.ops.port = 0;
    let names = Names::new(prefix).expect("a valid prefix");
    let bus = Bus::connect(&nats_url(), names, "dispatch-test")
        .await
        .expect("NATS is up (scripts/test.sh starts it)");
    let scheduler = coderun_scheduler::Application::build(config)
        .await
        .expect("the scheduler starts");
    let stop = CancellationToken::new();
    let task = tokio::spawn(scheduler.run(stop.clone()));
    Scheduler { bus, stop, task }
}

fn unique_suffix() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_nanos()
    )
}

impl Scheduler {
    /// The jobs of one pool that arrive within `window` after the last one.
    async fn jobs_of(&self, pool: &str, window: Duration) -> Vec<JobDispatched> {
        let consumer = self
            .bus
            .pool_consumer(
                pool,
                ConsumerSettings {
                    ack_wait: Duration::from_secs(30),
                    max_deliver: 1,
                },
            )
            .await
            .expect("a pool consumer");
        let mut jobs = Vec::new();
        loop {
            let mut batch = consumer
                .fetch()
                .max_messages(10)
                .expires(window)
                .messages()
                .await
                .expect("fetch");
            let before = jobs.len();
            while let Some(message) = batch.next().await {
                let message = message.expect("a message");
                jobs.push(coderun_bus::decode(&message.payload).expect("a JobDispatched"));
                message.ack().await.expect("ack");
            }
            if jobs.len() == before {
                return jobs;
            }
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("joins").expect("stops cleanly");
        let jetstream = self.bus.jetstream();
        let _ = jetstream
            .delete_stream(self.bus.names().submit_stream())
            .await;
        let _ = jetstream
            .delete_stream(self.bus.names().jobs_stream())
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_submission_reaches_its_languages_pool_once_and_as_submitted() {
    let scheduler = start().await;
    let names = scheduler.bus.names().clone();
    let python = submission("run_python_1", "python");
    let c = submission("run_c_1", "c");
    for submitted in [&python, &c, &python] {
        // The third is a client's retry of the first: same run id, one job.
        scheduler
            .bus
            .publish_durable(names.runs_submit(), submitted, &submitted.run_id)
            .await
            .expect("submitted");
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
    let scheduler = start().await;
    let names = scheduler.bus.names().clone();
    let client: &async_nats::Client = scheduler.bus.client();
    let jetstream = async_nats::jetstream::new(client.clone());
    jetstream
        .publish(names.runs_submit(), "not a submission".into())
        .await
        .expect("published")
        .await
        .expect("stored");
    let next = submission("run_after_garbage", "python");
    scheduler
        .bus
        .publish_durable(names.runs_submit(), &next, &next.run_id)
        .await
        .expect("submitted");
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
