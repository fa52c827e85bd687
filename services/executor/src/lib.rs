//! coderun-executor: runs jobs, each in its own locked-down container.
//!
//! - [`config`]: the layered configuration.
//! - [`container`]: the container settings of a sandbox, decided in one place; [`seccomp`]:
//!   its seccomp profile, and what changes under gVisor.
//! - [`sandbox`]: one sandbox's life (take a warm container or create one, feed the agent,
//!   read its answer, remove it); [`agent_session`]: the conversation with its agent (the
//!   job, the pause where the run stage's limits are applied, the answer); [`containers`]: creating, naming, inspecting and removing
//!   containers through the engine (a run waits for an engine that is restarting);
//!   [`engine`]: which errors mean the engine does not answer, and the flag that stops the
//!   pull loops while it does not.
//! - [`cgroup`]: a running container's limits changed in the host's cgroup files (runsc).
//! - [`exchange`]: the agent's lines read in linear time; streamed output and its budget.
//! - [`users`]: the program users of each run in flight.
//! - [`reuse`]: the fast isolation mode's containers, reused for one tenant, each run in an
//!   inner sandbox the agent builds; their settings, and keeping one for the tenant once its
//!   agent vouches for the run's end; [`reuse_store`]: the idle ones between runs.
//! - [`warm`]: pre-warmed containers per language, refilled in the background. ("Pool" is
//!   only ever the NATS work queue of a language, `schema::names::Names::pool_of`.)
//! - [`outcome`]: the agent's measurements → stage results and verdicts.
//! - [`worker`]: pulling jobs from the pools' consumers, slots, run records and events;
//!   [`agent_job`]: the agent's job it builds for a run; [`persist`]: record reads and writes
//!   retried with backoff while Redis is away; [`progress`]: `compiled` and `test` events as
//!   the agent reports each stage; [`ending`]: the result stored and announced once, a run
//!   given up as `internal_error` when its job cannot be tried again.
//! - [`languages`]: the languages this executor serves, each image's digest and the version
//!   read from it.
//! - [`cancels`]: cancel requests from the gateway stop the sandbox of a run in flight.
//! - [`heartbeat`]: telling the gateways and the scheduler what this executor serves.
//! - [`janitor`]: removing the containers of other executors on the same engine that are gone
//!   (each removes only its own leftovers when it starts).
//! - [`metrics`]: runs finished and their durations, slots, warm containers, container
//!   creation, connection errors; served with `/healthz` and `/readyz` by the ops listener.
//! - [`Application`]: wiring, start-up checks, and a graceful drain on shutdown.
//!
//! Architecture invariant: only the executor talks to Docker, and it never decides who goes
//! first — it takes what the scheduler put in its pools' queues.

pub mod agent_job;
pub mod agent_session;
pub mod cancels;
pub mod cgroup;
pub mod config;
pub mod container;
pub mod containers;
pub mod ending;
pub mod engine;
pub mod exchange;
pub mod heartbeat;
pub mod janitor;
pub mod languages;
pub mod metrics;
pub mod outcome;
pub mod persist;
pub mod progress;
pub mod reuse;
pub mod reuse_store;
pub mod sandbox;
pub mod seccomp;
pub mod users;
pub mod warm;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use coderun_bus::executors::ExecutorView;
use coderun_bus::{Bus, ConsumerSettings};
use coderun_schema::catalog::Catalog;
use coderun_schema::messages::ServedLanguage;
use coderun_store::RunStore;
use coderun_telemetry::ops::{OpsServer, ReadinessCheck};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::heartbeat::Heartbeat;
use crate::metrics::ExecutorMetrics;
use crate::sandbox::Sandbox;
use crate::worker::Worker;

/// A built executor, ready to run.
pub struct Application {
    worker: Arc<Worker>,
    executor_id: String,
    config: Config,
    ops: OpsServer,
}

