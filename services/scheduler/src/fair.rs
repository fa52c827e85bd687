//! Fair share across tenants: deficit round robin over the tenants that have runs waiting in
//! one pool.
//!
//! Each tenant with a backlog has a place in a ring and a credit. The tenant at the front is
//! served while it has a whole credit; then it goes to the back of the ring with its weight
//! added to its credit. Every run costs one credit, so over a round each waiting tenant gets as
//! many runs released as its weight, whatever the length of its queue: a tenant's batch of 10 000
//! runs delays another tenant's single run by at most one round, not by the batch.
//!
//! The ring lives in the active scheduler's memory only. A scheduler that takes over starts a
//! fresh one from the queues in Redis; the order of one round is all that is lost.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The deficit round robin of one pool.
#[derive(Debug, Default)]
pub struct FairShare {
    /// Tenants with runs waiting, in the order they are served.
    ring: VecDeque<String>,
    /// Each ring member's runs still allowed this round.
    credit: BTreeMap<String, u64>,
}

impl FairShare {
    /// Brings the ring in line with the tenants that have runs waiting: a tenant newly
    /// waiting joins at the back with a full round's credit, one with nothing left leaves.
    pub fn sync(&mut self, waiting: &BTreeSet<String>, weight: impl Fn(&str) -> u64) {
        self.ring.retain(|tenant| waiting.contains(tenant));
        self.credit.retain(|tenant, _| waiting.contains(tenant));
        for tenant in waiting {
            if !self.credit.contains_key(tenant) {
                self.credit.insert(tenant.clone(), weight(tenant).max(1));
                self.ring.push_back(tenant.clone());
            }
        }
    }

    /// The tenant whose run goes next, or `None` when nobody waits. The caller says with
    /// [`FairShare::emptied`] when that tenant's queue turned out empty.
    pub fn next(&mut self, weight: impl Fn(&str) -> u64) -> Option<String> {
        // Every ring member has a credit of at least one once it has been moved back, so this
        // ends within one turn of the ring.
        for _ in 0..=self.ring.len() {
            let tenant = self.ring.front()?.clone();
            let credit = self.credit.entry(tenant.clone()).or_insert(0);
            if *credit >= 1 {
                *credit -= 1;
                return Some(tenant);
            }
            *credit += weight(&tenant).max(1);
            self.ring.rotate_left(1);
        }
        None
    }

    /// `tenant` has nothing waiting any more: it leaves the ring and its credit is forgotten.
    pub fn emptied(&mut self, tenant: &str) {
        self.ring.retain(|member| member != tenant);
        self.credit.remove(tenant);
    }

    /// Tenants in the ring.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(tenants: &[&str]) -> BTreeSet<String> {
        tenants.iter().map(|tenant| (*tenant).to_owned()).collect()
    }

    /// Serves `picks` runs from queues of the given lengths; the tenants in the order served.
    fn serve(
        queues: &mut BTreeMap<String, usize>,
        weights: &BTreeMap<&str, u64>,
        picks: usize,
    ) -> Vec<String> {
        let weight = |tenant: &str| weights.get(tenant).copied().unwrap_or(1);
        let mut fair = FairShare::default();
        let names: BTreeSet<String> = queues
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, _)| t.clone())
            .collect();
        fair.sync(&names, weight);
        let mut served = Vec::new();
        while served.len() < picks {
            let Some(tenant) = fair.next(weight) else {
                break;
            };
            let left = queues.get_mut(&tenant).expect("a known tenant");
            *left -= 1;
            if *left == 0 {
                fair.emptied(&tenant);
            }
            served.push(tenant);
        }
        served
    }

    #[test]
    fn a_single_run_waits_one_round_behind_a_batch() {
        let mut queues = BTreeMap::from([("a".to_owned(), 10_000), ("b".to_owned(), 1)]);
        let served = serve(&mut queues, &BTreeMap::new(), 4);
        let b_at = served.iter().position(|t| t == "b").expect("b is served");
        assert!(b_at <= 1, "{served:?}");
        assert_eq!(served.iter().filter(|t| *t == "a").count(), 3);
    }

    #[test]
    fn weights_share_the_releases() {
        let mut queues = BTreeMap::from([("a".to_owned(), 1000), ("b".to_owned(), 1000)]);
        let served = serve(&mut queues, &BTreeMap::from([("a", 3)]), 400);
        let a = served.iter().filter(|t| *t == "a").count();
        assert_eq!((a, served.len() - a), (300, 100));
    }

    #[test]
    fn a_tenant_joining_later_is_served_within_a_round() {
        let weight = |_: &str| 1;
        let mut fair = FairShare::default();
        fair.sync(&waiting(&["a", "b", "c"]), weight);
        for _ in 0..5 {
            fair.next(weight);
        }
        fair.sync(&waiting(&["a", "b", "c", "d"]), weight);
        let next: Vec<String> = (0..4).filter_map(|_| fair.next(weight)).collect();
        assert!(next.contains(&"d".to_owned()), "{next:?}");
    }

    #[test]
    fn nobody_waiting_gives_nobody() {
        let weight = |_: &str| 1;
        let mut fair = FairShare::default();
        assert_eq!(fair.next(weight), None);
        fair.sync(&waiting(&["a"]), weight);
        fair.emptied("a");
        assert!(fair.is_empty());
        assert_eq!(fair.next(weight), None);
    }
}
