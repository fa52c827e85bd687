//! Releasing runs to their pool's jobs stream only while the pool has room ([`crate::room`]),
//! in fair order.
//!
//! A submission goes straight to the jobs stream when its pool has room and nobody waits;
//! otherwise into its tenant's fair queue in Redis ([`coderun_store::FairQueues`]), from which
//! [`Releaser::round`] releases by deficit round robin ([`crate::fair`]) as room appears. So
//! the order in which runs reach an executor is decided here, a few jobs ahead of the
//! executors, not by the order submissions sit in a stream.
//!
//! Only the scheduler holding the lease releases, and it checks the lease before each step
//! ([`LeaseGuard`]). What it keeps here (each pool's backlog as the queues' scripts last
//! answered it, the rounds, the room's estimate) is rebuilt from Redis and NATS by the next one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use coderun_bus::executors::ExecutorView;
use coderun_bus::Bus;
use coderun_schema::messages::{JobDispatched, JobSubmitted, VERSION};
use coderun_schema::names::Names;
use coderun_schema::run::RunStatus;
use coderun_schema::trace::TraceContext;
use coderun_store::{FairQueues, RunStore};
use time::OffsetDateTime;

use crate::config::FairnessConfig;
use crate::ending::end_as_internal_error;
use crate::fair::FairShare;
use crate::lease::LeaseGuard;
use crate::metrics::SchedulerMetrics;
use crate::room::Room;

/// How often runs left in `releasing` (a publish that failed, a scheduler that died) are
/// published again, and each pool's backlog is read again from Redis.
const RECOVER_EVERY: Duration = Duration::from_secs(5);

/// How often the backlog and capacity gauges are set: a round runs for every batch of
/// submissions, far more often than anyone reads them.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

/// The most runs taken off one pool's queues in one round (released or found final), so that
/// a round stays short and submissions keep being taken.
const MOST_PER_ROUND: u64 = 256;

/// The releasing half of the scheduler.
pub struct Releaser {
    bus: Bus,
    store: RunStore,
    queues: FairQueues,
    room: Room,
    fairness: FairnessConfig,
    metrics: SchedulerMetrics,
    guard: LeaseGuard,
    /// Each pool's deficit round robin.
    rounds: BTreeMap<String, FairShare>,
    /// Runs waiting in each pool's fair queues, as the queues' scripts last answered.
    backlog: BTreeMap<String, u64>,
    /// When `releasing` and the backlogs were last read.
    recovered: Option<Instant>,
    /// The executors, for the backlog gauges.
    executors: ExecutorView,
    /// Every pool the gauges have reported.
    reported: BTreeSet<String>,
    /// When the gauges were last set.
    gauges_set: Option<Instant>,
}

impl Releaser {
    /// A releaser that knows every pool's backlog and the jobs already in the stream.
    pub async fn start(
        bus: Bus,
        store: RunStore,
        executors: ExecutorView,
        fairness: FairnessConfig,
        metrics: SchedulerMetrics,
        guard: LeaseGuard,
    ) -> anyhow::Result<Self> {
        let queues = store.queues();
        let room = Room::new(bus.clone(), executors.clone(), fairness.ready_per_executor).await;
        let mut releaser = Self {
            bus,
            store,
            queues,
            room,
            fairness,
            metrics,
            guard,
            rounds: BTreeMap::new(),
            backlog: BTreeMap::new(),
            recovered: None,
            executors,
            reported: BTreeSet::new(),
            gauges_set: None,
        };
        releaser.read_backlogs().await?;
        Ok(releaser)
    }

    /// Each pool's backlog, from Redis.
    async fn read_backlogs(&mut self) -> anyhow::Result<()> {
        let mut pools: BTreeSet<String> = self.queues.pools().await?.into_iter().collect();
        pools.extend(self.backlog.keys().cloned());
        for pool in pools {
            let waiting = self.queues.backlog(&pool).await?;
            self.backlog.insert(pool, waiting);
        }
        Ok(())
    }

    /// Whether runs wait in a pool some live executor serves: room may appear at any moment.
    pub fn waiting_for_room(&self) -> bool {
        self.backlog
            .iter()
            .any(|(pool, waiting)| *waiting > 0 && self.room.served(pool))
    }

