//! Pulling jobs and running them: one pull loop per pool, a semaphore of slots shared by all
//! pools, one sandbox per job.
//!
//! A job's life here: decode → load the run record → mark it `running` (event) while the
//! sandbox starts → run the sandbox, reporting each stage as it ends ([`crate::progress`]) →
//! write the final run → publish `completed` → ack, acknowledging progress all along so NATS
//! does not redeliver a job in hand. A run whose sandbox fails as a whole ends as
//! `memory_limit` (the container ran out of memory), `output_limit` (the run's output budget
//! was passed) or `internal_error`.
//!
//! Redis being away never loses a run: every read and write of the record is retried with
//! backoff ([`crate::persist`]) for as long as the executor lives, the job kept in progress
//! meanwhile. Only when the drain at shutdown times out is a job given up: handed back to NATS
//! (NAK) if it has deliveries left. A job that fails on its last delivery is not dropped
//! either: its run is made final (`internal_error`) before the job is acknowledged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use coderun_bus::{async_nats, Bus, InProgress};
use coderun_schema::catalog::{Catalog, LanguageSpec};
use coderun_schema::messages::{JobDispatched, ServedLanguage};
use coderun_schema::run::RunStatus;
use coderun_schema::trace::TraceContext;
use coderun_store::{RunStore, StoreError, UpdateOutcome};
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::agent_job::agent_job;
use crate::config::WorkerConfig;
use crate::container::SandboxSpec;
use crate::ending::failure_verdict;
use crate::sandbox::{RunWatch, Sandbox, SandboxError};
use crate::{outcome, progress};

/// A language this executor serves, with what it learned about it at start-up.
#[derive(Debug, Clone)]
pub struct PoolLanguage {
    pub spec: LanguageSpec,
    pub served: ServedLanguage,
}

/// Everything a job handler needs.
pub struct Worker {
    pub bus: Bus,
    pub store: RunStore,
    pub sandbox: Sandbox,
    pub catalog: Catalog,
    /// By pool name (`Names::pool_of` the language id).
    pub languages: HashMap<String, PoolLanguage>,
    /// Free slots; a permit is held for the whole life of a job. Idle pulls hold none.
    pub slots: Arc<Semaphore>,
    /// Jobs taken from the stream, running or waiting for a slot: what heartbeats report.
    pub busy: Arc<AtomicU32>,
    pub settings: WorkerConfig,
    /// Added to a job's summed wall limits for the host-side deadline.
    pub host_margin: Duration,
    /// Cancelled when the drain at shutdown times out: jobs still waiting for Redis give up.
    pub abandon: CancellationToken,
    /// The runs being handled, for cancel requests to find.
    pub cancels: crate::cancels::Cancels,
    /// Runs finished, their durations, slots and warm containers.
    pub metrics: crate::metrics::ExecutorMetrics,
}

