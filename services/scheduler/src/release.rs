//! Releasing runs to their pool's jobs stream only while the pool has room, in fair order.
//!
//! A pool's room is what its live executors can take now: their slots, plus
//! `fairness.ready_per_executor` jobs each waiting so that no executor idles while the
//! scheduler decides, minus the jobs already in the jobs stream for the pool (released and not
//! finished). A submission goes straight to the jobs stream when its pool has room and nobody
//! waits; otherwise into its tenant's fair queue in Redis ([`coderun_store::FairQueues`]), from
//! which [`Releaser::round`] releases by deficit round robin ([`crate::fair`]) as room appears.
//! So the order in which runs reach an executor is decided here, a few jobs ahead of the
//! executors, not by the order submissions sit in a stream.
//!
//! Only one scheduler releases at a time; the state kept here (the estimate of each pool's
//! jobs, the rounds) is rebuilt from Redis and NATS by the next one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use coderun_bus::executors::ExecutorView;
use coderun_bus::Bus;
use coderun_schema::messages::{JobDispatched, JobSubmitted, VERSION};
use coderun_schema::names::Names;
use coderun_schema::trace::TraceContext;
use coderun_store::{FairQueues, RunStore};
use time::OffsetDateTime;

use crate::config::FairnessConfig;
use crate::fair::FairShare;
use crate::metrics::SchedulerMetrics;

/// How often runs left in `releasing` (a publish that failed, a scheduler that died) are
/// published again.
const RECOVER_EVERY: Duration = Duration::from_secs(5);

/// The releasing half of the scheduler.
pub struct Releaser {
    bus: Bus,
    store: RunStore,
    queues: FairQueues,
    executors: ExecutorView,
    fairness: FairnessConfig,
    metrics: SchedulerMetrics,
    /// Each pool's deficit round robin.
    rounds: BTreeMap<String, FairShare>,
    /// Runs waiting in each pool's fair queues, as far as this scheduler knows (it is the only
    /// one that queues and takes).
    backlog: BTreeMap<String, u64>,
    /// Jobs in the stream per pool at the last reading, plus those released since.
    jobs: BTreeMap<String, u64>,
    /// When `releasing` was last looked at.
    recovered: Option<Instant>,
}

impl Releaser {
    /// A releaser that knows the backlog the fair queues hold for every catalog pool.
    pub async fn start(
        bus: Bus,
        store: RunStore,
        executors: ExecutorView,
        fairness: FairnessConfig,
        metrics: SchedulerMetrics,
    ) -> anyhow::Result<Self> {
        let queues = store.queues();
        let mut backlog = BTreeMap::new();
        for spec in coderun_schema::catalog::Catalog::builtin().languages {
            let pool = Names::pool_of(&spec.id);
            let waiting = queues.backlog(&pool).await?;
            if waiting > 0 {
                backlog.insert(pool, waiting);
            }
        }
        Ok(Self {
            bus,
            store,
            queues,
            executors,
            fairness,
            metrics,
            rounds: BTreeMap::new(),
            backlog,
            jobs: BTreeMap::new(),
            recovered: None,
        })
    }

    /// Runs waiting in the fair queues, every pool together.
    pub fn waiting(&self) -> u64 {
        self.backlog.values().sum()
    }

    /// Takes an accepted run: released at once when its pool has room and nobody waits in it,
    /// else queued fairly. `Ok` means the run is safely in one place or the other.
    pub async fn admit(
        &mut self,
        submitted: JobSubmitted,
        trace: TraceContext,
    ) -> anyhow::Result<()> {
        let pool = Names::pool_of(&submitted.job.language);
        if self.backlog.get(&pool).copied().unwrap_or(0) == 0 && self.room(&pool).await > 0 {
            self.publish(&pool, submitted, Some(trace)).await?;
            return Ok(());
        }
        let queued = self
            .queues
            .enqueue(&pool, &submitted.tenant, &submitted.run_id)
            .await?;
        if queued {
            *self.backlog.entry(pool).or_default() += 1;
        }
        Ok(())
    }

    /// Queues a run found nowhere (the sweeper) at the back of its tenant's queue.
    pub async fn queue_again(
        &mut self,
        pool: &str,
        tenant: &str,
        run_id: &str,
    ) -> anyhow::Result<()> {
        if self.queues.enqueue(pool, tenant, run_id).await? {
            *self.backlog.entry(pool.to_owned()).or_default() += 1;
        }
        Ok(())
    }

