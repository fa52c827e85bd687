//! Containers of executors that are gone. Several executors may share one Docker engine (a
//! host running two, a test stack); each removes only its own leftovers when it starts. One
//! that dies (kill -9, a crash) leaves its sandbox containers running, so every executor also
//! follows the others' heartbeats and removes the containers of an executor it has not heard
//! from within its time to live. Its jobs are not its concern: JetStream delivers them again.

use std::time::Duration;

use coderun_bus::executors::ExecutorView;
use tokio_util::sync::CancellationToken;

use crate::sandbox::Sandbox;

/// Every `every`, once it has followed the heartbeats for `grace`, removes the containers of
/// executors not heard from; until `shutdown`.
pub async fn run(
    sandbox: Sandbox,
    executors: ExecutorView,
    every: Duration,
    grace: Duration,
    shutdown: CancellationToken,
) {
    let started = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        // Until then an executor that is alive may not have been heard from yet.
        if started.elapsed() < grace {
            continue;
        }
        match sandbox.remove_dead_executors(&executors.heard()).await {
            Ok(0) => {}
            Ok(removed) => tracing::warn!(removed, "removed containers of executors that are gone"),
            Err(error) => {
                tracing::warn!(%error, "cannot look for containers of executors that are gone")
            }
        }
    }
}
