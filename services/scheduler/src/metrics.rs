//! The scheduler's Prometheus metrics (served by its ops listener): runs dispatched by
//! language, every language's queue (depth and oldest job's age, read by [`watch_queues`]),
//! webhook outcomes, and the NATS and Redis errors of its connections. The catalog is
//! `docs/observability.md`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use coderun_bus::{async_nats, Bus};
use coderun_schema::catalog::Catalog;
use coderun_schema::names::Names;
use coderun_store::{FairQueues, RunStore};
use coderun_telemetry::metrics::{labels, Labels};
use coderun_telemetry::prometheus_client::metrics::counter::Counter;
use coderun_telemetry::prometheus_client::metrics::family::Family;
use coderun_telemetry::prometheus_client::metrics::gauge::Gauge;
use coderun_telemetry::prometheus_client::registry::Registry;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// What the scheduler measures, registered in a registry of its own.
#[derive(Clone)]
pub struct SchedulerMetrics {
    pub registry: Arc<Registry>,
    /// `coderun_runs_dispatched_total{language}`.
    dispatched: Family<Labels, Counter>,
    /// `coderun_queue_depth{language}`.
    queue_depth: Family<Labels, Gauge>,
    /// `coderun_queue_oldest_age_seconds{language}`.
    oldest_age: Family<Labels, Gauge<f64, AtomicU64>>,
    /// `coderun_scheduler_active`: 1 while this scheduler holds the lease.
    active: Gauge,
    /// `coderun_fair_queue_backlog{language}`.
    fair_backlog: Family<Labels, Gauge>,
    /// `coderun_backlog_per_free_slot{language}`.
    backlog_per_free_slot: Family<Labels, Gauge<f64, AtomicU64>>,
    /// `coderun_webhook_deliveries_total{outcome}`.
    webhooks: Family<Labels, Counter>,
    /// `coderun_nats_errors_total{operation}`, shared with the bus connection.
    nats_errors: Family<Labels, Counter>,
}

impl SchedulerMetrics {
    pub fn new(bus: &Bus, store: &RunStore) -> Self {
        let mut registry =
            coderun_telemetry::metrics::registry_for("scheduler", env!("CARGO_PKG_VERSION"));
        let dispatched = Family::default();
        let queue_depth = Family::default();
        let oldest_age = Family::default();
        let webhooks = Family::default();
        let fair_backlog = Family::default();
        let active = Gauge::default();
        registry.register(
            "coderun_scheduler_active",
            "1 while this scheduler holds the lease and releases runs, 0 while it stands by",
            active.clone(),
        );
        let backlog_per_free_slot = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let nats_errors = bus.error_counter();
        registry.register(
            "coderun_runs_dispatched",
            "Runs released to their pool's executors, by language",
            dispatched.clone(),
        );
        registry.register(
            "coderun_queue_depth",
            "Runs of a language waiting for an executor: in the fair queues and released but not \
             taken yet",
            queue_depth.clone(),
        );
        registry.register(
            "coderun_queue_oldest_age_seconds",
            "How long the oldest run waiting for an executor has waited (since it was accepted, \
             or released when it waits in the jobs stream)",
            oldest_age.clone(),
        );
        registry.register(
            "coderun_fair_queue_backlog",
            "Runs waiting in a language's per-tenant queues for its executors to have room",
            fair_backlog.clone(),
        );
        registry.register(
            "coderun_backlog_per_free_slot",
            "Runs waiting for room in a language, per free executor slot (per one when none is \
             free): what the executor fleet scales on",
            backlog_per_free_slot.clone(),
        );
        registry.register(
            "coderun_webhook_deliveries",
            "Webhook attempts by outcome: delivered, failed (to be retried), gave_up, refused",
            webhooks.clone(),
        );
        coderun_telemetry::metrics::register_connection_errors(
            &mut registry,
            bus.error_counter(),
            store.error_counter(),
        );
        // Every outcome's series exists from the start at 0: a first one is an increase a
        // rule sees, not a series appearing.
        for outcome in ["delivered", "failed", "gave_up", "refused"] {
            let _ = webhooks.get_or_create(&labels([("outcome", outcome)]));
        }
        Self {
            registry: Arc::new(registry),
            dispatched,
            queue_depth,
            oldest_age,
            webhooks,
            active,
            fair_backlog,
            backlog_per_free_slot,
            nats_errors,
        }
    }

    /// Whether this scheduler is the active one.
    pub fn set_active(&self, active: bool) {
        self.active.set(i64::from(active));
    }

    /// A language's runs waiting for room, and the free slots of its live executors.
    pub fn backlog(&self, language: &str, waiting: u64, slots_free: u32) {
        let language = labels([("language", language)]);
        self.fair_backlog
            .get_or_create(&language)
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.backlog_per_free_slot
            .get_or_create(&language)
            .set(waiting as f64 / f64::from(slots_free.max(1)));
    }

    /// Counts a run dispatched to its pool.
    pub fn dispatched(&self, language: &str) {
        self.dispatched
            .get_or_create(&labels([("language", language)]))
            .inc();
    }

    /// Counts a failed NATS call made outside the bus crate (fetches, acknowledgements).
    pub fn count_nats_error(&self, operation: &'static str) {
        self.nats_errors
            .get_or_create(&labels([("operation", operation)]))
            .inc();
    }

    /// Counts a webhook attempt's outcome.
    pub fn webhook(&self, outcome: &'static str) {
        self.webhooks
            .get_or_create(&labels([("outcome", outcome)]))
            .inc();
    }
}

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
                Ok(reading) => {
                    let label = labels([("language", language)]);
                    metrics
                        .queue_depth
                        .get_or_create(&label)
                        .set(i64::try_from(reading.depth).unwrap_or(i64::MAX));
                    metrics
                        .oldest_age
                        .get_or_create(&label)
                        .set(reading.oldest_age.as_secs_f64());
                }
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
