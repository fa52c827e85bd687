//! Acting while holding the lease: this scheduler takes submissions and releases runs only
//! while it is the active one; it stands by otherwise, and tries again when it loses the lease.

use std::time::Duration;

use async_nats::jetstream::consumer;
use coderun_bus::executors::ExecutorView;
use coderun_bus::{async_nats, Bus};
use coderun_store::RunStore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::lease::{Lease, LeaseGuard};
use crate::metrics::SchedulerMetrics;
use crate::release::Releaser;
use crate::sweeper::Sweeper;

/// What the active scheduler works with.
pub struct Duties {
    pub bus: Bus,
    pub store: RunStore,
    pub config: Config,
    pub metrics: SchedulerMetrics,
    pub executors: ExecutorView,
    pub submissions: consumer::Consumer<consumer::pull::Config>,
}

/// Until `shutdown`: waits for the lease, acts while holding it, and hands it back at the end.
pub async fn lead(duties: &Duties, lease: &Lease, shutdown: &CancellationToken) {
    while let Some(revision) = lease.acquire(shutdown).await {
        tracing::info!("this scheduler is active");
        duties.metrics.set_active(true);
        let lost = CancellationToken::new();
        // Cancelled when the service stops or the lease is lost: the batch in hand is
        // finished first.
        let acting = CancellationToken::new();
        let done = CancellationToken::new();
        let watch = async {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = lost.cancelled() => {}
                _ = done.cancelled() => {}
            }
            acting.cancel();
        };
        let work = async {
            act(duties, &lease.guard, &acting).await;
            done.cancel();
        };
        tokio::join!(
            lease.keep(revision, done.clone(), lost.clone()),
            watch,
            work
        );
        duties.metrics.set_active(false);
        if shutdown.is_cancelled() {
            break;
        }
        tracing::warn!("this scheduler stands by");
    }
}

/// Takes submissions, releases runs, sweeps, and ends runs whose jobs ran out of deliveries,
/// until `acting` is cancelled.
async fn act(duties: &Duties, guard: &LeaseGuard, acting: &CancellationToken) {
    let releaser = loop {
        match Releaser::start(
            duties.bus.clone(),
            duties.store.clone(),
            duties.executors.clone(),
            duties.config.fairness.clone(),
            duties.metrics.clone(),
            guard.clone(),
        )
        .await
        {
            Ok(releaser) => break releaser,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot read the fair queues yet");
                tokio::select! {
                    _ = acting.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let sweeper = Sweeper {
        bus: duties.bus.clone(),
        store: duties.store.clone(),
        settings: duties.config.sweeper.clone(),
        submissions: duties.submissions.clone(),
    };
    tokio::join!(
        crate::dispatch::run(
            duties.bus.clone(),
            duties.submissions.clone(),
            duties.config.submit.batch,
            releaser,
            sweeper,
            acting.clone(),
        ),
        crate::advisory::follow(duties.bus.clone(), duties.store.clone(), acting.clone()),
    );
}
