//! Cancelling runs in flight: the gateway makes a cancelled run's record final, then asks on
//! `<prefix>.runs.cancel.<id>`; the executor running that run kills its sandbox.
//!
//! Each job registers its run for as long as it is handled ([`Cancels::register`]); one
//! subscription per executor ([`Cancels::listen`]) fires the registered tokens — every job of
//! the run handled here (a duplicate job of a run may be in hand beside the one running it),
//! and each job's registration forgets only its own token. A request for a
//! run this executor is not running is ignored: another executor runs it, or nobody does
//! (a queued run is found final when it is picked up, and never starts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use coderun_bus::Bus;
use coderun_schema::messages::CancelRequested;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Each job's registration: its number and the token that stops its sandbox.
type Jobs = Vec<(u64, CancellationToken)>;

/// The runs this executor is handling, each with the tokens of the jobs handling it.
#[derive(Clone, Default)]
pub struct Cancels {
    running: Arc<Mutex<HashMap<String, Jobs>>>,
    /// Numbers the registrations, so that each forgets only its own token.
    registered: Arc<AtomicU64>,
}

/// A job's registration of its run; dropping it forgets this job's token.
pub struct Registration {
    cancels: Cancels,
    run_id: String,
    number: u64,
    token: CancellationToken,
}

impl Registration {
    /// Fires when the run is cancelled.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cancels.with(|running| {
            if let Some(jobs) = running.get_mut(&self.run_id) {
                jobs.retain(|(number, _)| *number != self.number);
                if jobs.is_empty() {
                    running.remove(&self.run_id);
                }
            }
        });
    }
}

impl Cancels {
    fn with<T>(&self, change: impl FnOnce(&mut HashMap<String, Jobs>) -> T) -> T {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut running)
    }

    /// Registers a run being handled here by one job.
    pub fn register(&self, run_id: &str) -> Registration {
        let token = CancellationToken::new();
        let number = self.registered.fetch_add(1, Ordering::Relaxed);
        self.with(|running| {
            running
                .entry(run_id.to_owned())
                .or_default()
                .push((number, token.clone()))
        });
        Registration {
            cancels: self.clone(),
            run_id: run_id.to_owned(),
            number,
            token,
        }
    }

    /// Cancels a run if it is handled here (every job of it); says whether it was.
    pub fn cancel(&self, run_id: &str) -> bool {
        let tokens = self.with(|running| running.get(run_id).cloned().unwrap_or_default());
        for (_, token) in &tokens {
            token.cancel();
        }
        !tokens.is_empty()
    }

    /// Follows the cancel requests until `shutdown`.
    pub async fn listen(self, bus: Bus, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut requests = bus
            .client()
            .subscribe(bus.names().run_cancel_all())
            .await
            .map_err(|error| anyhow::anyhow!("failed to follow cancel requests: {error}"))?;
        loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                message = requests.next() => match message {
                    Some(message) => message,
                    None => return Ok(()),
                },
            };
            match coderun_bus::decode::<CancelRequested>(&message.payload) {
                Ok(request) if self.cancel(&request.run_id) => {
                    tracing::info!(run_id = %request.run_id, "run cancelled: stopping its sandbox");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "an unreadable cancel request"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_registered_run_is_cancelled_and_only_while_registered() {
        let cancels = Cancels::default();
        assert!(!cancels.cancel("run_1"), "nothing runs yet");
        let registration = cancels.register("run_1");
        let other = cancels.register("run_2");
        assert!(cancels.cancel("run_1"));
        assert!(registration.token().is_cancelled());
        assert!(!other.token().is_cancelled(), "only that run");
        drop(registration);
        assert!(!cancels.cancel("run_1"), "forgotten once handled");
        assert!(cancels.cancel("run_2"));
    }

    #[test]
    fn a_duplicate_job_of_a_run_leaves_the_first_ones_registration_alone() {
        let cancels = Cancels::default();
        let holding = cancels.register("run_1");
        let duplicate = cancels.register("run_1");
        drop(duplicate);
        assert!(
            cancels.cancel("run_1"),
            "the job holding the run is still known"
        );
        assert!(holding.token().is_cancelled());
    }
}