    fn check_lease(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.guard.holds(),
            "this scheduler no longer holds the lease"
        );
        Ok(())
    }

    /// Takes an accepted run: released at once when its pool has room and nobody waits in it,
    /// else queued fairly. `Ok` means the run is safely in one place or the other.
    pub async fn admit(
        &mut self,
        submitted: JobSubmitted,
        trace: TraceContext,
    ) -> anyhow::Result<()> {
        self.check_lease()?;
        let pool = Names::pool_of(&submitted.job.language);
        if self.backlog.get(&pool).copied().unwrap_or(0) == 0 && self.room.of(&pool).await > 0 {
            let run_id = submitted.run_id.clone();
            self.publish(&pool, submitted, Some(trace)).await?;
            self.queues.released(&run_id).await?;
            return Ok(());
        }
        self.queue(&pool, &submitted.tenant, &submitted.run_id)
            .await
    }

    /// Queues a run at the back of its tenant's queue (unless it is queued or was released).
    async fn queue(&mut self, pool: &str, tenant: &str, run_id: &str) -> anyhow::Result<()> {
        let (_, backlog) = self.queues.enqueue(pool, tenant, run_id).await?;
        self.backlog.insert(pool.to_owned(), backlog);
        Ok(())
    }

    /// Queues again a run the sweeper found nowhere: its release (if any) was lost.
    pub async fn queue_again(
        &mut self,
        pool: &str,
        tenant: &str,
        run_id: &str,
    ) -> anyhow::Result<()> {
        self.check_lease()?;
        self.queues.forget_release(run_id).await?;
        self.queue(pool, tenant, run_id).await
    }

    /// Releases what the pools have room for, tenant by tenant; every few seconds first
    /// publishes again what an earlier release left half done and reads the backlogs again;
    /// once a second sets the gauges.
    pub async fn round(&mut self) {
        self.room.next_round();
        if self
            .recovered
            .is_none_or(|at| at.elapsed() >= RECOVER_EVERY)
        {
            self.recovered = Some(Instant::now());
            self.recover().await;
            if let Err(error) = self.read_backlogs().await {
                tracing::warn!(error = %format!("{error:#}"), "cannot read the backlogs");
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
        if self
            .gauges_set
            .is_none_or(|at| at.elapsed() >= GAUGES_EVERY)
        {
            self.gauges_set = Some(Instant::now());
            self.set_gauges();
        }
    }

    /// Each pool's backlog and capacity gauges. A pool reported once is reported for good:
    /// when its last executor goes, its gauges say so (zero) rather than keep their last values.
    fn set_gauges(&mut self) {
        let capacity = self.executors.capacity();
        self.reported
            .extend(capacity.keys().chain(self.backlog.keys()).cloned());
        for pool in &self.reported {
            let waiting = self.backlog.get(pool).copied().unwrap_or(0);
            let seen = capacity.get(pool).cloned().unwrap_or_default();
            self.metrics.backlog(pool, waiting, seen.slots_free);
            self.metrics.capacity(pool, &seen);
        }
    }

    async fn release_pool(&mut self, pool: &str) -> anyhow::Result<()> {
        let mut room = self.room.of(pool).await;
        if room == 0 {
            return Ok(());
        }
        let waiting: BTreeSet<String> = self.queues.waiting(pool).await?.into_iter().collect();
        let weights = self.fairness.weights.clone();
        let weight = |tenant: &str| weights.get(tenant).copied().unwrap_or(1);
        self.rounds
            .entry(pool.to_owned())
            .or_default()
            .sync(&waiting, weight);
        let mut taken = 0;
        while room > 0 && taken < MOST_PER_ROUND {
            self.check_lease()?;
            let round = self.rounds.entry(pool.to_owned()).or_default();
            let Some(tenant) = round.next(weight) else {
                break;
            };
            let (run_id, backlog) = self.queues.take(pool, &tenant).await?;
            self.backlog.insert(pool.to_owned(), backlog);
            let Some(run_id) = run_id else {
                round.emptied(&tenant);
                continue;
            };
            taken += 1;
            if self.release_queued(pool, &run_id).await? {
                room -= 1;
            }
        }
        Ok(())
    }

    /// Publishes the job of a run taken off a queue; false when the run needs none (it is
    /// running or final after all, or expired).
    async fn release_queued(&mut self, pool: &str, run_id: &str) -> anyhow::Result<bool> {
        let record = self.store.get(run_id).await?;
        let Some(record) = record.filter(|record| record.run.status == RunStatus::Queued) else {
            self.queues.released(run_id).await?;
            return Ok(false);
        };
        let trace = record.trace();
        let Some(submitted) = record.submission.clone() else {
            let reason = "the run's submission was not kept, so it cannot be run";
            end_as_internal_error(&self.bus, &self.store, record, reason).await?;
            self.queues.released(run_id).await?;
            return Ok(false);
        };
        self.check_lease()?;
        self.publish(pool, submitted, trace).await?;
        self.queues.released(run_id).await?;
        Ok(true)
    }

    /// Publishes again every run taken off a queue whose job may not be in the jobs stream
    /// (the stream's duplicate window keeps a job that is there from being stored twice). One
    /// that fails is left for the next time; the others go on.
    async fn recover(&mut self) {
        let releasing = match self.queues.releasing().await {
            Ok(releasing) => releasing,
            Err(error) => {
                tracing::warn!(%error, "cannot read the runs being released");
                return;
            }
        };
        for (run_id, pool) in releasing {
            if let Err(error) = self.release_queued(&pool, &run_id).await {
                tracing::error!(%run_id, error = %format!("{error:#}"), "failed to release a run again");
            }
        }
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
        self.room.released(pool);
        self.metrics.dispatched(&language);
        tracing::info!(run_id = %dispatched.run_id, %pool, "run released");
        Ok(())
    }
}
