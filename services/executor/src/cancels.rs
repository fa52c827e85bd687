//! Cancelling runs in flight: the gateway makes a cancelled run's record final, then asks on
//! `<prefix>.runs.cancel.<id>`; the executor running that run kills its sandbox.
//!
//! Each job registers its run for as long as it is handled ([`Cancels::register`]); one
//! subscription per executor ([`Cancels::listen`]) fires the registered token. A request for a
//! run this executor is not running is ignored: another executor runs it, or nobody does
//! (a queued run is found final when it is picked up, and never starts).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use coderun_bus::Bus;
use coderun_schema::messages::CancelRequested;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// The runs this executor is handling, each with the token that stops its sandbox.
#[derive(Clone, Default)]
pub struct Cancels {
    running: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

/// A run's registration; dropping it forgets the run.
pub struct Registration {
    cancels: Cancels,
    run_id: String,
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
        self.cancels.with(|running| running.remove(&self.run_id));
    }
}

impl Cancels {
    fn with<T>(&self, change: impl FnOnce(&mut HashMap<String, CancellationToken>) -> T) -> T {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut running)
    }

    /// Registers a run being handled here.
    pub fn register(&self, run_id: &str) -> Registration {
        let token = CancellationToken::new();
        self.with(|running| running.insert(run_id.to_owned(), token.clone()));
        Registration {
            cancels: self.clone(),
            run_id: run_id.to_owned(),
            token,
        }
    }

    /// Cancels a run if it is handled here; says whether it was.
    pub fn cancel(&self, run_id: &str) -> bool {
        let token = self.with(|running| running.get(run_id).cloned());
        token.map(|token| token.cancel()).is_some()
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
}
