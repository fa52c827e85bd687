//! coderun-scheduler: from accepted runs to executor pools.
//!
//! - [`config`]: the layered configuration.
//! - [`dispatch`]: pulls the submit stream and hands each run to the releaser, acknowledging
//!   only what is safely released or queued.
//! - [`release`], [`room`]: runs released while their pool has room (its live executors' slots,
//!   from their heartbeats, less their jobs in the jobs stream), else queued per tenant in
//!   Redis and released in fair order.
//! - [`fair`]: the deficit round robin across the tenants waiting in a pool.
//! - [`lease`], [`active`]: one active scheduler at a time, through a lease in NATS; the
//!   others stand by and take over when it dies. Webhooks and metrics run on every one.
//! - [`sweeper`], [`advisory`], [`ending`]: supervision by the active scheduler: runs left
//!   queued or running by a crash are queued again or ended `internal_error` with a reason,
//!   jobs whose deliveries ran out end their runs, stale jobs leave the jobs stream.
//! - [`webhooks`]: finished runs POSTed to their `callback_url`, signed, checked against
//!   internal addresses at delivery, retried with backoff and jitter, outcome recorded.
//! - [`metrics`]: runs dispatched, every language's queue (read by [`queue_watch`]), each
//!   language's capacity, fair backlog and backlog per free slot, whether this scheduler is
//!   active, webhook outcomes, connection errors; served with `/healthz` and `/readyz` by the
//!   ops listener (`[ops]`).
//! - [`Application`]: wiring and graceful stop.
//!
//! Architecture invariant: the scheduler never runs code and never serves HTTP to clients.
//! Who goes first is decided here, never by an executor.

pub mod active;
pub mod advisory;
pub mod config;
pub mod dispatch;
pub mod ending;
pub mod fair;
pub mod lease;
pub mod metrics;
pub mod queue_watch;
pub mod release;
pub mod room;
pub mod sweeper;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use coderun_bus::{Bus, ConsumerSettings};
use coderun_store::RunStore;
use coderun_telemetry::ops::{OpsServer, ReadinessCheck};
use tokio_util::sync::CancellationToken;

use coderun_bus::executors::ExecutorView;

use crate::active::Duties;
use crate::config::Config;
use crate::lease::Lease;
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

    /// Delivers webhooks, and takes submissions and releases runs while it holds the lease,
    /// until `shutdown`.
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
        // Heard from within three heartbeats (2 s each) unless a heartbeat says otherwise.
        let executors =
            ExecutorView::follow(&self.bus, Duration::from_secs(6), shutdown.clone()).await?;
        let holder = format!(
            "scheduler-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let lease = Lease::open(
            &self.bus,
            holder.clone(),
            Duration::from_millis(self.config.leader.lease_ms),
        )
        .await?;
        tracing::info!(ops_port = self.ops.port(), %holder, "scheduler started");
        let stop_ops = CancellationToken::new();
        let ops = tokio::spawn(self.ops.run(stop_ops.clone()));
        let duties = Duties {
            bus: self.bus.clone(),
            store: self.store.clone(),
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            executors,
            submissions: consumer,
        };
        tokio::join!(
            queue_watch::watch_queues(
                self.bus.clone(),
                self.store.queues(),
                self.metrics.clone(),
                Duration::from_secs(self.config.metrics.queue_poll_secs),
                shutdown.clone(),
            ),
            active::lead(&duties, &lease, &shutdown),
            webhooks::run(
                self.store.clone(),
                self.metrics.clone(),
                self.config.webhooks.clone(),
                webhook_consumer,
                shutdown.clone(),
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
