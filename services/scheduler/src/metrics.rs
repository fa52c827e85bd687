//! The scheduler's Prometheus metrics (served by its ops listener): runs dispatched by
//! language, every language's queue (depth and oldest run's age, read by
//! [`crate::queue_watch`]), each language's capacity from the heartbeats, its fair backlog and
//! backlog per free slot, whether this scheduler is active, webhook outcomes, and the NATS and
//! Redis errors of its connections. The catalog is
//! `docs/observability.md`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use coderun_bus::Bus;
use coderun_store::RunStore;
use coderun_telemetry::metrics::{labels, Labels};
use coderun_telemetry::prometheus_client::metrics::counter::Counter;
use coderun_telemetry::prometheus_client::metrics::family::Family;
use coderun_telemetry::prometheus_client::metrics::gauge::Gauge;
use coderun_telemetry::prometheus_client::registry::Registry;

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
    /// `coderun_pool_executors{language, state}`: live and draining executors serving it.
    pool_executors: Family<Labels, Gauge>,
    /// `coderun_pool_slots{language, state}`: total and free slots of its live executors.
    pool_slots: Family<Labels, Gauge>,
    /// `coderun_pool_warm_containers{language}`.
    pool_warm: Family<Labels, Gauge>,
    /// `coderun_pool_images{language}`: distinct image digests its live executors run.
    pool_images: Family<Labels, Gauge>,
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
        let pool_executors = Family::default();
        let pool_slots = Family::default();
        let pool_warm = Family::default();
        let pool_images = Family::default();
        for (name, help, family) in [
            (
                "coderun_pool_executors",
                "Executors serving a language that were heard within their time to live, by \
                 state (live: taking runs, draining)",
                &pool_executors,
            ),
            (
                "coderun_pool_slots",
                "Slots of a language's live executors, by state (total, free at their last \
                 heartbeat)",
                &pool_slots,
            ),
            (
                "coderun_pool_warm_containers",
                "Pre-warmed containers of a language ready at its live executors",
                &pool_warm,
            ),
            (
                "coderun_pool_images",
                "Distinct image digests a language's live executors run (more than one during \
                 a roll-out)",
                &pool_images,
            ),
        ] {
            registry.register(name, help, family.clone());
        }
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
            pool_executors,
            pool_slots,
            pool_warm,
            pool_images,
            fair_backlog,
            backlog_per_free_slot,
            nats_errors,
        }
    }

    /// A language's capacity, as its executors' heartbeats tell it.
    pub fn capacity(&self, language: &str, pool: &coderun_bus::executors::PoolCapacity) {
        let set = |family: &Family<Labels, Gauge>, state: Option<&str>, value: u32| {
            let labels = match state {
                Some(state) => labels([("language", language), ("state", state)]),
                None => labels([("language", language)]),
            };
            family.get_or_create(&labels).set(i64::from(value));
        };
        set(&self.pool_executors, Some("live"), pool.live);
        set(&self.pool_executors, Some("draining"), pool.draining);
        set(&self.pool_slots, Some("total"), pool.slots_total);
        set(&self.pool_slots, Some("free"), pool.slots_free);
        set(&self.pool_warm, None, pool.warm_ready);
        let images = u32::try_from(pool.image_digests.len()).unwrap_or(u32::MAX);
        set(&self.pool_images, None, images);
    }

    /// A language's queue as last read.
    pub fn queue(&self, language: &str, reading: &crate::queue_watch::QueueReading) {
        let label = labels([("language", language)]);
        self.queue_depth
            .get_or_create(&label)
            .set(i64::try_from(reading.depth).unwrap_or(i64::MAX));
        self.oldest_age
            .get_or_create(&label)
            .set(reading.oldest_age.as_secs_f64());
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