    /// Releases what the pools have room for, tenant by tenant; first publishes again what an
    /// earlier release left half done.
    pub async fn round(&mut self) {
        if self
            .recovered
            .is_none_or(|at| at.elapsed() >= RECOVER_EVERY)
        {
            self.recovered = Some(Instant::now());
            if let Err(error) = self.recover().await {
                tracing::warn!(error = %format!("{error:#}"), "failed to release runs left half released");
            }
        }
        let pools: Vec<String> = self
            .backlog
            .iter()
            .filter(|(_, waiting)| **waiting > 0)
            .map(|(pool, _)| pool.clone())
            .collect();
        for pool in pools {
            if let Err(error) = self.release_pool(&pool).await {
                tracing::warn!(%pool, error = %format!("{error:#}"), "failed to release queued runs");
            }
        }
        let capacity = self.executors.capacity();
        let known = capacity.keys().chain(self.backlog.keys());
        for pool in known.collect::<BTreeSet<_>>() {
            let waiting = self.backlog.get(pool).copied().unwrap_or(0);
            let free = capacity.get(pool).map_or(0, |pool| pool.slots_free);
            self.metrics.backlog(pool, waiting, free);
        }
    }

    async fn release_pool(&mut self, pool: &str) -> anyhow::Result<()> {
        let mut room = self.room(pool).await;
        if room == 0 {
            return Ok(());
        }
        let waiting: BTreeSet<String> = self.queues.waiting(pool).await?.into_iter().collect();
        let weights = self.fairness.weights.clone();
        let weight = |tenant: &str| weights.get(tenant).copied().unwrap_or(1);
        let round = self.rounds.entry(pool.to_owned()).or_default();
        round.sync(&waiting, weight);
        while room > 0 {
            let round = self.rounds.entry(pool.to_owned()).or_default();
            let Some(tenant) = round.next(weight) else {
                self.backlog.insert(pool.to_owned(), 0);
                break;
            };
            let Some(run_id) = self.queues.take(pool, &tenant).await? else {
                round.emptied(&tenant);
                continue;
            };
            if let Some(waiting) = self.backlog.get_mut(pool) {
                *waiting = waiting.saturating_sub(1);
            }
            if self.release_queued(pool, &run_id).await? {
                room -= 1;
            }
        }
        Ok(())
    }

    /// Publishes the job of a run taken off a queue; false when the run needs none any more
    /// (final, or expired).
    async fn release_queued(&mut self, pool: &str, run_id: &str) -> anyhow::Result<bool> {
        let record = self.store.get(run_id).await?;
        let Some(record) = record.filter(|record| !record.run.status.is_terminal()) else {
            self.queues.released(run_id).await?;
            return Ok(false);
        };
        let trace = record.trace();
        let Some(submitted) = record.submission else {
            tracing::error!(
                run_id,
                "a queued run's record has no submission; it cannot be released"
            );
            self.queues.released(run_id).await?;
            return Ok(false);
        };
        self.publish(pool, submitted, trace).await?;
        self.queues.released(run_id).await?;
        Ok(true)
    }

    /// Publishes again every run taken off a queue whose job may not be in the jobs stream
    /// (the stream's duplicate window keeps a job that is there from being stored twice).
    async fn recover(&mut self) -> anyhow::Result<()> {
        for (run_id, pool) in self.queues.releasing().await? {
            self.release_queued(&pool, &run_id).await?;
        }
        Ok(())
    }

    async fn publish(
        &mut self,
        pool: &str,
        submitted: JobSubmitted,
        trace: Option<TraceContext>,
    ) -> anyhow::Result<()> {
        let language = submitted.job.language.clone();
        let dispatched = JobDispatched {
            v: VERSION,
            run_id: submitted.run_id,
            tenant: submitted.tenant,
            pool: pool.to_owned(),
            job: submitted.job,
            submitted_at: submitted.submitted_at,
            dispatched_at: OffsetDateTime::now_utc(),
        };
        self.bus
            .publish_durable_traced(
                self.bus.names().jobs(pool),
                &dispatched,
                &dispatched.run_id,
                trace,
            )
            .await?;
        *self.jobs.entry(pool.to_owned()).or_default() += 1;
        self.metrics.dispatched(&language);
        tracing::info!(run_id = %dispatched.run_id, %pool, "run released");
        Ok(())
    }

    /// Jobs `pool` can take now; the jobs stream is read again when the estimate says none.
    async fn room(&mut self, pool: &str) -> u64 {
        let capacity = self.capacity(pool);
        if capacity == 0 {
            return 0;
        }
        let estimate = self.jobs.get(pool).copied().unwrap_or(0);
        if estimate < capacity {
            return capacity - estimate;
        }
        match self.bus.jobs_by_pool().await {
            Ok(jobs) => self.jobs = jobs,
            Err(error) => {
                tracing::warn!(error = %coderun_bus::describe(&error), "cannot read the jobs stream");
                return 0;
            }
        }
        capacity.saturating_sub(self.jobs.get(pool).copied().unwrap_or(0))
    }

    /// What `pool`'s live executors take at once: their slots and the jobs waiting for each.
    fn capacity(&self, pool: &str) -> u64 {
        self.executors.capacity().get(pool).map_or(0, |pool| {
            u64::from(pool.slots_total)
                + u64::from(pool.live) * u64::from(self.fairness.ready_per_executor)
        })
    }
}
