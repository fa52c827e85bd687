//! The scheduler's configuration, loaded once at start-up (see `config/default.toml`).

use serde::Deserialize;

pub use coderun_bus::BusConfig;

/// Committed defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &[];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bus: BusConfig,
    pub submit: SubmitConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitConfig {
    pub batch: usize,
    pub ack_wait_secs: u64,
    pub max_deliver: i64,
}

impl Config {
    pub fn validate(&self) -> Result<(), String> {
        if self.submit.batch == 0 {
            return Err("submit.batch must be at least 1".to_owned());
        }
        if self.submit.max_deliver < 1 {
            return Err("submit.max_deliver must be at least 1".to_owned());
        }
        Ok(())
    }
}
