//! coderun-scheduler: from accepted runs to executor pools.
//!
//! - [`config`]: the layered configuration.
//! - [`dispatch`]: pulls the submit stream and queues each run in its pool, acknowledging
//!   only what is safely queued.
//! - [`webhooks`]: finished runs POSTed to their `callback_url`, signed, checked against
//!   internal addresses at delivery, retried with backoff and jitter, outcome recorded.
//! - [`Application`]: wiring and graceful stop.
//!
//! Architecture invariant: the scheduler never runs code and never serves HTTP to clients.
//! Tenant fairness, capacity checks and dead-run supervision belong here as they are built.

pub mod config;
pub mod dispatch;
pub mod webhooks;

use std::time::Duration;

use coderun_bus::{Bus, ConsumerSettings};
use coderun_store::RunStore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// A connected scheduler.
pub struct Application {
    bus: Bus,
    store: RunStore,
    config: Config,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let bus = Bus::connect_with(&config.bus, "coderun-scheduler").await?;
        bus.ensure_submit_stream().await?;
        bus.ensure_jobs_stream().await?;
        bus.ensure_webhooks_stream().await?;
        let store = RunStore::connect_with(&config.store, bus.names().clone()).await?;
        Ok(Self { bus, store, config })
    }

    /// Dispatches until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let consumer = self
            .bus
            .submit_consumer(ConsumerSettings {
                ack_wait: Duration::from_secs(self.config.submit.ack_wait_secs),
                max_deliver: self.config.submit.max_deliver,
            })
            .await?;
        let webhook_consumer = self
            .bus
            .webhook_consumer(ConsumerSettings {
                // One attempt at a time: it ends within its timeout, progress acks cover it.
                ack_wait: Duration::from_secs(60),
                // Each retry is a redelivery; `give_up_after_secs` bounds them, not a count.
                max_deliver: -1,
            })
            .await?;
        tracing::info!("scheduler dispatching");
        tokio::join!(
            dispatch::run(
                self.bus.clone(),
                consumer,
                self.config.submit.batch,
                shutdown.clone(),
            ),
            webhooks::run(
                self.store.clone(),
                self.config.webhooks.clone(),
                webhook_consumer,
                shutdown,
            ),
        );
        let _ = self.bus.client().flush().await;
        tracing::info!("scheduler stopped");
        Ok(())
    }
}
