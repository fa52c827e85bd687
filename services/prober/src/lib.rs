//! coderun-prober: synthetic checks through the public API.
//!
//! Status: a first slice. [`check_hello_worlds`] runs every served language's hello-world
//! through the API and compares the output; `coderun-prober --once` runs it and exits non-zero
//! on failure, and without `--once` the prober runs it every `probe.interval_secs` and logs
//! the results. The verdict checks and the CloudWatch and Prometheus metrics are not built
//! yet.
//!
//! Architecture invariant: the prober uses nothing but the public API, through `client/`.

use coderun_client::Client;
use coderun_schema::catalog::Catalog;
use coderun_schema::run::{RunRequest, Verdict};
use serde::Deserialize;

/// Committed defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// The prober's whole configuration: one field per section of `config/default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[target]`: the deployment the prober checks, reached through its public API only.
    pub target: TargetConfig,
    /// `[probe]`: how often the checks run.
    pub probe: ProbeConfig,
}

/// The `[probe]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Seconds between two rounds of checks when the prober runs without `--once` (at least
    /// 1): how late a failure may be noticed.
    pub interval_secs: u64,
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
        if self.probe.interval_secs == 0 {
            return Err("probe.interval_secs must be at least 1".to_owned());
        }
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

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    pub millis: u128,
}

/// Runs each served language's hello-world and checks verdict and output.
pub async fn check_hello_worlds(client: &Client) -> anyhow::Result<Vec<CheckResult>> {
    let catalog = Catalog::builtin();
    let served = client.languages().await?;
    let mut results = Vec::new();
    for language in served.languages {
        let Some(spec) = catalog.find(&language.id) else {
            continue;
        };
        let request = RunRequest {
            language: spec.id.clone(),
            source: Some(spec.hello_world.clone()),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let outcome = client.run_and_wait(&request).await;
        let millis = started.elapsed().as_millis();
        let (passed, detail) = match outcome {
            Ok(run) => {
                let stdout = run.stdout();
                let passed = run.verdict == Some(Verdict::Ok) && stdout == spec.hello_world_stdout;
                (
                    passed,
                    format!("verdict {:?}, stdout {stdout:?}", run.verdict),
                )
            }
            Err(error) => (false, error.to_string()),
        };
        results.push(CheckResult {
            name: format!("hello_world.{}", spec.id),
            passed,
            detail,
            millis,
        });
    }
    Ok(results)
}
