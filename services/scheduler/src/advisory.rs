//! Jobs whose deliveries ran out: JetStream's max-deliveries advisory for the jobs stream ends
//! the job's run as `internal_error` with the reason, and deletes the job, which a work-queue
//! stream would otherwise keep (holding its pool's room) for ever.

use coderun_bus::Bus;
use coderun_schema::messages::JobDispatched;
use coderun_store::RunStore;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::ending::end_as_internal_error;

/// The advisory's fields read here (NATS's own message, not one of coderun's).
#[derive(Debug, serde::Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: u64,
}

/// Follows the advisories of every pool consumer on the jobs stream until `stop`.
pub async fn follow(bus: Bus, store: RunStore, stop: CancellationToken) {
    let subject = format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.*",
        bus.names().jobs_stream()
    );
    let mut advisories = match bus.client().subscribe(subject).await {
        Ok(subscriber) => subscriber,
        Err(error) => {
            tracing::error!(%error, "cannot follow the jobs' max-deliveries advisories; the sweeper ends such runs later");
            return;
        }
    };
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return,
            message = advisories.next() => match message {
                Some(message) => message,
                None => return,
            },
        };
        let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(&message.payload) else {
            tracing::warn!("ignoring a max-deliveries advisory that does not read");
            continue;
        };
        if let Err(error) = handle(&bus, &store, &advisory).await {
            tracing::warn!(error = %format!("{error:#}"), "failed to end a run whose job ran out of deliveries; the sweeper will");
        }
    }
}

async fn handle(bus: &Bus, store: &RunStore, advisory: &MaxDeliveries) -> anyhow::Result<()> {
    let stream = bus.ensure_jobs_stream().await?;
    let message = match stream.get_raw_message(advisory.stream_seq).await {
        Ok(message) => message,
        // Acknowledged meanwhile: an executor finished it after all.
        Err(_) => return Ok(()),
    };
    let job: JobDispatched = coderun_bus::decode(&message.payload)?;
    // A duplicate job that ran out of deliveries does not end the run another job holds.
    let record = store.get(&job.run_id).await?;
    if let Some(record) = record.filter(|record| record.held_by(advisory.stream_seq)) {
        let reason = format!(
            "no executor finished the run in {} attempts (an executor stopped while running it)",
            advisory.deliveries
        );
        end_as_internal_error(bus, store, record, &reason).await?;
    }
    stream.delete_message(advisory.stream_seq).await?;
    Ok(())
}