impl Application {
    /// Connects to NATS, Redis and Docker, removes orphan containers, and reads the version of
    /// every language it will serve.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let executor_id = if config.worker.id.is_empty() {
            format!(
                "executor-{}",
                ulid::Ulid::new().to_string().to_ascii_lowercase()
            )
        } else {
            config.worker.id.clone()
        };
        let bus = Bus::connect_with(&config.bus, &executor_id).await?;
        bus.ensure_jobs_stream().await?;
        bus.ensure_webhooks_stream().await?;
        let store = RunStore::connect_with(&config.store, bus.names().clone())
            .await
            .context("failed to connect to Redis")?;
        let sandbox = Sandbox::connect(
            config.sandbox.clone(),
            bus.names().prefix().to_owned(),
            executor_id.clone(),
        )
        .await
        .context("failed to connect to Docker")?;
        let orphans = sandbox.remove_orphans().await?;
        if orphans > 0 {
            tracing::info!(
                orphans,
                "removed sandbox containers left by an earlier executor"
            );
        }
        let catalog = Catalog::builtin();
        let languages = languages::discover(&sandbox, &catalog, &config.worker.languages).await?;
        if languages.is_empty() {
            anyhow::bail!("no language image is available: build them with scripts/images.sh");
        }
        let containers = sandbox.container_metrics();
        for language in languages.values() {
            containers.start_series(&language.spec.id);
        }
        let metrics = ExecutorMetrics::new(&bus, &store, &containers, sandbox.reuse_store());
        let readiness: ReadinessCheck = {
            let (bus, store, sandbox) = (bus.clone(), store.clone(), sandbox.clone());
            Arc::new(move || {
                let (bus, store, sandbox) = (bus.clone(), store.clone(), sandbox.clone());
                Box::pin(async move {
                    vec![
                        ("nats", bus.is_connected()),
                        ("redis", store.ping().await.is_ok()),
                        ("docker", sandbox.engine_answers().await),
                    ]
                })
            })
        };
        let ops = OpsServer::bind_with(&config.ops, metrics.registry.clone(), readiness)?;
        let worker = Worker {
            metrics,
            bus,
            store,
            sandbox,
            catalog,
            languages,
            slots: Arc::new(Semaphore::new(config.worker.slots as usize)),
            busy: Arc::default(),
            settings: config.worker.clone(),
            host_margin: Duration::from_secs(config.sandbox.host_margin_secs),
            abandon: CancellationToken::new(),
            cancels: Default::default(),
        };
        Ok(Self {
            worker: Arc::new(worker),
            executor_id,
            config,
            ops,
        })
    }

    /// Pre-warmed containers and the warm/cold counters.
    pub fn warm_store(&self) -> Arc<crate::warm::WarmStore> {
        self.worker.sandbox.warm_store()
    }

    /// Fast mode's idle containers, each bound to a tenant.
    pub fn reuse_store(&self) -> Arc<crate::reuse::ReuseStore> {
        self.worker.sandbox.reuse_store()
    }

    /// The port of the ops listener (`/metrics`, `/healthz`, `/readyz`).
    pub fn ops_port(&self) -> u16 {
        self.ops.port()
    }

    pub fn executor_id(&self) -> &str {
        &self.executor_id
    }

    /// The languages served, with versions read from their images.
    pub fn languages(&self) -> Vec<ServedLanguage> {
        served_languages(&self.worker)
    }

    /// Serves until `shutdown`, then stops pulling, announces `draining`, and waits for the
    /// runs in flight (up to the drain timeout).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            worker,
            executor_id,
            config,
            ops,
        } = self;
        let served = served_languages(&worker);
        let tracker = TaskTracker::new();
        let settings = ConsumerSettings {
            ack_wait: Duration::from_secs(config.worker.ack_wait_secs),
            max_deliver: config.worker.max_deliver,
        };
        let mut consumers = Vec::new();
        for pool in worker.languages.keys() {
            let consumer = worker.bus.pool_consumer(pool, settings).await?;
            consumers.push((pool.clone(), consumer));
        }
        let warmer = crate::warm::Warmer::new(
            worker.sandbox.clone(),
            worker.languages.values(),
            &worker.catalog,
            config.sandbox.warm_per_language,
            &config.sandbox.warm_sizes,
        );
        let warm_targets = warmer.targets();
        let ops_stop = CancellationToken::new();
        let ops_port = ops.port();
        let ops = tokio::spawn(ops.run(ops_stop.clone()));
        let gauges = tokio::spawn(worker.metrics.clone().watch(
            worker.slots.clone(),
            config.worker.slots,
            worker.sandbox.warm_store(),
            warmer.targets(),
            Duration::from_secs(1),
            ops_stop.clone(),
        ));
        // Warm before pulling, so the first runs are warm too.
        warmer.fill().await;
        let pullers: Vec<_> = consumers
            .into_iter()
            .map(|(pool, consumer)| {
                tokio::spawn(
                    worker
                        .clone()
                        .pull(pool, consumer, shutdown.clone(), tracker.clone()),
                )
            })
            .collect();
        let warmer_stop = CancellationToken::new();
        let warmer = tokio::spawn(warmer.run(warmer_stop.clone()));
        let heartbeat = Heartbeat {
            bus: worker.bus.clone(),
            executor_id: executor_id.clone(),
            languages: served,
            slots_total: config.worker.slots,
            busy: worker.busy.clone(),
            warm: worker.sandbox.warm_store(),
            warm_targets,
            interval: config.heartbeat_interval(),
        };
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat.run(shutdown.clone(), heartbeat_stop.clone()));
        let silence = config.heartbeat_interval() * 3;
        let executors = ExecutorView::follow(&worker.bus, silence, shutdown.clone()).await?;
        let janitor = tokio::spawn(
            crate::janitor::Janitor {
                sandbox: worker.sandbox.clone(),
                bus: worker.bus.clone(),
                executors,
                every: silence,
                // Ten heartbeats unheard, and containers as old: a peer that is starting (not
                // heartbeating yet) or was cut off for a moment keeps its sandboxes.
                gone_after: config.heartbeat_interval() * 10,
            }
            .run(shutdown.clone()),
        );
        // Followed until the runs in flight are drained, so they can still be cancelled.
        let cancels_stop = CancellationToken::new();
        let cancels = tokio::spawn(
            worker
                .cancels
                .clone()
                .listen(worker.bus.clone(), cancels_stop.clone()),
        );
        tracing::info!(
            executor_id = %executor_id,
            languages = ?worker.languages.keys().collect::<Vec<_>>(),
            slots = config.worker.slots,
            ops_port,
            "executor serving"
        );
        shutdown.cancelled().await;
        for puller in pullers {
            let _ = puller.await;
        }
        let _ = janitor.await;
        tracker.close();
        let drain = Duration::from_secs(config.worker.drain_timeout_secs);
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            tracing::warn!(
                "runs still in flight after the drain timeout; NATS will redeliver them"
            );
            // Jobs still waiting for Redis hand themselves back to NATS now.
            worker.abandon.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
        }
        cancels_stop.cancel();
        if let Ok(Err(error)) = cancels.await {
            tracing::warn!(error = %format!("{error:#}"), "cancel requests were not followed");
        }
        // Only now: runs in flight may still have been taking warm containers.
        warmer_stop.cancel();
        let _ = warmer.await;
        for id in worker.sandbox.reuse_store().drain() {
            worker.sandbox.remove_later(id, None);
        }
        worker.sandbox.finish_removals().await;
        // Heard as draining until now: its containers were its own to remove.
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        ops_stop.cancel();
        let _ = gauges.await;
        if let Ok(Err(error)) = ops.await {
            tracing::warn!(error = %format!("{error:#}"), "the ops listener failed");
        }
        tracing::info!("executor stopped");
        Ok(())
    }
}

fn served_languages(worker: &Worker) -> Vec<ServedLanguage> {
    let mut served: Vec<ServedLanguage> = worker
        .languages
        .values()
        .map(|language| language.served.clone())
        .collect();
    served.sort_by(|a, b| a.id.cmp(&b.id));
    served
}
