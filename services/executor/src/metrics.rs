//! The executor's Prometheus metrics (served by its ops listener): runs it made final by
//! language and verdict, their durations (end to end, queue, compile, each execution), its
//! slots, its warm and idle reused containers, container creation, and the NATS and Redis errors of its
//! connections. The catalog is `docs/observability.md`.

use std::sync::Arc;
use std::time::Duration;

use coderun_bus::Bus;
use coderun_schema::run::Run;
use coderun_store::RunStore;
use coderun_telemetry::metrics::{labels, seconds_family, Labels, SecondsFamily};
use coderun_telemetry::prometheus_client::collector::Collector;
use coderun_telemetry::prometheus_client::encoding::DescriptorEncoder;
use coderun_telemetry::prometheus_client::metrics::counter::Counter;
use coderun_telemetry::prometheus_client::metrics::family::Family;
use coderun_telemetry::prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use coderun_telemetry::prometheus_client::registry::Registry;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::reuse::ReuseStore;
use crate::warm::{WarmStore, WarmTarget};

/// `coderun_reused_containers_idle`: fast-mode containers kept idle for their tenants, read
/// at each scrape. With the warm ones, every container the executor holds while no run is in
/// flight: any other container of its prefix is left over.
struct IdleReused(Arc<ReuseStore>);

impl std::fmt::Debug for IdleReused {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "IdleReused({})", self.0.count())
    }
}

impl Collector for IdleReused {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        coderun_telemetry::metrics::encode_collected(
            &mut encoder,
            "coderun_reused_containers_idle",
            "Fast-mode containers idle, kept for their tenants' next runs",
            ConstGauge::new(self.0.count() as i64),
        )
    }
}

/// Container creation, measured where containers are created (`Sandbox::create_ready`).
#[derive(Clone)]
pub struct ContainerMetrics {
    /// `coderun_container_create_seconds{language}`: create, attach and start.
    pub create_seconds: SecondsFamily,
    /// `coderun_container_create_failures_total{language}`.
    pub create_failures: Family<Labels, Counter>,
}

impl ContainerMetrics {
    /// Creates `language`'s failure series at 0, so a first failure is an increase a rule
    /// sees, not a series appearing.
    pub fn start_series(&self, language: &str) {
        let _ = self
            .create_failures
            .get_or_create(&labels([("language", language)]));
    }
}

impl Default for ContainerMetrics {
    fn default() -> Self {
        Self {
            create_seconds: seconds_family(),
            create_failures: Family::default(),
        }
    }
}

/// What the executor measures, registered in a registry of its own.
#[derive(Clone)]
pub struct ExecutorMetrics {
    pub registry: Arc<Registry>,
    /// `coderun_runs_completed_total{language, verdict}`.
    completed: Family<Labels, Counter>,
    /// `coderun_run_end_to_end_seconds{language}`.
    end_to_end: SecondsFamily,
    /// `coderun_run_queue_seconds{language}`.
    queue: SecondsFamily,
    /// `coderun_run_compile_seconds{language}`.
    compile: SecondsFamily,
    /// `coderun_run_execute_seconds{language}`.
    execute: SecondsFamily,
    /// `coderun_executor_slots{state}`.
    slots: Family<Labels, Gauge>,
    /// `coderun_warm_containers_ready{language}`.
    warm_ready: Family<Labels, Gauge>,
    /// `coderun_warm_containers_missing{language}`.
    warm_missing: Family<Labels, Gauge>,
}

