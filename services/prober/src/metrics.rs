//! The prober's Prometheus metrics (served by its ops listener): each check's last result,
//! duration and objective, checks by outcome, rounds, and CloudWatch publishes. The catalog
//! is `docs/observability.md`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use coderun_telemetry::metrics::{labels, Labels};
use coderun_telemetry::prometheus_client::metrics::counter::Counter;
use coderun_telemetry::prometheus_client::metrics::family::Family;
use coderun_telemetry::prometheus_client::metrics::gauge::Gauge;
use coderun_telemetry::prometheus_client::registry::Registry;

use crate::checks::CheckResult;

/// What the prober measures, registered in a registry of its own.
#[derive(Clone)]
pub struct ProberMetrics {
    pub registry: Arc<Registry>,
    /// `coderun_probe_success{check, language}`.
    success: Family<Labels, Gauge>,
    /// `coderun_probe_duration_seconds{check, language}`.
    duration: Family<Labels, Gauge<f64, AtomicU64>>,
    /// `coderun_probe_objective_seconds{check, language}`.
    objective: Family<Labels, Gauge<f64, AtomicU64>>,
    /// `coderun_probe_checks_total{check, language, outcome}`.
    checks: Family<Labels, Counter>,
    /// `coderun_probe_rounds_total`.
    rounds: Counter,
    /// `coderun_probe_last_round_timestamp_seconds`.
    last_round: Gauge<f64, AtomicU64>,
    /// `coderun_cloudwatch_publishes_total{outcome}`, counted by the CloudWatch publisher.
    pub cloudwatch_publishes: Family<Labels, Counter>,
}

impl Default for ProberMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ProberMetrics {
    pub fn new() -> Self {
        let mut registry =
            coderun_telemetry::metrics::registry_for("prober", env!("CARGO_PKG_VERSION"));
        let success = Family::default();
        let duration = Family::default();
        let objective = Family::default();
        let checks = Family::default();
        let rounds = Counter::default();
        let last_round = Gauge::default();
        let cloudwatch_publishes = Family::default();
        registry.register(
            "coderun_probe_success",
            "1 if the check passed in the last round, else 0",
            success.clone(),
        );
        registry.register(
            "coderun_probe_duration_seconds",
            "How long the check took in the last round",
            duration.clone(),
        );
        registry.register(
            "coderun_probe_objective_seconds",
            "The check's latency objective",
            objective.clone(),
        );
        registry.register(
            "coderun_probe_checks",
            "Checks run, by outcome: pass, slow (passed outside its objective), fail",
            checks.clone(),
        );
        registry.register(
            "coderun_probe_rounds",
            "Rounds of checks completed",
            rounds.clone(),
        );
        registry.register(
            "coderun_probe_last_round_timestamp_seconds",
            "Unix time the last round ended",
            last_round.clone(),
        );
        registry.register(
            "coderun_cloudwatch_publishes",
            "PutMetricData calls, by outcome: ok, failed",
            cloudwatch_publishes.clone(),
        );
        for outcome in ["ok", "failed"] {
            let _ = cloudwatch_publishes.get_or_create(&labels([("outcome", outcome)]));
        }
        Self {
            registry: Arc::new(registry),
            success,
            duration,
            objective,
            checks,
            rounds,
            last_round,
            cloudwatch_publishes,
        }
    }

    /// Records one round's results.
    pub fn record(&self, results: &[CheckResult]) {
        for result in results {
            let (check, language) = result.labels();
            let label = labels([("check", check), ("language", language)]);
            self.success
                .get_or_create(&label)
                .set(i64::from(result.passed));
            self.duration
                .get_or_create(&label)
                .set(result.millis as f64 / 1000.0);
            self.objective
                .get_or_create(&label)
                .set(result.objective.as_secs_f64());
            self.checks
                .get_or_create(&labels([
                    ("check", check),
                    ("language", language),
                    ("outcome", result.outcome()),
                ]))
                .inc();
        }
        self.rounds.inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_secs_f64())
            .unwrap_or(0.0);
        self.last_round.set(now);
    }
}
