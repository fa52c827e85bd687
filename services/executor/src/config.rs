//! The executor's configuration, loaded once at start-up (see `config/default.toml` for every
//! key and its meaning).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use coderun_bus::BusConfig;
pub use coderun_store::StoreConfig;

/// Committed defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &["worker.languages"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bus: BusConfig,
    pub store: StoreConfig,
    pub worker: WorkerConfig,
    pub sandbox: SandboxConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub id: String,
    pub slots: u32,
    pub languages: Vec<String>,
    pub heartbeat_interval_ms: u64,
    pub ack_wait_secs: u64,
    pub max_deliver: i64,
    pub drain_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    pub agent_path: PathBuf,
    pub runtime: String,
    /// Per-pool (language id) overrides of `runtime`, for hardened pools.
    pub runtimes: std::collections::BTreeMap<String, String>,
    pub workspace_mb: u64,
    pub cpus: f64,
    pub warm_per_language: usize,
    /// Per-language overrides of `warm_per_language`, by catalog id.
    pub warm_sizes: std::collections::BTreeMap<String, usize>,
    pub host_margin_secs: u64,
    /// The first of the uids programs run as: two per run in flight (compile, run).
    pub first_program_uid: u32,
    /// The most output one run may send back, in MiB, whatever its limits say.
    pub max_output_mb: u64,
}

impl Config {
    /// Checks what serde cannot: ranges and files that must exist.
    pub fn validate(&self) -> Result<(), String> {
        if self.worker.slots == 0 {
            return Err("worker.slots must be at least 1".to_owned());
        }
        if self.worker.heartbeat_interval_ms < 100 {
            return Err("worker.heartbeat_interval_ms must be at least 100".to_owned());
        }
        if self.worker.max_deliver < 1 {
            return Err("worker.max_deliver must be at least 1".to_owned());
        }
        if !self.sandbox.agent_path.is_file() {
            return Err(format!(
                "sandbox.agent_path {} is not a file: build it with scripts/up.sh or set CODERUN_EXECUTOR__SANDBOX__AGENT_PATH",
                self.sandbox.agent_path.display()
            ));
        }
        for runtime in std::iter::once(&self.sandbox.runtime).chain(self.sandbox.runtimes.values())
        {
            if !matches!(runtime.as_str(), "runc" | "runsc") {
                return Err(format!(
                    "sandbox runtimes must be runc or runsc, not {runtime}"
                ));
            }
        }
        let catalog = coderun_schema::catalog::Catalog::builtin();
        let per_pool = [
            (
                "sandbox.runtimes",
                self.sandbox.runtimes.keys().collect::<Vec<_>>(),
            ),
            (
                "sandbox.warm_sizes",
                self.sandbox.warm_sizes.keys().collect(),
            ),
        ];
        for (key, ids) in per_pool {
            if let Some(unknown) = ids
                .into_iter()
                .find(|id| catalog.languages.iter().all(|language| &language.id != *id))
            {
                return Err(format!(
                    "{key} names `{unknown}`, which is not a catalog id"
                ));
            }
        }
        if self.sandbox.first_program_uid < 1000 || self.sandbox.first_program_uid > 4_000_000_000 {
            return Err("sandbox.first_program_uid must be between 1000 and 4000000000".to_owned());
        }
        if self.sandbox.max_output_mb == 0 {
            return Err("sandbox.max_output_mb must be at least 1".to_owned());
        }
        if !(self.sandbox.cpus > 0.0 && self.sandbox.cpus <= 64.0) {
            return Err("sandbox.cpus must be above 0 and at most 64".to_owned());
        }
        Ok(())
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.worker.heartbeat_interval_ms)
    }
}

impl SandboxConfig {
    /// The OCI runtime of one pool's sandboxes.
    pub fn runtime_for(&self, pool: &str) -> &str {
        self.runtimes.get(pool).unwrap_or(&self.runtime)
    }

    /// `max_output_mb` in bytes.
    pub fn max_output_bytes(&self) -> u64 {
        self.max_output_mb.saturating_mul(1024 * 1024)
    }
}
