//! Fast mode's idle containers: each bound to the tenant whose runs it served, kept between
//! runs, and the ones whose agent is still ending a run's inner sandbox ("settling").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::warm::ReadyContainer;

/// A started fast container between runs.
pub struct Reusable {
    pub ready: ReadyContainer,
    /// The container's first process on the host: its cgroup holds the run's limits.
    pub host_pid: i64,
    /// Runs it has served.
    pub runs: u32,
    pub created: Instant,
    /// Its share of `reuse_max_runs` and `reuse_max_secs` ([`ReuseBudget::for_container`]).
    pub budget: ReuseBudget,
}

/// How many runs, and for how long, one fast container serves: between three quarters of
/// `reuse_max_runs` / `reuse_max_secs` and all of each, drawn from the container's id. Containers
/// made together (at start-up, or for one burst) then reach their end one by one, not all in
/// the same second: replacing one costs the machine about a hundred runs' worth of CPU, which
/// the runs in flight would otherwise feel all at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseBudget {
    pub runs: u32,
    pub secs: u64,
}

impl ReuseBudget {
    pub fn for_container(id: &str, max_runs: u32, max_secs: u64) -> Self {
        // Engine ids are random hexadecimal; anything else draws the full budget.
        let draw = id
            .get(..12)
            .and_then(|digits| u64::from_str_radix(digits, 16).ok())
            .unwrap_or(0);
        let less = |limit: u64| limit - draw % (limit / 4 + 1);
        Self {
            runs: u32::try_from(less(u64::from(max_runs)))
                .unwrap_or(max_runs)
                .max(1),
            secs: less(max_secs),
        }
    }

    /// Whether a container that has served `runs` since `created` may serve another.
    pub fn allows(&self, runs: u32, created: Instant) -> bool {
        runs < self.runs && created.elapsed().as_secs() < self.secs
    }
}

/// Idle fast containers, each bound to the tenant whose runs it served.
#[derive(Default)]
pub struct ReuseStore {
    /// (tenant, container key, container), the longest idle first.
    idle: Mutex<Vec<(String, String, Reusable)>>,
    /// (tenant, container key) of each container whose agent has answered and is ending its
    /// inner sandbox: it will be idle in a moment, unless the agent cannot vouch for it.
    settling: Mutex<Vec<(String, String)>>,
    /// Woken whenever a container stops settling.
    settled: Notify,
    /// Set by [`ReuseStore::drain`] at shutdown: nothing is kept after it.
    closed: AtomicBool,
}

impl ReuseStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, String, Reusable)>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The tenant's idle container for `key`; if none is idle but one is settling, waits for
    /// it up to `within` (a container the tenant just used beats a pre-warmed one: the warm
    /// pool stays for other tenants and no idle container piles up).
    pub async fn take_soon(&self, tenant: &str, key: &str, within: Duration) -> Option<Reusable> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(container) = self.take(tenant, key) {
                return Some(container);
            }
            let settling = self
                .settling()
                .iter()
                .any(|(owner, wanted)| owner == tenant && wanted == key);
            if !settling || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Notes a container of the tenant's that is settling.
    pub fn settling_started(&self, tenant: &str, key: &str) {
        self.settling().push((tenant.to_owned(), key.to_owned()));
    }

    /// The container noted by [`ReuseStore::settling_started`] is kept or gone.
    pub fn settling_ended(&self, tenant: &str, key: &str) {
        let mut settling = self.settling();
        if let Some(position) = settling
            .iter()
            .position(|(owner, wanted)| owner == tenant && wanted == key)
        {
            settling.remove(position);
        }
        drop(settling);
        self.settled.notify_waiters();
    }

    fn settling(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        self.settling
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The tenant's idle container for `key` that went idle last, if any.
    pub fn take(&self, tenant: &str, key: &str) -> Option<Reusable> {
        let mut idle = self.lock();
        let position = idle
            .iter()
            .rposition(|(owner, wanted, _)| owner == tenant && wanted == key)?;
        Some(idle.remove(position).2)
    }

    /// Keeps a container for its tenant; returns the ids of those to remove to stay within
    /// `most` (the longest idle first), or of all of them once the store is drained.
    pub fn put(&self, tenant: &str, key: &str, container: Reusable, most: usize) -> Vec<String> {
        let mut idle = self.lock();
        idle.push((tenant.to_owned(), key.to_owned(), container));
        let most = if self.closed.load(Ordering::SeqCst) {
            0
        } else {
            most
        };
        let excess = idle.len().saturating_sub(most);
        idle.drain(..excess)
            .map(|(_, _, container)| container.ready.id)
            .collect()
    }

    /// The ids of every idle container.
    pub fn ids(&self) -> Vec<String> {
        self.lock()
            .iter()
            .map(|(_, _, container)| container.ready.id.clone())
            .collect()
    }

    /// Idle containers now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Empties the store for good (shutdown), returning every container id it held.
    pub fn drain(&self) -> Vec<String> {
        let mut idle = self.lock();
        self.closed.store(true, Ordering::SeqCst);
        idle.drain(..)
            .map(|(_, _, container)| container.ready.id)
            .collect()
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn containers_get_between_three_quarters_and_all_of_the_budget_spread_by_their_ids() {
        let ids = [
            "0000000000000000aa",
            "3f2a9c0d11e4b7aa00",
            "a1b2c3d4e5f60000ff",
            "ffffffffffff000000",
            "not-hex",
        ];
        let budgets: Vec<ReuseBudget> = ids
            .iter()
            .map(|id| ReuseBudget::for_container(id, 1000, 600))
            .collect();
        for budget in &budgets {
            assert!((750..=1000).contains(&budget.runs), "{budget:?}");
            assert!((450..=600).contains(&budget.secs), "{budget:?}");
        }
        assert_eq!(
            budgets[0],
            ReuseBudget {
                runs: 1000,
                secs: 600
            }
        );
        assert_eq!(
            budgets[4],
            ReuseBudget {
                runs: 1000,
                secs: 600
            }
        );
        let distinct: std::collections::BTreeSet<u32> = budgets.iter().map(|b| b.runs).collect();
        assert!(distinct.len() >= 3, "{budgets:?}");
        // One run per container is still one run.
        assert_eq!(ReuseBudget::for_container("3f2a9c0d11e4", 1, 600).runs, 1);
        let fresh = ReuseBudget { runs: 2, secs: 600 };
        assert!(fresh.allows(1, Instant::now()));
        assert!(!fresh.allows(2, Instant::now()));
    }
}
