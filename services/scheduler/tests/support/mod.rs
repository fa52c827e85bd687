//! A scheduler against the real NATS and Redis (`CODERUN_TEST_NATS_URL`,
//! `CODERUN_TEST_REDIS_URL`, loopback by default), under a prefix of the test's own. The test
//! plays the other services: it stores run records and submits them as the gateway does,
//! announces executors with heartbeats as they do, and takes jobs from the jobs stream.

#![allow(dead_code)] // Each test binary uses part of it.

use std::time::Duration;

use coderun_bus::{Bus, ConsumerSettings};
use coderun_schema::messages::{
    ExecutorHeartbeat, JobDispatched, JobSubmitted, RunRecord, ServedLanguage, VERSION,
};
use coderun_schema::names::Names;
use coderun_schema::run::Run;
use coderun_store::RunStore;
use futures::StreamExt;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

pub fn nats_url() -> String {
    std::env::var("CODERUN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("CODERUN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The committed fixture of a submission, with a run id, tenant and language of the test's
/// choosing.
pub fn submission(run_id: &str, tenant: &str, language: &str) -> JobSubmitted {
    let fixture = include_str!("../../../../schema/tests/fixtures/job_submitted.v1.json");
    let mut submitted: JobSubmitted = serde_json::from_str(fixture).expect("the fixture reads");
    submitted.run_id = run_id.to_owned();
    submitted.tenant = tenant.to_owned();
    submitted.job.language = language.to_owned();
    submitted
}

/// A deployment under a prefix of its own, with an in-process scheduler or none (a test that
/// runs scheduler processes of its own).
pub struct Scheduler {
    pub bus: Bus,
    pub store: RunStore,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    heartbeats: Vec<tokio::task::JoinHandle<()>>,
}

/// A scheduler with the committed defaults, changed by `configure`.
pub async fn start(configure: impl FnOnce(&mut coderun_scheduler::config::Config)) -> Scheduler {
    let mut deployment = without_scheduler().await;
    let mut config: coderun_scheduler::config::Config =
        toml::from_str(coderun_scheduler::config::DEFAULTS).expect("defaults");
    config.bus.url = nats_url();
    config.bus.prefix = deployment.bus.names().prefix().to_owned();
    config.store.url = redis_url();
    config.submit.ack_wait_secs = 2;
    config.ops.port = 0;
    configure(&mut config);
    let scheduler = coderun_scheduler::Application::build(config)
        .await
        .expect("the scheduler starts");
    deployment.task = Some(tokio::spawn(scheduler.run(deployment.stop.clone())));
    deployment
}

/// A prefix of the test's own, connected, with no scheduler.
pub async fn without_scheduler() -> Scheduler {
    let prefix = format!("test_{}", unique_suffix());
    let names = Names::new(prefix).expect("a valid prefix");
    let bus = Bus::connect(&nats_url(), names.clone(), "scheduler-test")
        .await
        .expect("NATS is up (scripts/test.sh starts it)");
    let store = RunStore::connect(&redis_url(), names, Duration::from_secs(600))
        .await
        .expect("Redis is up (scripts/test.sh starts it)");
    Scheduler {
        bus,
        store,
        stop: CancellationToken::new(),
        task: None,
        heartbeats: Vec::new(),
    }
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
    /// Announces an executor serving `languages` with `slots` slots, every 200 ms from now
    /// until the scheduler stops, as an executor does.
    pub fn announce_executor(&mut self, executor_id: &str, languages: &[&str], slots: u32) {
        let heartbeat = ExecutorHeartbeat {
            v: VERSION,
            executor_id: executor_id.to_owned(),
            version: "0.0.0-test".to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            languages: languages
                .iter()
                .map(|id| ServedLanguage {
                    id: (*id).to_owned(),
                    version: "1".to_owned(),
                    image_digest: format!("sha256:{id}"),
                    warm_ready: 1,
                })
                .collect(),
            slots_total: slots,
            slots_free: slots,
            draining: false,
            ttl_ms: 1000,
            sent_at: OffsetDateTime::now_utc(),
        };
        let (bus, stop) = (self.bus.clone(), self.stop.clone());
        self.heartbeats.push(tokio::spawn(async move {
            let subject = bus.names().executor_heartbeat();
            while !stop.is_cancelled() {
                let _ = bus.publish(subject.clone(), &heartbeat).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    /// Stores the run's record (`queued`, with its submission) and submits it, as the gateway
    /// does.
    pub async fn submit(&self, submitted: &JobSubmitted) {
        let record = RunRecord {
            v: VERSION,
            tenant: submitted.tenant.clone(),
            run: Run::queued(
                submitted.run_id.clone(),
                submitted.job.language.clone(),
                submitted.submitted_at,
            ),
            submission: Some(submitted.clone()),
            traceparent: None,
            job_sequence: None,
        };
        self.store
            .create(&record)
            .await
            .expect("the record is stored");
        self.bus
            .publish_durable(self.bus.names().runs_submit(), submitted, &submitted.run_id)
            .await
            .expect("submitted");
    }

    /// The pool consumer executors of `pool` share.
    pub async fn pool(
        &self,
        pool: &str,
    ) -> async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::pull::Config>
    {
        self.bus
            .pool_consumer(
                pool,
                ConsumerSettings {
                    ack_wait: Duration::from_secs(30),
                    max_deliver: 1,
                },
            )
            .await
            .expect("a pool consumer")
    }

    /// The jobs of one pool that arrive within `window` after the last one, acknowledged as
    /// an executor acknowledges finished jobs.
    pub async fn jobs_of(&self, pool: &str, window: Duration) -> Vec<JobDispatched> {
        let consumer = self.pool(pool).await;
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

    pub async fn stop(self) {
        self.stop.cancel();
        if let Some(task) = self.task {
            task.await.expect("joins").expect("stops cleanly");
        }
        for heartbeat in self.heartbeats {
            let _ = heartbeat.await;
        }
        let jetstream = self.bus.jetstream();
        for stream in self.bus.names().streams() {
            let _ = jetstream.delete_stream(stream).await;
        }
        remove_keys(self.bus.names().prefix()).await;
    }
}

/// Removes the test's Redis keys.
async fn remove_keys(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: redis::RedisResult<i64> = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut connection)
            .await;
    }
}

/// The next job of `consumer` within 5 s, as an executor with one free slot takes it
/// (not acknowledged yet).
pub async fn next_job(
    consumer: &async_nats::jetstream::consumer::Consumer<
        async_nats::jetstream::consumer::pull::Config,
    >,
) -> (JobDispatched, async_nats::jetstream::Message) {
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("fetch");
    let message = batch
        .next()
        .await
        .expect("a job within 5 s")
        .expect("a job");
    let job = coderun_bus::decode(&message.payload).expect("a JobDispatched");
    (job, message)
}
