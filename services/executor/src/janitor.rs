//! Containers of executors that are gone. Several executors may share one Docker engine (a
//! host running two, a test stack); each removes only its own leftovers when it starts. One
//! that dies (kill -9, a crash) leaves its sandbox containers running, so every executor also
//! follows the others' heartbeats and removes the containers of an executor it has not heard
//! from for `gone_after` in a row, once they are that old too.
//!
//! An executor is heard while it serves and while it drains (it sends `draining` heartbeats
//! until its own containers are removed). Nothing is removed while this executor's NATS
//! connection is down (it would hear nobody), and the silence is counted again after it comes
//! back; a young container may belong to an executor that has not sent its first heartbeat.
//! The dead executor's jobs are not the janitor's concern: JetStream delivers them again.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coderun_bus::executors::ExecutorView;
use coderun_bus::Bus;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::sandbox::Sandbox;

pub struct Janitor {
    pub sandbox: Sandbox,
    pub bus: Bus,
    pub executors: ExecutorView,
    /// How often it looks.
    pub every: Duration,
    /// How long an executor must go unheard, and its containers exist, before they go.
    pub gone_after: Duration,
}

impl Janitor {
    /// Looks every `every` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        // Since when each owner of containers here has gone unheard, as far as seen.
        let mut unheard_since: BTreeMap<String, Instant> = BTreeMap::new();
        let mut listening_since = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
            if !self.bus.is_connected() {
                unheard_since.clear();
                listening_since = Instant::now();
                continue;
            }
            if let Err(error) = self.pass(&mut unheard_since, listening_since).await {
                tracing::warn!(%error, "cannot look for containers of executors that are gone");
            }
        }
    }

    async fn pass(
        &self,
        unheard_since: &mut BTreeMap<String, Instant>,
        listening_since: Instant,
    ) -> Result<(), crate::sandbox::SandboxError> {
        let heard = self.executors.heard();
        let now = Instant::now();
        let containers = self.sandbox.deployment_containers().await?;
        let mut silent: BTreeMap<String, Instant> = BTreeMap::new();
        for container in &containers {
            let Some(owner) = &container.owner else {
                continue;
            };
            if owner == self.sandbox.executor_id() || heard.contains(owner) {
                continue;
            }
            let since = unheard_since.get(owner).copied().unwrap_or(now);
            silent.insert(owner.clone(), since.max(listening_since));
        }
        *unheard_since = silent;
        let old_enough = SystemTime::now()
            .checked_sub(self.gone_after)
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_secs() as i64);
        let mut removed = 0;
        for container in containers {
            let Some(owner) = &container.owner else {
                continue;
            };
            let gone = unheard_since
                .get(owner)
                .is_some_and(|since| now.duration_since(*since) >= self.gone_after);
            if gone
                && container
                    .created
                    .is_some_and(|created| created <= old_enough)
            {
                tracing::warn!(container = %container.id, executor = %owner, "removing a container of an executor that is gone");
                self.sandbox.remove(&container.id).await;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::warn!(removed, "removed containers of executors that are gone");
        }
        Ok(())
    }
}
