//! Pulling jobs and running them: one pull loop per pool, a semaphore of slots shared by all
//! pools, one sandbox per job.
//!
//! A job's life here: decode → load the run record → mark it `running` (event) → run the
//! sandbox, acknowledging progress so NATS does not redeliver a long run → write the final run
//! → publish `completed` → ack. A run whose sandbox fails ends as `internal_error`; a record
//! that cannot be written is not acked, so the job comes back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use coderun_bus::{async_nats, Bus};
use coderun_schema::agent::{AgentCommand, AgentFile, AgentJob};
use coderun_schema::catalog::{Catalog, LanguageSpec, SOURCES_PLACEHOLDER};
use coderun_schema::messages::{
    Job, JobDispatched, JobFile, RunEvent, RunEventKind, RunRecord, ServedLanguage,
};
use coderun_schema::run::{RunStatus, Verdict};
use coderun_store::{RunStore, UpdateOutcome};
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WorkerConfig;
use crate::container::SandboxSpec;
use crate::outcome;
use crate::sandbox::{Sandbox, SandboxError};

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
            let batch = consumer
                .fetch()
                .max_messages(1)
                .expires(Duration::from_millis(500))
                .messages()
                .await;
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
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
                let progress = keep_alive(&message, worker.progress_every());
                let permit = worker.slots.clone().acquire_owned().await;
                progress.cancel();
                let _ = has_slot.send(());
                if let Ok(_permit) = permit {
                    worker.handle(message).await;
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

    #[tracing::instrument(skip_all, fields(run_id))]
    async fn handle(&self, message: jetstream::Message) {
        let Some(mut dispatched) = coderun_bus::decode_or_term::<JobDispatched>(&message).await
        else {
            return;
        };
        tracing::Span::current().record("run_id", dispatched.run_id.as_str());
        let last_delivery = message
            .info()
            .map(|info| info.delivered >= self.settings.max_deliver)
            .unwrap_or(false);
        match self.execute(&message, &mut dispatched, last_delivery).await {
            Ok(()) => {
                if let Err(error) = message.double_ack().await {
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
        message: &jetstream::Message,
        dispatched: &mut JobDispatched,
        last_delivery: bool,
    ) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let run_id = &dispatched.run_id;
        let Some(mut record) = self
            .store
            .get(run_id)
            .await
            .context("failed to read the run")?
        else {
            tracing::warn!("the run record is gone (expired?); dropping the job");
            return Ok(());
        };
        if record.run.status.is_terminal() {
            tracing::info!("the run is already final; dropping a duplicate delivery");
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
        if self
            .store
            .update(&record)
            .await
            .context("failed to mark the run running")?
            == UpdateOutcome::AlreadyTerminal
        {
            return Ok(());
        }
        self.publish_event(&record, RunEventKind::Running).await;

        // The sources and stdins move into the agent's job: the run's outcome needs neither.
        let agent_job = agent_job(&language.spec, &mut dispatched.job);
        let deadline = self.deadline(dispatched);
        let spec = SandboxSpec {
            image: &language.spec.image,
            pool: &dispatched.pool,
            run_id,
            limits: dispatched.job.limits,
            compiles: language.spec.compile.is_some(),
        };
        let progress = keep_alive(message, self.progress_every());
        let result = self.sandbox.run(&spec, agent_job, deadline).await;
        progress.cancel();

        let run = &mut record.run;
        match &result {
            Ok(answer) => outcome::apply(run, &dispatched.job, answer),
            Err(error) => {
                tracing::error!(%error, "the sandbox failed");
                if !last_delivery && matches!(error, SandboxError::Engine(_)) {
                    anyhow::bail!("the Docker engine is unavailable: {error}");
                }
                let (verdict, why) = match error {
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
                };
                run.verdict = Some(verdict);
                run.error = Some(why.to_owned());
            }
        }
        run.status = RunStatus::Completed;
        run.finished_at = Some(OffsetDateTime::now_utc());
        self.store
            .update(&record)
            .await
            .context("failed to store the result")?;
        tracing::info!(verdict = ?record.run.verdict, "run finished");
        self.publish_event(&record, RunEventKind::Completed).await;
        Ok(())
    }

    fn deadline(&self, dispatched: &JobDispatched) -> Duration {
        let limits = dispatched.job.limits;
        let runs = dispatched.job.tests.len().max(1) as u64;
        Duration::from_millis(limits.compile.wall_ms + limits.run.wall_ms * runs) + self.host_margin
    }

    async fn publish_event(&self, record: &RunRecord, kind: RunEventKind) {
        let event = RunEvent {
            v: coderun_schema::messages::VERSION,
            run_id: record.run.id.clone(),
            kind,
            at: OffsetDateTime::now_utc(),
            test_index: None,
            run: Some(record.run.clone()),
        };
        let subject = self.bus.names().run_events(&record.run.id);
        if let Err(error) = self.bus.publish(subject, &event).await {
            // Waiters fall back to reading Redis: an event lost here delays, never loses.
            tracing::warn!(error = %coderun_bus::describe(&error), "failed to publish a run event");
        }
    }
}

/// Sends in-progress acknowledgements until the returned token is cancelled.
fn keep_alive(message: &jetstream::Message, every: Duration) -> CancellationToken {
    let done = CancellationToken::new();
    let stop = done.clone();
    let message = message.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {
                    if let Err(error) = message.ack_with(AckKind::Progress).await {
                        tracing::warn!(%error, "failed to send a progress acknowledgement");
                    }
                }
            }
        }
    });
    done
}

