//! Prometheus metrics: one registry per service instance, rendered as OpenMetrics text.
//!
//! Names follow Prometheus conventions: a `coderun_` prefix, base units in the name
//! (`_seconds`, `_bytes`), counters registered without `_total` (the encoder appends it).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of a rendered registry.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label pairs, for families whose labels are known only at run time.
pub type Labels = Vec<(&'static str, String)>;

/// A family of histograms in seconds, with [`seconds_histogram`]'s buckets.
pub type SecondsFamily<L = Labels> = Family<L, Histogram, fn() -> Histogram>;

/// Bucket bounds in seconds from 5 ms to 5 minutes: a hello-world's milliseconds and a
/// compile's minutes in one layout.
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// A histogram with [`SECONDS_BUCKETS`].
pub fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

/// An empty family of [`seconds_histogram`]s.
pub fn seconds_family<L>() -> Family<L, Histogram, fn() -> Histogram>
where
    L: Clone + std::hash::Hash + Eq,
{
    Family::new_with_constructor(seconds_histogram as fn() -> Histogram)
}

/// Labels from pairs of static names and values.
pub fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs
        .into_iter()
        .map(|(name, value)| (name, value.to_owned()))
        .collect()
}

/// One metric a [`prometheus_client::collector::Collector`] reads at scrape time: its
/// descriptor, then its value.
pub fn encode_collected(
    encoder: &mut prometheus_client::encoding::DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl prometheus_client::encoding::EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let value = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(value)
}

/// A registry holding `coderun_build_info{service, version} 1`, which says the service is
/// exporting at all (an alert on its absence needs no other metric), and the process's own
/// memory, CPU and open files ([`crate::process`]).
pub fn registry_for(service: &str, version: &str) -> Registry {
    let mut registry = Registry::default();
    let info = Family::<Labels, Gauge>::default();
    info.get_or_create(&labels([("service", service), ("version", version)]))
        .set(1);
    registry.register(
        "coderun_build_info",
        "Always 1; the labels say which service and version export these metrics",
        info,
    );
    registry.register_collector(Box::new(crate::process::ProcessCollector));
    registry
}

/// Registers a service's connection error counters (from its NATS and Redis connections) as
/// `coderun_nats_errors_total{operation}` and `coderun_redis_errors_total{kind}`.
pub fn register_connection_errors(
    registry: &mut Registry,
    nats: Family<Labels, prometheus_client::metrics::counter::Counter>,
    redis: Family<Labels, prometheus_client::metrics::counter::Counter>,
) {
    registry.register(
        "coderun_nats_errors",
        "NATS calls that failed, by operation",
        nats,
    );
    registry.register(
        "coderun_redis_errors",
        "Redis calls that failed, by kind",
        redis,
    );
}

/// The registry as OpenMetrics text (what `GET /metrics` answers).
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut text, registry);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn a_registry_renders_its_build_info_counters_and_histograms() {
        let mut registry = registry_for("scheduler", "1.2.3");
        let runs = Family::<Labels, Counter>::default();
        registry.register("coderun_runs_dispatched", "Runs dispatched", runs.clone());
        runs.get_or_create(&labels([("language", "python")])).inc();
        let durations: SecondsFamily = seconds_family();
        registry.register("coderun_example_seconds", "An example", durations.clone());
        durations
            .get_or_create(&labels([("language", "python")]))
            .observe(0.02);
        let text = render(&registry);
        assert!(text.contains(r#"coderun_build_info{service="scheduler",version="1.2.3"} 1"#));
        assert!(text.contains(r#"coderun_runs_dispatched_total{language="python"} 1"#));
        assert!(text.contains(r#"coderun_example_seconds_bucket{le="0.025",language="python"} 1"#));
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
        assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
