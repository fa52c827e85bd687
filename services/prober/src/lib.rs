//! coderun-prober: synthetic checks through the public API.
//!
//! Status: a first slice. [`check_hello_worlds`] runs every served language's hello-world
//! through the API and compares the output; `coderun-prober --once` runs it and exits non-zero
//! on failure. The periodic loop, the verdict checks, and the CloudWatch and Prometheus
//! metrics are not built yet.
//!
//! Architecture invariant: the prober uses nothing but the public API, through `client/`.

use coderun_client::Client;
use coderun_schema::catalog::Catalog;
use coderun_schema::run::{RunRequest, Verdict};
use serde::Deserialize;

/// Committed defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub target: TargetConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub base_url: String,
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