impl Worker {
    /// Pulls one pool until `shutdown`, running each job in a task tracked by `tracker`.
    pub async fn pull(
        self: Arc<Self>,
        pool: String,
        consumer: consumer::Consumer<consumer::pull::Config>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        loop {
            // Fetch only while a slot is free, but hold none while the fetch waits: with more
            // pools than slots, idle pools holding slots would keep another pool's job waiting.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                permit = self.slots.acquire() => match permit {
                    Ok(permit) => drop(permit),
                    Err(_) => return,
                },
            }
            // No job is taken while the engine is known not to answer: other executors' engines
            // may, and a job taken here would only wait.
            if self.sandbox.engine_away() && !self.sandbox.wait_for_engine(&shutdown).await {
                return;
            }
            let batch = consumer
                .fetch()
                .max_messages(1)
                .expires(Duration::from_millis(500))
                .messages()
                .await;
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    self.bus.count_error("fetch");
                    tracing::warn!(%pool, %error, "failed to fetch jobs; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            let message = match batch.next().await {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    tracing::warn!(%pool, %error, "failed to receive a job");
                    continue;
                }
                None => continue,
            };
            // Another pool may have taken the free slot meanwhile: the job waits for the next
            // one, reported in progress, and counts as busy in heartbeats from now on. This
            // pool fetches again only once its job has a slot; at shutdown the job is drained
            // like the running ones, never handed back (a redelivery would use up an attempt).
            self.busy.fetch_add(1, Ordering::SeqCst);
            let (has_slot, slot_taken) = tokio::sync::oneshot::channel::<()>();
            let worker = self.clone();
            tracker.spawn(async move {
                let progress = InProgress::start(&message, worker.progress_every());
                let permit = worker.slots.clone().acquire_owned().await;
                progress.stop();
                let _ = has_slot.send(());
                if let Ok(_permit) = permit {
                    let span = tracing::info_span!(
                        "run",
                        run_id = tracing::field::Empty,
                        trace_id = tracing::field::Empty
                    );
                    let trace = coderun_telemetry::trace::join(
                        &span,
                        coderun_bus::trace_of(message.headers.as_ref()),
                    );
                    worker.handle(message, trace).instrument(span).await;
                }
                worker.busy.fetch_sub(1, Ordering::SeqCst);
            });
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = slot_taken => {}
            }
        }
    }

    /// How often a job in hand is reported in progress: well within the stream's ack wait.
    fn progress_every(&self) -> Duration {
        Duration::from_secs(self.settings.ack_wait_secs.max(3) / 3)
    }

    async fn handle(&self, message: jetstream::Message, trace: TraceContext) {
        let Some(mut dispatched) = coderun_bus::decode_or_term::<JobDispatched>(&message).await
        else {
            return;
        };
        tracing::Span::current().record("run_id", dispatched.run_id.as_str());
        // The job's place in the jobs stream: the run is claimed for this job only. A job
        // that cannot say where it is cannot claim its run: it comes back later.
        let Ok(info) = message.info() else {
            tracing::error!("a job without its stream metadata; it will be delivered again");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
            return;
        };
        let last_delivery = info.delivered >= self.settings.max_deliver;
        let job_sequence = info.stream_sequence;
        let progress = InProgress::start(&message, self.progress_every());
        let mut outcome = self
            .execute(&mut dispatched, job_sequence, last_delivery, trace)
            .await;
        if let (Err(error), true) = (&outcome, last_delivery) {
            // No delivery is left to try again: the run is made final here, never left behind.
            tracing::error!(error = %format!("{error:#}"), "job failed on its last delivery");
            outcome = self.give_up(&dispatched.run_id, job_sequence, trace).await;
        }
        progress.stop();
        match outcome {
            Ok(()) => {
                // A plain ack, not waiting for the server's reply (the slot stays taken until
                // this returns): a lost ack brings the job back, and a job whose run is final
                // is dropped.
                if let Err(error) = message.ack().await {
                    self.bus.count_error("ack");
                    tracing::warn!(%error, "failed to acknowledge a finished job");
                }
            }
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "job failed; it will be redelivered");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
            }
        }
    }

    async fn execute(
        &self,
        dispatched: &mut JobDispatched,
        job_sequence: u64,
        last_delivery: bool,
        trace: TraceContext,
    ) -> anyhow::Result<()> {
        let run_id = &dispatched.run_id;
        // Registered before the run is marked running: a cancel that comes later finds it, and
        // one that came earlier made the record final, so it is never marked running.
        let registration = self.cancels.register(run_id);
        let Some(mut record) = self
            .persist("read the run", || self.store.get(run_id))
            .await?
        else {
            tracing::warn!("the run record is gone (expired?); dropping the job");
            return Ok(());
        };
        if record.run.status.is_terminal() {
            tracing::info!("the run is already final; dropping a duplicate delivery");
            return Ok(());
        }
        if !record.held_by(job_sequence) {
            // A second job of the same run (a release published twice): the job holding the
            // run finishes it, or comes back if its executor died. No sandbox is started.
            tracing::info!(held_by = ?record.job_sequence, "the run is running for another job; dropping this one");
            return Ok(());
        }
        let Some(language) = self.languages.get(&dispatched.pool) else {
            anyhow::bail!("this executor does not serve pool {}", dispatched.pool);
        };
        let started_at = OffsetDateTime::now_utc();
        record.run.status = RunStatus::Running;
        record.run.started_at = Some(started_at);
        record.run.version = Some(language.served.version.clone());
        record.run.queue_ms = Some(millis_between(record.run.created_at, started_at));
        record.job_sequence = Some(job_sequence);
        // The sources and stdins move into the agent's job: the run's outcome needs neither.
        let agent_job = agent_job(&language.spec, &mut dispatched.job);
        let deadline = self.deadline(dispatched);
        let spec = SandboxSpec {
            image: &language.spec.image,
            pool: &dispatched.pool,
            run_id,
            limits: dispatched.job.limits,
            compiles: language.spec.compile.is_some(),
            tenant: &dispatched.tenant,
            isolation: dispatched.job.isolation,
        };
        // The run is marked running while its sandbox starts: neither waits for the other.
        // Progress is forwarded only once the mark is stored (the log stays in order), and the
        // result is written after both; a run found final meanwhile (cancelled) or that cannot
        // be marked has its sandbox stopped. Each stage that ends is reported as it ends; the
        // forwarding is over (the channel closed with the sandbox's watch) before the result
        // is written.
        let (reports, received) = tokio::sync::mpsc::unbounded_channel();
        let stop = registration.token().clone();
        let watch = RunWatch {
            cancel: stop.clone(),
            progress: Some(reports),
        };
        let marking = async {
            let marked = self
                .persist("mark the run running", || self.store.claim_for_job(&record))
                .await;
            let Ok((UpdateOutcome::Updated, event)) = &marked else {
                stop.cancel();
                return marked;
            };
            self.metrics.started(
                &record.run.language,
                Duration::from_millis(record.run.queue_ms.unwrap_or(0)),
            );
            if let Some(event) = event {
                self.bus.publish_run_event(event, Some(trace)).await;
            }
            let job = &dispatched.job;
            progress::forward(received, &self.store, &self.bus, job, run_id, trace).await;
            marked
        };
        let (result, marked) =
            tokio::join!(self.sandbox.run(&spec, agent_job, deadline, watch), marking);
        if marked?.0 != UpdateOutcome::Updated {
            return Ok(());
        }
        if let Err(SandboxError::Cancelled) = result {
            // The gateway made the record final (`cancelled`) before it asked.
            tracing::info!("run cancelled; its sandbox is gone");
            return Ok(());
        }

        let run = &mut record.run;
        match &result {
            Ok(answer) => outcome::apply(run, &dispatched.job, answer),
            Err(error) => {
                tracing::error!(%error, "the sandbox failed");
                // An engine still away after `sandbox.engine_wait_secs`: another executor
                // may have one that answers.
                let engine_away =
                    matches!(error, SandboxError::Engine(_)) || error.engine_unreachable();
                if !last_delivery && engine_away {
                    anyhow::bail!("the Docker engine is unavailable: {error}");
                }
                let (verdict, why) = failure_verdict(error);
                run.verdict = Some(verdict);
                run.error = Some(why.to_owned());
            }
        }
        self.finish(&mut record, trace).await
    }

    /// Runs a store operation until it succeeds, waiting longer after each failure, until the
    /// executor abandons its jobs. A corrupt record is not waited for.
    pub(crate) async fn persist<T, F, Fut>(&self, what: &str, operation: F) -> anyhow::Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        crate::persist::retrying(what, &self.abandon, operation).await
    }

    fn deadline(&self, dispatched: &JobDispatched) -> Duration {
        Duration::from_millis(dispatched.job.wall_ms_budget()) + self.host_margin
    }
}

fn millis_between(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    u64::try_from((to - from).whole_milliseconds()).unwrap_or(0)
}
