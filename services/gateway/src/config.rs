//! The gateway's configuration, loaded once at start-up (see `config/default.toml` for every
//! key and its meaning).

use serde::Deserialize;

pub use coderun_bus::BusConfig;
pub use coderun_store::StoreConfig;

use coderun_schema::run::LimitsRequest;

/// Committed defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &[];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub bus: BusConfig,
    pub store: StoreConfig,
    pub runs: RunsConfig,
    pub tenants: Vec<TenantConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsConfig {
    pub max_source_bytes: usize,
    pub max_stdin_bytes: usize,
    pub max_files: usize,
    pub max_args: usize,
    pub max_tests: usize,
    /// Output one request may ask for in all: tests × (stdout + stderr caps), in KiB.
    pub max_output_kb: u64,
    /// Wall time one request may ask for in all: compile + tests × run wall, in ms.
    pub max_wall_ms: u64,
    pub default_wait_ms: u64,
    pub max_wait_ms: u64,
    pub heartbeat_ttl_secs: u64,
}

/// One tenant: who a key belongs to and what it may ask for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Stable tenant id; runs are visible only to it.
    pub id: String,
    /// Hex SHA-256 of each API key of this tenant (keys themselves are never stored).
    pub key_sha256: Vec<String>,
    /// The tenant's own maximum limits, below the catalog's; unset fields take the catalog's.
    #[serde(default)]
    pub max_limits: LimitsRequest,
}

impl Config {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.tenants.is_empty() {
            return Err("no tenants are configured: every request would be refused (add [[tenants]] to the config file)".to_owned());
        }
        for tenant in &self.tenants {
            if tenant.id.is_empty() || tenant.key_sha256.is_empty() {
                return Err(format!(
                    "tenant `{}` needs an id and at least one key_sha256",
                    tenant.id
                ));
            }
            for hash in &tenant.key_sha256 {
                if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!(
                        "tenant `{}`: key_sha256 entries are 64 hex digits",
                        tenant.id
                    ));
                }
            }
        }
        if self.runs.default_wait_ms > self.runs.max_wait_ms {
            return Err("runs.default_wait_ms must not exceed runs.max_wait_ms".to_owned());
        }
        Ok(())
    }
}

impl Config {
    /// The committed defaults with no tenants, for unit tests.
    #[cfg(test)]
    pub fn defaults_for_tests() -> Self {
        #[allow(clippy::expect_used)]
        toml::from_str(DEFAULTS).expect("committed defaults parse")
    }
}
