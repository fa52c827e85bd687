//! Waiting for a run to finish: subscribe to its events first, then read Redis, then wait for
//! a terminal event or the deadline. Subscribing first means a run that finishes between the
//! read and the wait is never missed.

use std::time::Duration;

use coderun_bus::Bus;
use coderun_schema::messages::{RunEvent, RunEventKind, RunRecord};
use coderun_store::RunStore;
use futures::StreamExt;

/// Subscribes to a run's events. Call before publishing the run, or before reading it.
pub async fn subscribe(bus: &Bus, run_id: &str) -> anyhow::Result<async_nats::Subscriber> {
    Ok(bus
        .client()
        .subscribe(bus.names().run_events(run_id))
        .await?)
}

/// Waits until the run is terminal or `timeout` passes; returns the latest record.
pub async fn until_terminal(
    store: &RunStore,
    mut events: async_nats::Subscriber,
    run_id: &str,
    timeout: Duration,
) -> anyhow::Result<Option<RunRecord>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut record = store.get(run_id).await?;
    // Redis is re-read now and then too, so a lost event only delays the answer.
    let mut poll = tokio::time::interval(Duration::from_secs(1));
    poll.tick().await;
    while let Some(current) = &record {
        if current.run.status.is_terminal() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = poll.tick() => record = store.get(run_id).await?,
            event = events.next() => {
                let Some(event) = event else { break };
                if let Ok(event) = coderun_bus::decode::<RunEvent>(&event.payload) {
                    if event.kind == RunEventKind::Completed {
                        record = store.get(run_id).await?;
                    }
                }
            }
        }
    }
    let _ = events.unsubscribe().await;
    Ok(record)
}