fn millis_between(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    u64::try_from((to - from).whole_milliseconds()).unwrap_or(0)
}

/// A compile argv with the catalog's `{sources}` element replaced by every submitted file that
/// has the main file's extension: the main file first, then the others by name. One argv
/// element per file, so no name is split; a name that could read as an option or a response
/// file (`-x`, `@x`; the gateway refuses them) is given as `./name`.
pub fn expand_sources(argv: &[String], language: &LanguageSpec, files: &[JobFile]) -> Vec<String> {
    let extension = std::path::Path::new(&language.source_file).extension();
    let mut sources: Vec<&str> = files
        .iter()
        .map(|file| file.name.as_str())
        .filter(|name| *name != language.source_file)
        .filter(|name| extension.is_some() && std::path::Path::new(name).extension() == extension)
        .collect();
    sources.sort_unstable();
    let main = files
        .iter()
        .any(|file| file.name == language.source_file)
        .then_some(language.source_file.as_str());
    argv.iter()
        .flat_map(|element| {
            if element == SOURCES_PLACEHOLDER {
                main.into_iter()
                    .chain(sources.iter().copied())
                    .map(source_argument)
                    .collect()
            } else {
                vec![element.clone()]
            }
        })
        .collect()
}

/// A file name as a compiler argument: never one that reads as an option or a response file.
fn source_argument(name: &str) -> String {
    if name.starts_with(['-', '@']) {
        format!("./{name}")
    } else {
        name.to_owned()
    }
}

/// The agent's job for a dispatched run: the files and each test's stdin, taken out of `job`,
/// and the catalog's commands with the request's arguments appended as argv.
pub fn agent_job(language: &LanguageSpec, job: &mut Job) -> AgentJob {
    let mut run_argv = language.run.clone();
    run_argv.extend(job.args.iter().cloned());
    let compile = language.compile.as_ref().map(|argv| AgentCommand {
        argv: expand_sources(argv, language, &job.files),
        limits: job.limits.compile,
    });
    let files = std::mem::take(&mut job.files)
        .into_iter()
        .map(|file| AgentFile {
            path: file.name,
            content: file.content,
        })
        .collect();
    let stdins = job
        .tests
        .iter_mut()
        .map(|test| std::mem::take(&mut test.stdin))
        .collect();
    let run = AgentCommand {
        argv: run_argv,
        limits: job.limits.run,
    };
    AgentJob::new(files, compile, run, stdins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coderun_schema::bytes64::Bytes64;

    fn files(names: &[&str]) -> Vec<JobFile> {
        names
            .iter()
            .map(|name| JobFile {
                name: (*name).to_owned(),
                content: Bytes64(Vec::new()),
            })
            .collect()
    }

    #[test]
    fn sources_are_the_main_file_then_the_others_with_its_extension() {
        let catalog = Catalog::builtin();
        let c = catalog.find("c").expect("c is in the catalog");
        let argv = c.compile.as_ref().expect("c compiles");
        let expanded = expand_sources(
            argv,
            c,
            &files(&["util.c", "lib/square.h", "main.c", "a b;rm -rf x.c", "-o.c"]),
        );
        let at = argv
            .iter()
            .position(|element| element == SOURCES_PLACEHOLDER)
            .expect("the c command names its sources");
        assert_eq!(
            expanded[at..at + 4],
            ["main.c", "./-o.c", "a b;rm -rf x.c", "util.c"],
            "one argv element per file, the main file first, none an option"
        );
        assert_eq!(expanded.len(), argv.len() + 3, "headers are not compiled");
    }
}
