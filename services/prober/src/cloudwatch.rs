//! Each round's results as CloudWatch metrics: one batched `PutMetricData` per round (split
//! into requests of at most [`MAX_DATUMS`] values). A failure to publish is logged and counted
//! (`coderun_cloudwatch_publishes_total{outcome="failed"}`), never fatal: the next round
//! publishes again. Names, units and dimensions are documented in `docs/observability.md`.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use coderun_telemetry::metrics::{labels, Labels};
use coderun_telemetry::prometheus_client::metrics::counter::Counter;
use coderun_telemetry::prometheus_client::metrics::family::Family;
use serde::Deserialize;

use crate::checks::CheckResult;

/// How long one `PutMetricData` call (its retries included) may take before it counts as
/// failed: a slow CloudWatch must not hold up the next round.
pub const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The most values one `PutMetricData` request may carry.
pub const MAX_DATUMS: usize = 1000;

/// The `[cloudwatch]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchConfig {
    /// Whether each round's results are sent to CloudWatch.
    pub enabled: bool,
    /// The namespace of every metric (e.g. `Coderun/Prober`).
    pub namespace: String,
    /// The `Environment` dimension's value: which deployment the results are about.
    pub environment: String,
    /// The AWS region; empty: the SDK's default chain.
    pub region: String,
    /// The endpoint URL; empty: AWS's. An emulator's URL in tests.
    pub endpoint: String,
}

impl CloudWatchConfig {
    /// A namespace and environment are needed once enabled.
    pub fn validate(&self) -> Result<(), String> {
        if self.enabled && (self.namespace.is_empty() || self.environment.is_empty()) {
            return Err(
                "cloudwatch.namespace and cloudwatch.environment must be set when cloudwatch.enabled"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// A CloudWatch client as configured: the SDK's default credentials chain (a task role in
/// AWS, `AWS_ACCESS_KEY_ID`… locally), rustls over ring for TLS.
pub async fn client(config: &CloudWatchConfig) -> aws_sdk_cloudwatch::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if !config.region.is_empty() {
        loader = loader.region(aws_config::Region::new(config.region.clone()));
    }
    if !config.endpoint.is_empty() {
        loader = loader.endpoint_url(config.endpoint.clone());
    }
    aws_sdk_cloudwatch::Client::new(&loader.load().await)
}

/// Sends rounds' results to CloudWatch.
pub struct Publisher {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
    environment: String,
    /// `coderun_cloudwatch_publishes_total{outcome}`.
    publishes: Family<Labels, Counter>,
}

impl Publisher {
    pub async fn new(config: &CloudWatchConfig, publishes: Family<Labels, Counter>) -> Self {
        Self {
            client: client(config).await,
            namespace: config.namespace.clone(),
            environment: config.environment.clone(),
            publishes,
        }
    }

    /// Publishes one round; failures are logged and counted, never returned.
    pub async fn publish(&self, results: &[CheckResult]) {
        let datums = datums(results, &self.environment);
        for chunk in datums.chunks(MAX_DATUMS) {
            let sent = tokio::time::timeout(
                PUBLISH_TIMEOUT,
                self.client
                    .put_metric_data()
                    .namespace(&self.namespace)
                    .set_metric_data(Some(chunk.to_vec()))
                    .send(),
            )
            .await;
            let outcome = match sent {
                Ok(Ok(_)) => "ok",
                Ok(Err(error)) => {
                    let error = aws_sdk_cloudwatch::error::DisplayErrorContext(&error);
                    tracing::error!(%error, "failed to publish the round's metrics to CloudWatch");
                    "failed"
                }
                Err(_) => {
                    tracing::error!(timeout = ?PUBLISH_TIMEOUT, "publishing the round's metrics to CloudWatch timed out");
                    "failed"
                }
            };
            self.publishes
                .get_or_create(&labels([("outcome", outcome)]))
                .inc();
        }
    }
}

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value).build()
}

fn datum(name: &str, unit: StandardUnit, value: f64, dimensions: Vec<Dimension>) -> MetricDatum {
    MetricDatum::builder()
        .metric_name(name)
        .unit(unit)
        .value(value)
        .timestamp(DateTime::from(std::time::SystemTime::now()))
        .set_dimensions(Some(dimensions))
        .build()
}

/// The values of one round: per check `CheckSuccess`, `CheckLatency` and
/// `CheckWithinObjective`, and the round's `RoundFailures`.
pub fn datums(results: &[CheckResult], environment: &str) -> Vec<MetricDatum> {
    let mut datums = Vec::with_capacity(results.len() * 3 + 1);
    for result in results {
        let (check, language) = result.labels();
        let dimensions = vec![
            dimension("Check", check),
            dimension("Language", language),
            dimension("Environment", environment),
        ];
        let flag = |yes: bool| if yes { 1.0 } else { 0.0 };
        datums.push(datum(
            "CheckSuccess",
            StandardUnit::Count,
            flag(result.passed),
            dimensions.clone(),
        ));
        datums.push(datum(
            "CheckLatency",
            StandardUnit::Milliseconds,
            result.millis as f64,
            dimensions.clone(),
        ));
        datums.push(datum(
            "CheckWithinObjective",
            StandardUnit::Count,
            flag(result.passed && result.within_objective),
            dimensions,
        ));
    }
    let failures = results.iter().filter(|result| !result.passed).count();
    datums.push(datum(
        "RoundFailures",
        StandardUnit::Count,
        failures as f64,
        vec![dimension("Environment", environment)],
    ));
    datums
}
