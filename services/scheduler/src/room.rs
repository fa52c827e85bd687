//! How many jobs a pool can take now: its room.
//!
//! A pool's executors are the live ones serving it. Their capacity is their slots plus
//! `fairness.ready_per_executor` jobs each (waiting, so that a slot that frees finds its next
//! job). Their load is every job in the jobs stream (released, not finished) of every pool
//! they serve: an executor's slots are shared by all its languages, so a pool's room shrinks
//! with its executors' other work. In a fleet where every executor serves every language this
//! is one gate for all pools.
//!
//! The jobs per pool are an estimate: the last reading of the jobs stream plus the jobs
//! released since. The stream is read again when the estimate says a pool is full, at most
//! once per release round.

use std::collections::{BTreeMap, BTreeSet};

use coderun_bus::executors::ExecutorView;
use coderun_bus::Bus;

pub struct Room {
    bus: Bus,
    executors: ExecutorView,
    ready_per_executor: u32,
    /// Jobs in the stream per pool at the last reading, plus those released since.
    jobs: BTreeMap<String, u64>,
    /// Whether the stream was read in this round.
    read_this_round: bool,
}

impl Room {
    /// Starts from a reading of the jobs stream, so that a scheduler taking over does not
    /// release on top of its predecessor's jobs.
    pub async fn new(bus: Bus, executors: ExecutorView, ready_per_executor: u32) -> Self {
        let jobs = match bus.jobs_by_pool().await {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(error = %coderun_bus::describe(&error), "cannot read the jobs stream yet");
                BTreeMap::new()
            }
        };
        Self {
            bus,
            executors,
            ready_per_executor,
            jobs,
            read_this_round: false,
        }
    }

    /// A new release round: the stream may be read again.
    pub fn next_round(&mut self) {
        self.read_this_round = false;
    }

    /// A job of `pool` was released.
    pub fn released(&mut self, pool: &str) {
        *self.jobs.entry(pool.to_owned()).or_default() += 1;
    }

    /// Capacity and the pools sharing it, of `pool`'s live executors.
    fn group(&self, pool: &str) -> (u64, BTreeSet<String>) {
        let mut capacity = 0;
        let mut pools = BTreeSet::new();
        for executor in self.executors.live() {
            if executor.pools.contains(pool) {
                capacity += u64::from(executor.slots_total) + u64::from(self.ready_per_executor);
                pools.extend(executor.pools);
            }
        }
        (capacity, pools)
    }

    /// Whether some live executor serves `pool`.
    pub fn served(&self, pool: &str) -> bool {
        self.group(pool).0 > 0
    }

    /// Jobs `pool` can take now.
    pub async fn of(&mut self, pool: &str) -> u64 {
        let (capacity, pools) = self.group(pool);
        if capacity == 0 {
            return 0;
        }
        let load = |jobs: &BTreeMap<String, u64>| -> u64 {
            pools.iter().filter_map(|pool| jobs.get(pool)).sum()
        };
        let estimate = load(&self.jobs);
        if estimate < capacity || self.read_this_round {
            return capacity.saturating_sub(estimate);
        }
        self.read_this_round = true;
        match self.bus.jobs_by_pool().await {
            Ok(jobs) => self.jobs = jobs,
            Err(error) => {
                tracing::warn!(error = %coderun_bus::describe(&error), "cannot read the jobs stream");
                return 0;
            }
        }
        capacity.saturating_sub(load(&self.jobs))
    }
}
