//! Moving accepted runs from the submit stream to their pool's queue.
//!
//! A submission is acknowledged only after its job is stored in the jobs stream, so a
//! scheduler that dies in between loses nothing: the submission is redelivered, and the jobs
//! stream's duplicate window (keyed by run id) keeps the retry from queuing the run twice.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use coderun_bus::{async_nats, Bus};
use coderun_schema::messages::{JobDispatched, JobSubmitted, VERSION};
use coderun_schema::names::Names;
use coderun_schema::trace::TraceContext;
use futures::StreamExt;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::metrics::SchedulerMetrics;

/// The pool a job goes to (the rule is `Names::pool_of`).
pub fn pool_for(submitted: &JobSubmitted) -> String {
    Names::pool_of(&submitted.job.language)
}

/// Pulls submissions until `shutdown`; the batch in hand is finished before it returns.
pub async fn run(
    bus: Bus,
    metrics: SchedulerMetrics,
    consumer: consumer::Consumer<consumer::pull::Config>,
    batch: usize,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let messages = tokio::select! {
            _ = shutdown.cancelled() => return,
            messages = consumer.fetch().max_messages(batch).expires(Duration::from_secs(1)).messages() => messages,
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
                    dispatch(&bus, &metrics, message, trace)
                        .instrument(span)
                        .await
                }
                Err(error) => tracing::warn!(%error, "failed to receive a submission"),
            }
        }
    }
}

async fn dispatch(
    bus: &Bus,
    metrics: &SchedulerMetrics,
    message: jetstream::Message,
    trace: TraceContext,
) {
    let Some(submitted) = coderun_bus::decode_or_term::<JobSubmitted>(&message).await else {
        return;
    };
    tracing::Span::current().record("run_id", submitted.run_id.as_str());
    let pool = pool_for(&submitted);
    let language = submitted.job.language.clone();
    let dispatched = JobDispatched {
        v: VERSION,
        run_id: submitted.run_id.clone(),
        tenant: submitted.tenant,
        pool: pool.clone(),
        job: submitted.job,
        submitted_at: submitted.submitted_at,
        dispatched_at: OffsetDateTime::now_utc(),
    };
    let subject = bus.names().jobs(&pool);
    match bus
        .publish_durable_traced(subject, &dispatched, &dispatched.run_id, Some(trace))
        .await
    {
        Ok(()) => {
            metrics.dispatched(&language);
            // A plain ack, not waiting for the server's reply: an ack that is lost only brings
            // the submission back, and the duplicate window absorbs the second publish.
            if let Err(error) = message.ack().await {
                bus.count_error("ack");
                tracing::warn!(%error, "failed to acknowledge a dispatched submission");
            }
            tracing::info!(%pool, "run dispatched");
        }
        Err(error) => {
            tracing::error!(%error, "failed to queue a job; the submission will be redelivered");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
        }
    }
}
