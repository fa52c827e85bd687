//! Telling the rest of the system this executor is alive: an [`ExecutorHeartbeat`] every
//! interval (its languages, slots and pre-warmed containers), and a last one with
//! `draining: true` when it stops.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coderun_bus::Bus;

use crate::warm::{WarmStore, WarmTarget};
use coderun_schema::messages::{ExecutorHeartbeat, ServedLanguage, VERSION};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// Publishes heartbeats until `shutdown`, then one saying the executor is draining.
pub struct Heartbeat {
    pub bus: Bus,
    pub executor_id: String,
    pub languages: Vec<ServedLanguage>,
    pub slots_total: u32,
    /// Jobs running now.
    pub busy: Arc<AtomicU32>,
    /// The pre-warmed containers, and each language's key in them, for `warm_ready`.
    pub warm: Arc<WarmStore>,
    pub warm_targets: Vec<WarmTarget>,
    pub interval: Duration,
}

impl Heartbeat {
    fn message(&self, draining: bool) -> ExecutorHeartbeat {
        ExecutorHeartbeat {
            v: VERSION,
            executor_id: self.executor_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            languages: self
                .languages
                .iter()
                .map(|served| {
                    let ready = self
                        .warm_targets
                        .iter()
                        .find(|target| target.language == served.id)
                        .map_or(0, |target| self.warm.count(&target.key));
                    ServedLanguage {
                        warm_ready: u32::try_from(ready).unwrap_or(u32::MAX),
                        ..served.clone()
                    }
                })
                .collect(),
            slots_total: self.slots_total,
            slots_free: if draining {
                0
            } else {
                self.slots_total
                    .saturating_sub(self.busy.load(Ordering::SeqCst))
            },
            draining,
            ttl_ms: u64::try_from(self.interval.as_millis() * 3).unwrap_or(u64::MAX),
            sent_at: OffsetDateTime::now_utc(),
        }
    }

    async fn send(&self, draining: bool) {
        let subject = self.bus.names().executor_heartbeat();
        if let Err(error) = self.bus.publish(subject, &self.message(draining)).await {
            tracing::warn!(error = %coderun_bus::describe(&error), "failed to publish a heartbeat");
        }
    }

    /// Sends heartbeats until `shutdown`, then `draining` ones until `stopped`: an executor
    /// still finishing its runs is heard, so no other executor takes it for gone and removes
    /// its containers.
    pub async fn run(self, shutdown: CancellationToken, stopped: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => self.send(false).await,
            }
        }
        loop {
            self.send(true).await;
            tokio::select! {
                _ = stopped.cancelled() => break,
                _ = ticker.tick() => {}
            }
        }
        self.send(true).await;
        let _ = self.bus.client().flush().await;
    }
}
