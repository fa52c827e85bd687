//! Taking accepted runs from the submit stream into their pool: straight to its jobs stream
//! when it has room and nobody waits, else into the tenant's fair queue ([`crate::release`]).
//!
//! A submission is acknowledged only once its run is in one place or the other, so a
//! scheduler that dies in between loses nothing: the submission is redelivered, and both places
//! take a run once (the jobs stream's duplicate window is keyed by run id, the queues by a set
//! of their run ids).

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, AckKind};
use coderun_bus::{async_nats, Bus};
use coderun_schema::messages::JobSubmitted;
use coderun_schema::trace::TraceContext;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::release::Releaser;
use crate::sweeper::Sweeper;

/// How long a pull waits for submissions while runs wait in the fair queues: how soon room
/// that appears is used.
const WHILE_WAITING: Duration = Duration::from_millis(50);

/// How long a pull waits for submissions while nothing waits.
const WHILE_IDLE: Duration = Duration::from_secs(1);

/// Pulls submissions and releases queued runs until `shutdown`; the batch in hand is finished
/// before it returns.
pub async fn run(
    bus: Bus,
    consumer: consumer::Consumer<consumer::pull::Config>,
    batch: usize,
    mut releaser: Releaser,
    sweeper: Sweeper,
    shutdown: CancellationToken,
) {
    let sweep_every = Duration::from_secs(sweeper.settings.every_secs);
    let mut swept = Instant::now();
    while !shutdown.is_cancelled() {
        if swept.elapsed() >= sweep_every {
            swept = Instant::now();
            if let Err(error) = sweeper.sweep(&mut releaser).await {
                tracing::warn!(error = %format!("{error:#}"), "the sweep failed; the next one tries again");
            }
        }
        releaser.round().await;
        let wait = if releaser.waiting_for_room() {
            WHILE_WAITING
        } else {
            WHILE_IDLE
        };
        let messages = tokio::select! {
            _ = shutdown.cancelled() => return,
            messages = consumer.fetch().max_messages(batch).expires(wait).messages() => messages,
        };
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                bus.count_error("fetch");
                tracing::warn!(%error, "failed to fetch submissions; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(message) = messages.next().await {
            match message {
                Ok(message) => {
                    let span = tracing::info_span!(
                        "dispatch",
                        run_id = tracing::field::Empty,
                        trace_id = tracing::field::Empty
                    );
                    let trace = coderun_telemetry::trace::join(
                        &span,
                        coderun_bus::trace_of(message.headers.as_ref()),
                    );
                    take(&bus, &mut releaser, message, trace)
                        .instrument(span)
                        .await
                }
                Err(error) => tracing::warn!(%error, "failed to receive a submission"),
            }
        }
    }
}

async fn take(
    bus: &Bus,
    releaser: &mut Releaser,
    message: jetstream::Message,
    trace: TraceContext,
) {
    let Some(submitted) = coderun_bus::decode_or_term::<JobSubmitted>(&message).await else {
        return;
    };
    tracing::Span::current().record("run_id", submitted.run_id.as_str());
    match releaser.admit(submitted, trace).await {
        Ok(()) => {
            // A plain ack, not waiting for the server's reply: an ack that is lost only brings
            // the submission back, and the run is taken once wherever it is.
            if let Err(error) = message.ack().await {
                bus.count_error("ack");
                tracing::warn!(%error, "failed to acknowledge a submission");
            }
        }
        Err(error) => {
            // Back off while Redis or NATS is away, so that an outage does not spend the
            // submission's deliveries (the sweeper still queues a run whose deliveries ran
            // out, from its record).
            let delivered = message.info().map_or(1, |info| info.delivered.max(1));
            let wait = Duration::from_secs(1 << (delivered - 1).min(5) as u32);
            tracing::error!(error = %format!("{error:#}"), ?wait, "failed to take a run; the submission will be delivered again");
            let _ = message.ack_with(AckKind::Nak(Some(wait))).await;
        }
    }
}
