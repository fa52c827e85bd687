//! The sweeper: whatever crashed, no run stays `queued` or `running` for ever, and no job of a
//! final run holds a pool's room.
//!
//! Every `sweeper.every_secs` the active scheduler, between two release rounds:
//! 1. reads the jobs stream (it holds at most each pool's room) and deletes the jobs of runs
//!    that are final or gone, once older than `sweeper.stale_job_secs` (a job whose
//!    deliveries ran out stays in a work-queue stream otherwise);
//! 2. ends as `internal_error` every `running` run past its limits' wall time plus
//!    `sweeper.running_margin_secs` since it started: no executor is running it any more (an
//!    executor that dies has its job delivered again within the jobs' ack wait, well inside
//!    the margin, and the next executor marks the run running afresh);
//! 3. when the submit stream holds nothing (no submission is on its way), queues again every
//!    run `queued` for longer than `sweeper.lost_after_secs` that is nowhere: not in a fair
//!    queue, not being released, not in the jobs stream. Redis says queued, NATS has nothing:
//!    its submission or its job was lost, and the record holds the submission.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::consumer;
use coderun_bus::{async_nats, Bus};
use coderun_schema::messages::JobDispatched;
use coderun_schema::names::Names;
use coderun_schema::run::RunStatus;
use coderun_store::RunStore;
use time::OffsetDateTime;

use crate::config::SweeperConfig;
use crate::ending::end_as_internal_error;
use crate::release::Releaser;

/// The most jobs one sweep reads from the jobs stream.
const MOST_JOBS_READ: u64 = 10_000;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub stale_jobs_deleted: u64,
    pub runs_ended: u64,
    pub runs_queued_again: u64,
}

pub struct Sweeper {
    pub bus: Bus,
    pub store: RunStore,
    pub settings: SweeperConfig,
    pub submissions: consumer::Consumer<consumer::pull::Config>,
}

impl Sweeper {
    /// One sweep; `releaser` takes the runs queued again.
    pub async fn sweep(&self, releaser: &mut Releaser) -> anyhow::Result<Swept> {
        let mut swept = Swept::default();
        let in_jobs = self.sweep_jobs(&mut swept).await?;
        self.end_overdue(&mut swept).await?;
        let mut submissions = self.submissions.clone();
        let submit = submissions.info().await?;
        if submit.num_pending == 0 && submit.num_ack_pending == 0 {
            self.queue_lost(&in_jobs, releaser, &mut swept).await?;
        }
        if swept != Swept::default() {
            tracing::warn!(?swept, "the sweeper found work left behind");
        }
        Ok(swept)
    }

    /// Deletes stale jobs of final runs; the run ids of the jobs in the stream.
    async fn sweep_jobs(&self, swept: &mut Swept) -> anyhow::Result<BTreeSet<String>> {
        let mut stream = self.bus.ensure_jobs_stream().await?;
        let state = stream.info().await?.state.clone();
        let mut in_jobs = BTreeSet::new();
        if state.messages == 0 {
            return Ok(in_jobs);
        }
        let stale = Duration::from_secs(self.settings.stale_job_secs);
        let last = state
            .last_sequence
            .min(state.first_sequence + MOST_JOBS_READ);
        for sequence in state.first_sequence..=last {
            let Ok(message) = stream.get_raw_message(sequence).await else {
                continue; // acknowledged (removed) meanwhile, or never there
            };
            let Ok(job) = coderun_bus::decode::<JobDispatched>(&message.payload) else {
                continue;
            };
            let age = OffsetDateTime::now_utc() - message.time;
            let record = self.store.get(&job.run_id).await?;
            let finished = record.is_none_or(|record| record.run.status.is_terminal());
            if finished && age > stale {
                stream.delete_message(sequence).await?;
                swept.stale_jobs_deleted += 1;
            } else {
                in_jobs.insert(job.run_id);
            }
        }
        Ok(in_jobs)
    }

    /// Ends the `running` runs no executor can still be running.
    async fn end_overdue(&self, swept: &mut Swept) -> anyhow::Result<()> {
        let margin = Duration::from_secs(self.settings.running_margin_secs);
        for run_id in self.store.runs_in_state(RunStatus::Running, None).await? {
            let Some(record) = self.store.get(&run_id).await? else {
                continue;
            };
            let (Some(started), Some(submitted)) = (record.run.started_at, &record.submission)
            else {
                continue;
            };
            if record.run.status != RunStatus::Running {
                continue;
            }
            let budget = Duration::from_millis(submitted.job.wall_ms_budget());
            let overdue = started + budget + margin;
            if OffsetDateTime::now_utc() > overdue {
                let reason = "the executor running it stopped before it finished";
                if end_as_internal_error(&self.bus, &self.store, record, reason).await? {
                    swept.runs_ended += 1;
                }
            }
        }
        Ok(())
    }

    /// Queues again the runs queued long ago that are nowhere.
    async fn queue_lost(
        &self,
        in_jobs: &BTreeSet<String>,
        releaser: &mut Releaser,
        swept: &mut Swept,
    ) -> anyhow::Result<()> {
        let queues = self.store.queues();
        let releasing = queues.releasing().await?;
        let before = SystemTime::now()
            .checked_sub(Duration::from_secs(self.settings.lost_after_secs))
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_millis() as u64);
        for run_id in self
            .store
            .runs_in_state(RunStatus::Queued, Some(before))
            .await?
        {
            if in_jobs.contains(&run_id) || releasing.contains_key(&run_id) {
                continue;
            }
            let Some(record) = self.store.get(&run_id).await? else {
                continue;
            };
            if record.run.status != RunStatus::Queued {
                continue;
            }
            let pool = Names::pool_of(&record.run.language);
            if queues.is_queued(&pool, &run_id).await? {
                continue;
            }
            let Some(submitted) = record.submission else {
                continue;
            };
            tracing::warn!(%run_id, %pool, "a queued run was nowhere; queuing it again");
            releaser
                .queue_again(&pool, &submitted.tenant, &run_id)
                .await?;
            swept.runs_queued_again += 1;
        }
        Ok(())
    }
}
