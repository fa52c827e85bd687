//! Every language's queue, read every `metrics.queue_poll_secs` for its gauges: the runs
//! waiting in its fair queues and the jobs released to the jobs stream that no executor has
//! taken yet, and how long the oldest of them has waited.

use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use coderun_bus::{async_nats, Bus};
use coderun_schema::catalog::Catalog;
use coderun_schema::names::Names;
use coderun_store::FairQueues;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::metrics::SchedulerMetrics;

/// One language's queue: jobs no executor has taken, and the oldest one's age.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueReading {
    pub depth: u64,
    pub oldest_age: Duration,
}

/// Reads every catalog language's queue every `every` until `shutdown`. A reading that fails
/// (NATS away) leaves the gauges as they were and is counted as a NATS error.
pub async fn watch_queues(
    bus: Bus,
    queues: FairQueues,
    metrics: SchedulerMetrics,
    every: Duration,
    shutdown: CancellationToken,
) {
    let languages: Vec<String> = Catalog::builtin()
        .languages
        .into_iter()
        .map(|spec| spec.id)
        .collect();
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let stream = match bus.ensure_jobs_stream().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(error = %coderun_bus::describe(&error), "cannot read the queues");
                continue;
            }
        };
        for language in &languages {
            if shutdown.is_cancelled() {
                return;
            }
            let reading = match read_queue(&stream, bus.names(), language).await {
                Ok(reading) => with_fair_queue(reading, &queues, language).await,
                Err(error) => Err(error),
            };
            match reading {
                Ok(reading) => metrics.queue(language, &reading),
                Err(error) => {
                    bus.count_error("queue_read");
                    tracing::debug!(%language, %error, "failed to read a queue");
                }
            }
        }
    }
}

/// Adds the runs waiting in the language's fair queues to a reading of its jobs stream: the
/// depth is everything that waits for an executor, the age the oldest of all.
async fn with_fair_queue(
    mut reading: QueueReading,
    queues: &FairQueues,
    language: &str,
) -> Result<QueueReading, async_nats::Error> {
    let pool = Names::pool_of(language);
    reading.depth += queues.backlog(&pool).await?;
    if let Some(created) = queues.oldest(&pool).await? {
        let created = std::time::UNIX_EPOCH + Duration::from_millis(created);
        let age = std::time::SystemTime::now()
            .duration_since(created)
            .unwrap_or(Duration::ZERO);
        reading.oldest_age = reading.oldest_age.max(age);
    }
    Ok(reading)
}

/// Reads one language's queue: the jobs after what its pool consumer has delivered (or all
/// of them when no executor has created the consumer yet), and the first one's age. Any
/// failure is an error (the gauges keep their last values), never a reading of zero.
pub async fn read_queue(
    stream: &Stream,
    names: &Names,
    language: &str,
) -> Result<QueueReading, async_nats::Error> {
    let pool = Names::pool_of(language);
    let subject = names.jobs(&pool);
    let (depth, after) = match stream.consumer_info(names.pool_consumer(&pool)).await {
        Ok(info) => (info.num_pending, info.delivered.stream_sequence + 1),
        Err(error) if is_not_found(&error) => {
            let mut info = stream.info_with_subjects(&subject).await?;
            let count = futures::TryStreamExt::try_next(&mut info)
                .await?
                .map_or(0, |(_, count)| count as u64);
            (count, 1)
        }
        Err(error) => return Err(error.into()),
    };
    if depth == 0 {
        return Ok(QueueReading {
            depth: 0,
            oldest_age: Duration::ZERO,
        });
    }
    let oldest = match stream
        .get_first_raw_message_by_subject(&subject, after)
        .await
    {
        Ok(oldest) => oldest,
        // Taken by an executor since the count: the queue is empty now.
        Err(error)
            if matches!(
                error.kind(),
                async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound
            ) =>
        {
            return Ok(QueueReading {
                depth: 0,
                oldest_age: Duration::ZERO,
            });
        }
        Err(error) => return Err(error.into()),
    };
    let age = OffsetDateTime::now_utc() - oldest.time;
    Ok(QueueReading {
        depth,
        oldest_age: Duration::try_from(age).unwrap_or(Duration::ZERO),
    })
}

/// Whether JetStream said the consumer does not exist (no executor of the pool started yet).
fn is_not_found(error: &async_nats::jetstream::context::ConsumerInfoError) -> bool {
    use async_nats::jetstream::context::ConsumerInfoErrorKind;
    match error.kind() {
        ConsumerInfoErrorKind::NotFound => true,
        ConsumerInfoErrorKind::JetStream(inner) => {
            inner.error_code() == async_nats::jetstream::ErrorCode::CONSUMER_NOT_FOUND
        }
        _ => false,
    }
}
