//! coderun-scheduler: from accepted runs to executor pools.
//!
//! - [`config`]: the layered configuration.
//! - [`dispatch`]: pulls the submit stream and queues each run in its pool, acknowledging
//!   only what is safely queued.
//! - [`webhooks`]: finished runs POSTed to their `callback_url`, signed, checked against
//!   internal addresses at delivery, retried with backoff and jitter, outcome recorded.
//! - [`metrics`]: runs dispatched, every language's queue, webhook outcomes, connection
//!   errors; served with `/healthz` and `/readyz` by the ops listener (`[ops]`).
//! - [`Application`]: wiring and graceful stop.
//!
//! Architecture invariant: the scheduler never runs code and never serves HTTP to clients.
//! Tenant fairness, capacity checks and dead-run supervision belong here as they are built.

pub mod config;
pub mod dispatch;
pub mod metrics;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use coderun_bus::{Bus, ConsumerSettings};
use coderun_store::RunStore;
use coderun_telemetry::ops::{OpsServer, ReadinessCheck};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::SchedulerMetrics;

/// A connected scheduler.
pub struct Application {
    bus: Bus,
    store: RunStore,
    config: Config,
    metrics: SchedulerMetrics,
    ops: OpsServer,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let bus = Bus::connect_with(&config.bus, "coderun-scheduler").await?;
        bus.ensure_submit_stream().await?;
        bus.ensure_jobs_stream().await?;
        bus.ensure_webhooks_stream().await?;
        let store = RunStore::connect_with(&config.store, bus.names().clone()).await?;
        let metrics = SchedulerMetrics::new(&bus, &store);
        let readiness: ReadinessCheck = {
            let (bus, store) = (bus.clone(), store.clone());
            Arc::new(move || {
                let (bus, store) = (bus.clone(), store.clone());
                Box::pin(async move {
                    vec![
                        ("nats", bus.is_connected()),
                        ("redis", store.ping().await.is_ok()),
                    ]
                })
            })
        };
        let ops = OpsServer::bind_with(&config.ops, metrics.registry.clone(), readiness)?;
        Ok(Self {
            bus,
            store,
            config,
            metrics,
            ops,
        })
    }

    /// The port of the ops listener (`/metrics`, `/healthz`, `/readyz`).
    pub fn ops_port(&self) -> u16 {
        self.ops.port()
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
        tracing::info!(ops_port = self.ops.port(), "scheduler dispatching");
        let stop_ops = CancellationToken::new();
        let ops = tokio::spawn(self.ops.run(stop_ops.clone()));
        tokio::join!(
            metrics::watch_queues(
                self.bus.clone(),
                self.metrics.clone(),
                Duration::from_secs(self.config.metrics.queue_poll_secs),
                shutdown.clone(),
            ),
            dispatch::run(
                self.bus.clone(),
                self.metrics.clone(),
                consumer,
                self.config.submit.batch,
                shutdown.clone(),
            ),
            webhooks::run(
                self.store.clone(),
                self.metrics.clone(),
                self.config.webhooks.clone(),
                webhook_consumer,
                shutdown,
            ),
        );
        let _ = self.bus.client().flush().await;
        stop_ops.cancel();
        if let Ok(Err(error)) = ops.await {
            tracing::warn!(%error, "the ops listener failed");
        }
        tracing::info!("scheduler stopped");
        Ok(())
    }
}
