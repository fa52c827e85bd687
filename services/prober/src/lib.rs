//! coderun-prober: synthetic checks through the public API, the deployment's direct failure
//! detector.
//!
//! - [`checks`]: one round of checks — every *expected* language's hello-world (a language no
//!   executor serves fails) and the verdict checks — each with its own timeout and latency
//!   objective; [`api_checks`]: the API paths users depend on (long-poll, idempotent retry,
//!   the legacy API, cancel, the event stream); [`webhook_check`]: a webhook to the prober's
//!   own receiver, signature checked.
//! - [`metrics`]: each check's last result and latency on `GET /metrics` (the ops listener);
//!   [`cloudwatch`]: the same results as CloudWatch metrics, one batched PutMetricData per
//!   round.
//! - [`config`]: the layered configuration.
//! - [`Prober`]: starts the listeners, runs rounds (`--once`: one round, a table, exit
//!   non-zero on any failure — the release gate; otherwise every `probe.interval_secs`).
//!
//! Architecture invariant: the prober uses nothing but the public API, through `client/`.

pub mod api_checks;
pub mod checks;
pub mod cloudwatch;
pub mod config;
pub mod metrics;
pub mod webhook_check;

use std::sync::Arc;
use std::time::Duration;

use coderun_client::Client;
use coderun_telemetry::ops::{OpsServer, ReadinessCheck};
use tokio_util::sync::CancellationToken;

pub use checks::{run_round, CheckResult, Timing};
pub use config::{Config, DEFAULTS, LIST_KEYS};
pub use Listeners::{ReceiverOnly, WithOps};

use crate::cloudwatch::Publisher;
use crate::metrics::ProberMetrics;
use crate::webhook_check::Receiver;

/// One round's results, and the checks it could not run (with why).
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub results: Vec<CheckResult>,
    pub skipped: Vec<(String, String)>,
}

impl Round {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|result| !result.passed).count()
    }

    /// The `--once` table: one line per check, the skipped ones, and a summary line.
    pub fn table(&self) -> String {
        let mut text = String::new();
        for result in &self.results {
            let mark = match result.outcome() {
                "fail" => "FAIL",
                other => other,
            };
            text.push_str(&format!(
                "{mark}  {:<28} {:>7} ms  {}\n",
                result.name, result.millis, result.detail
            ));
        }
        for (name, why) in &self.skipped {
            text.push_str(&format!("skip  {name:<28} {:>7}     {why}\n", "-"));
        }
        text.push_str(&format!(
            "{} checks, {} failed, {} skipped\n",
            self.results.len(),
            self.failed(),
            self.skipped.len()
        ));
        text
    }
}

/// Which listeners a prober opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listeners {
    /// The ops listener (`/metrics`, `/healthz`, `/readyz`) too: a prober that keeps running.
    WithOps,
    /// Only the webhook receiver: `--once`, which may run beside a long-running prober.
    ReceiverOnly,
}

/// A started prober: its ops listener and webhook receiver serve until [`Prober::stop`].
pub struct Prober {
    client: Client,
    config: Config,
    metrics: ProberMetrics,
    cloudwatch: Option<Publisher>,
    /// Bound only when `webhook.public_url` is set (the webhook check runs).
    receiver: Option<Receiver>,
    ops_port: Option<u16>,
    stop: CancellationToken,
    serving: Vec<tokio::task::JoinHandle<()>>,
}

impl Prober {
    /// Validates the config, binds the listeners and starts them.
    pub async fn start(config: Config, listeners: Listeners) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let client = Client::new(&config.target.base_url, &config.target.api_key)?;
        let metrics = ProberMetrics::new();
        let cloudwatch = if config.cloudwatch.enabled {
            Some(Publisher::new(&config.cloudwatch, metrics.cloudwatch_publishes.clone()).await)
        } else {
            None
        };
        let stop = CancellationToken::new();
        let mut serving = Vec::new();
        let mut ops_port = None;
        if listeners == Listeners::WithOps {
            let readiness: ReadinessCheck = Arc::new(|| Box::pin(async { Vec::new() }));
            let ops = OpsServer::bind_with(&config.ops, metrics.registry.clone(), readiness)?;
            ops_port = Some(ops.port());
            let ops_stop = stop.clone();
            serving.push(tokio::spawn(async move {
                if let Err(error) = ops.run(ops_stop).await {
                    tracing::error!(error = %format!("{error:#}"), "the ops listener failed");
                }
            }));
        }
        let receiver = if config.webhook.public_url.is_empty() {
            None
        } else {
            let (receiver, receiving) = Receiver::start(&config.webhook, stop.clone())?;
            serving.push(receiving);
            Some(receiver)
        };
        Ok(Self {
            client,
            config,
            metrics,
            cloudwatch,
            receiver,
            ops_port,
            stop,
            serving,
        })
    }

    /// The ops listener's port (`/metrics`, `/healthz`, `/readyz`), when it listens.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops_port
    }

    /// The webhook receiver's port, when the webhook check runs.
    pub fn webhook_port(&self) -> Option<u16> {
        self.receiver.as_ref().map(Receiver::port)
    }

    /// Runs every check once, records the results as metrics and publishes them to
    /// CloudWatch when enabled.
    pub async fn round(&self) -> Round {
        let probe = &self.config.probe;
        let timing = probe.timing();
        let mut round = Round {
            results: run_round(
                &self.client,
                &self.config.target.api_key,
                &probe.languages,
                timing,
            )
            .await,
            skipped: Vec::new(),
        };
        match &self.receiver {
            None => round.skipped.push((
                "api.webhook".to_owned(),
                "webhook.public_url is not set".to_owned(),
            )),
            Some(receiver) => round.results.push(
                webhook_check::check(&self.client, receiver, &self.config.webhook, timing).await,
            ),
        }
        self.metrics.record(&round.results);
        if let Some(cloudwatch) = &self.cloudwatch {
            cloudwatch.publish(&round.results).await;
        }
        round
    }

    /// Runs a round every `probe.interval_secs` until `shutdown`, logging each check.
    pub async fn run(self, shutdown: CancellationToken) {
        let every = std::time::Duration::from_secs(self.config.probe.interval_secs);
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let round = self.round();
            tokio::pin!(round);
            tokio::select! {
                round = &mut round => log_round(&round),
                _ = shutdown.cancelled() => {
                    // A round in progress may finish and publish within the grace; a check
                    // could otherwise hold the shutdown for its whole timeout.
                    let grace = Duration::from_secs(self.config.probe.shutdown_grace_secs);
                    tracing::info!(grace_secs = grace.as_secs(), "stopping: finishing the round in progress first");
                    match tokio::time::timeout(grace, round).await {
                        Ok(round) => log_round(&round),
                        Err(_) => tracing::warn!(
                            grace_secs = grace.as_secs(),
                            "the round in progress was abandoned at shutdown"
                        ),
                    }
                    break;
                }
            }
        }
        self.stop().await;
    }

    /// Stops the listeners.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.serving {
            let _ = task.await;
        }
    }
}

fn log_round(round: &Round) {
    for result in &round.results {
        let millis = result.millis as u64;
        let (check, language) = result.labels();
        match result.outcome() {
            "fail" => {
                tracing::error!(check, language, millis, detail = %result.detail, "check failed")
            }
            "slow" => tracing::warn!(check, language, millis, "check slow"),
            _ => tracing::info!(check, language, millis, "check passed"),
        }
    }
    for (name, why) in &round.skipped {
        tracing::warn!(check = %name, %why, "check skipped");
    }
}