impl ExecutorMetrics {
    pub fn new(
        bus: &Bus,
        store: &RunStore,
        containers: &ContainerMetrics,
        reused: Arc<ReuseStore>,
    ) -> Self {
        let mut registry =
            coderun_telemetry::metrics::registry_for("executor", env!("CARGO_PKG_VERSION"));
        let completed = Family::default();
        let end_to_end = seconds_family();
        let queue = seconds_family();
        let compile = seconds_family();
        let execute = seconds_family();
        let slots = Family::default();
        let warm_ready = Family::default();
        let warm_missing = Family::default();
        registry.register(
            "coderun_runs_completed",
            "Runs this executor made final, by language and verdict",
            completed.clone(),
        );
        registry.register(
            "coderun_run_end_to_end_seconds",
            "From a run's creation to its final record",
            end_to_end.clone(),
        );
        registry.register(
            "coderun_run_queue_seconds",
            "From a run's creation to this executor starting it",
            queue.clone(),
        );
        registry.register(
            "coderun_run_compile_seconds",
            "The compile stage's wall time",
            compile.clone(),
        );
        registry.register(
            "coderun_run_execute_seconds",
            "Each execution's wall time (one per test case)",
            execute.clone(),
        );
        registry.register(
            "coderun_executor_slots",
            "Runs this executor is running (busy) and could still take (free)",
            slots.clone(),
        );
        registry.register(
            "coderun_warm_containers_ready",
            "Pre-warmed containers waiting for a run",
            warm_ready.clone(),
        );
        registry.register(
            "coderun_warm_containers_missing",
            "How many the warm pool is short of its target",
            warm_missing.clone(),
        );
        registry.register(
            "coderun_container_create_seconds",
            "Time to create, attach and start a sandbox container",
            containers.create_seconds.clone(),
        );
        registry.register(
            "coderun_container_create_failures",
            "Sandbox containers that could not be created or started",
            containers.create_failures.clone(),
        );
        coderun_telemetry::metrics::register_connection_errors(
            &mut registry,
            bus.error_counter(),
            store.error_counter(),
        );
        registry.register_collector(Box::new(IdleReused(reused)));
        Self {
            registry: Arc::new(registry),
            completed,
            end_to_end,
            queue,
            compile,
            execute,
            slots,
            warm_ready,
            warm_missing,
        }
    }

    /// A run started: how long it queued.
    pub fn started(&self, language: &str, queued: Duration) {
        self.queue
            .get_or_create(&labels([("language", language)]))
            .observe(queued.as_secs_f64());
    }

    /// A run this executor made final: its verdict and durations.
    pub fn finished(&self, run: &Run) {
        let language = labels([("language", &run.language)]);
        let verdict = run
            .verdict
            .and_then(|verdict| serde_json::to_value(verdict).ok())
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_else(|| "none".to_owned());
        self.completed
            .get_or_create(&labels([
                ("language", &run.language),
                ("verdict", &verdict),
            ]))
            .inc();
        if let Some(finished) = run.finished_at {
            let took: Duration = (finished - run.created_at).try_into().unwrap_or_default();
            self.end_to_end
                .get_or_create(&language)
                .observe(took.as_secs_f64());
        }
        if let Some(compile) = &run.compile {
            self.compile
                .get_or_create(&language)
                .observe(compile.wall_ms as f64 / 1000.0);
        }
        let executions = if run.tests.is_empty() {
            run.run.iter().collect::<Vec<_>>()
        } else {
            run.tests.iter().collect()
        };
        for execution in executions {
            self.execute
                .get_or_create(&language)
                .observe(execution.wall_ms as f64 / 1000.0);
        }
    }

    /// Sets the slot and warm-container gauges every `every` until `shutdown`.
    pub async fn watch(
        self,
        slots: Arc<Semaphore>,
        total_slots: u32,
        warm: Arc<WarmStore>,
        targets: Vec<WarmTarget>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(every);
        loop {
            let free = slots.available_permits().min(total_slots as usize) as i64;
            self.slots
                .get_or_create(&labels([("state", "free")]))
                .set(free);
            self.slots
                .get_or_create(&labels([("state", "busy")]))
                .set(i64::from(total_slots) - free);
            for target in &targets {
                let ready = warm.count(&target.key);
                let language = labels([("language", &target.language)]);
                self.warm_ready.get_or_create(&language).set(ready as i64);
                self.warm_missing
                    .get_or_create(&language)
                    .set(target.size.saturating_sub(ready) as i64);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
        }
    }
}
