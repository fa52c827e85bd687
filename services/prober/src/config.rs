//! The prober's configuration, loaded once at start-up (see `config/default.toml`).

use std::time::Duration;

use coderun_schema::catalog::Catalog;
use serde::Deserialize;

pub use coderun_telemetry::ops::OpsConfig;

use crate::checks::Timing;
pub use crate::cloudwatch::CloudWatchConfig;
pub use crate::webhook_check::WebhookCheckConfig;

/// Committed defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &["probe.languages"];

/// The prober's whole configuration: one field per section of `config/default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[target]`: the deployment the prober checks, reached through its public API only.
    pub target: TargetConfig,
    /// `[probe]`: how often the checks run.
    pub probe: ProbeConfig,
    /// `[ops]`: where `/metrics`, `/healthz` and `/readyz` are served.
    pub ops: OpsConfig,
    /// `[cloudwatch]`: each round's results as CloudWatch metrics.
    pub cloudwatch: CloudWatchConfig,
    /// `[webhook]`: the receiver of the webhook check.
    pub webhook: WebhookCheckConfig,
}

/// The `[probe]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Seconds between two rounds of checks when the prober runs without `--once` (at least
    /// 1): how late a failure may be noticed.
    pub interval_secs: u64,
    /// The catalog ids the deployment is expected to serve; each gets a hello-world check,
    /// and one that no live executor serves fails. Empty: the whole catalog.
    pub languages: Vec<String>,
    /// How long one check may take before it fails, in seconds.
    pub timeout_secs: u64,
    /// How long one check should take, in milliseconds: slower is reported (`slow`), not a
    /// failure.
    pub objective_ms: u64,
    /// Seconds a round in progress at SIGTERM is given to finish and publish its results;
    /// after that it is abandoned (its runs finish on the stack regardless). 0 abandons it at
    /// once.
    pub shutdown_grace_secs: u64,
}

impl ProbeConfig {
    /// Each check's timeout and objective.
    pub fn timing(&self) -> Timing {
        Timing {
            timeout: Duration::from_secs(self.timeout_secs),
            objective: Duration::from_millis(self.objective_ms),
        }
    }
}

impl Config {
    /// Checks what serde cannot: a usable base URL, a key, an interval.
    pub fn validate(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.target.base_url)
            .map_err(|error| format!("target.base_url is not a URL: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("target.base_url must be an http or https URL".to_owned());
        }
        if self.target.api_key.is_empty() {
            return Err(
                "target.api_key is empty: set CODERUN_PROBER__TARGET__API_KEY to a tenant's key"
                    .to_owned(),
            );
        }
        if self.probe.interval_secs == 0 || self.probe.timeout_secs == 0 {
            return Err("probe.interval_secs and probe.timeout_secs must be at least 1".to_owned());
        }
        let catalog = Catalog::builtin();
        if let Some(unknown) = self
            .probe
            .languages
            .iter()
            .find(|id| !catalog.languages.iter().any(|spec| &spec.id == *id))
        {
            return Err(format!(
                "probe.languages: `{unknown}` is not a catalog language id"
            ));
        }
        self.cloudwatch.validate()?;
        self.webhook.validate()?;
        Ok(())
    }
}

/// The `[target]` section: which gateway to call, and as whom.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The gateway's base URL (scheme, host and port; the API's paths are joined to it), the
    /// same address a client would use.
    pub base_url: String,
    /// The API key the prober sends as `Authorization: Bearer`, best a tenant of its own so
    /// its runs are told apart from clients'. Required: without one every check would fail
    /// with 401, so the prober refuses to start.
    pub api_key: String,
}
