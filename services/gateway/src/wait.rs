//! Waiting for a run to finish: subscribe to its events first, then read Redis, then wait for
//! a terminal event or the deadline. Subscribing first means a run that finishes between the
//! read and the wait is never missed.

use std::time::Duration;

use coderun_bus::Bus;
use coderun_schema::messages::{RunEvent, RunEventKind};
use coderun_schema::run::Run;
use coderun_store::RunStore;
use futures::StreamExt;

/// Subscribes to a run's events. Call before publishing the run, or before reading it.
pub async fn subscribe(bus: &Bus, run_id: &str) -> anyhow::Result<async_nats::Subscriber> {
    Ok(bus
        .client()
        .subscribe(bus.names().run_events(run_id))
        .await?)
}

/// Waits until the run is terminal or `timeout` passes; returns the run as it stands then.
/// The `completed` event carries the run as stored, so the answer needs no second read.
pub async fn until_terminal(
    store: &RunStore,
    mut events: async_nats::Subscriber,
    run_id: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Run>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let read = || async { anyhow::Ok(store.get(run_id).await?.map(|record| record.run)) };
    let mut run = read().await?;
    // Redis is re-read now and then too, so a lost event only delays the answer.
    let mut poll = tokio::time::interval(Duration::from_secs(1));
    poll.tick().await;
    while let Some(current) = &run {
        if current.status.is_terminal() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = poll.tick() => run = read().await?,
            event = events.next() => {
                let Some(event) = event else { break };
                let Ok(event) = coderun_bus::decode::<RunEvent>(&event.payload) else {
                    continue;
                };
                if event.kind != RunEventKind::Completed {
                    continue;
                }
                run = match event.run {
                    Some(finished) if finished.status.is_terminal() => Some(finished),
                    _ => read().await?,
                };
            }
        }
    }
    let _ = events.unsubscribe().await;
    Ok(run)
}
