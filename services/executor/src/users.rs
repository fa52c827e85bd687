//! Program users: each run in flight on this host gets two users of its own, one to compile and
//! one to run the tests, so no two concurrent runs share a user and its per-user kernel counters
//! (inotify instances, message-queue bytes, pipe buffers, processes), and a test can change
//! nothing its compile stage left.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Hands out pairs of uids: lease `n` is `first + 2n` (compile) and `first + 2n + 1` (run), and
/// `first - 1 - n` as the fast mode's inner root. The lowest free lease is taken; there is
/// always one (it grows past the slots rather than wait).
#[derive(Debug)]
pub struct ProgramUsers {
    first: u32,
    taken: Mutex<BTreeSet<u32>>,
}

/// One run's users, given back when dropped.
#[derive(Debug)]
pub struct UserLease {
    users: Arc<ProgramUsers>,
    index: u32,
    pub compile_uid: u32,
    pub run_uid: u32,
    /// The host user mapped to root inside the run's inner sandbox in the fast mode
    /// (`first - 1 - n`): unprivileged, and the run's own. (The run user creates the inner
    /// user namespace, so the kernel's per-user counters of the run's programs are charged to
    /// a user of the run's own, never to the host's root or another run.)
    pub inner_root_uid: u32,
}

impl ProgramUsers {
    pub fn new(first: u32) -> Arc<Self> {
        Arc::new(Self {
            first,
            taken: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<u32>> {
        self.taken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The users of one run, for as long as the lease lives.
    pub fn lease(self: &Arc<Self>) -> UserLease {
        let mut taken = self.lock();
        let index = (0..).find(|index| !taken.contains(index)).unwrap_or(0);
        taken.insert(index);
        let compile_uid = self.first + 2 * index;
        UserLease {
            users: self.clone(),
            index,
            compile_uid,
            run_uid: compile_uid + 1,
            inner_root_uid: self.first.saturating_sub(1 + index).max(1),
        }
    }
}

impl Drop for UserLease {
    fn drop(&mut self) {
        self.users.lock().remove(&self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::ProgramUsers;

    #[test]
    fn concurrent_runs_get_distinct_users_and_free_ones_are_reused() {
        let users = ProgramUsers::new(60_000);
        let first = users.lease();
        let second = users.lease();
        assert_eq!((first.compile_uid, first.run_uid), (60_000, 60_001));
        assert_eq!((second.compile_uid, second.run_uid), (60_002, 60_003));
        assert_eq!(
            (first.inner_root_uid, second.inner_root_uid),
            (59_999, 59_998)
        );
        drop(first);
        let third = users.lease();
        assert_eq!(third.compile_uid, 60_000, "the lowest free pair comes back");
    }
}
