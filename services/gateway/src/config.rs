//! The gateway's configuration, loaded once at start-up (see `config/default.toml` for every
//! key and its meaning).

use serde::Deserialize;

pub use coderun_bus::BusConfig;
pub use coderun_store::StoreConfig;

use coderun_schema::run::LimitsRequest;

/// Committed defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &["runs.callback_allow"];

/// The gateway's whole configuration: one field per section of `config/default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[http]`: where the API listens and how large a request body may be.
    pub http: HttpConfig,
    /// `[bus]`: the NATS server the gateway publishes submissions to and follows executor
    /// heartbeats and run events on.
    pub bus: BusConfig,
    /// `[store]`: the Redis server that holds run records and idempotency keys.
    pub store: StoreConfig,
    /// `[runs]`: what one request may ask for, and how long a client may wait for its run.
    pub runs: RunsConfig,
    /// `[[tenants]]`: who may call the API, by API key, and the most each may ask for. Empty
    /// in the committed defaults; `validate` refuses to start with none.
    pub tenants: Vec<TenantConfig>,
}

/// The `[http]` section: the listener and the HTTP server's own limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address (IP or host name) to bind; the committed default is loopback only.
    pub host: String,
    /// TCP port to bind; 0 lets the system pick a free one (the tests do, then read it back
    /// with `Application::port`).
    pub port: u16,
    /// Largest JSON request body, in bytes: a larger one is refused with 413 before it is
    /// parsed, so no request can make the gateway buffer more than this.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per available core.
    pub workers: usize,
}

/// The `[runs]` section: the size of what one request may submit, its per-request budgets,
/// and how long a client may wait for its run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsConfig {
    /// The most source one request may carry, in bytes: the decoded sizes of all its files
    /// summed (413 above it). Bounds what one run carries through NATS and Redis.
    pub max_source_bytes: usize,
    /// The most stdin one execution may get, in bytes: the request's `stdin`, or each test's
    /// (413 above it).
    pub max_stdin_bytes: usize,
    /// The most entries `files` may have (422 above it).
    pub max_files: usize,
    /// The most command-line arguments a request may give (422 above it); each argument is
    /// also held to 4096 bytes.
    pub max_args: usize,
    /// The most entries `tests` may have (422 above it).
    pub max_tests: usize,
    /// Output one request may ask for in all: executions × (stdout + stderr caps), in KiB
    /// (422 above it), so no request can make an executor hold more.
    pub max_output_kb: u64,
    /// Wall time one request may ask for in all: compile wall (for a compiled language) +
    /// executions × run wall, in ms (422 above it), so no request can hold a slot for longer.
    pub max_wall_ms: u64,
    /// How long `?wait=true` waits for the run to finish when the request gives no
    /// `timeout_ms`, in ms. At most `max_wait_ms`.
    pub default_wait_ms: u64,
    /// The longest wait a client may ask for with `timeout_ms` or `wait_ms`, in ms (422
    /// above it), so a request never holds a connection open for longer.
    pub max_wait_ms: u64,
    /// How long an executor heartbeat that carries no `ttl_ms` (or 0) counts as alive, in
    /// seconds; a heartbeat's own `ttl_ms` wins when it has one. Decides which languages the
    /// gateway serves (`GET /v1/languages`, and 503 for a language no live executor serves).
    pub heartbeat_ttl_secs: u64,
    /// Exact `host:port` webhook targets allowed although they are not public addresses (a
    /// receiver on 127.0.0.1 in tests, an internal service). Any other `callback_url` that
    /// names or resolves to a loopback, private, link-local, metadata or otherwise internal
    /// address is refused with 422. The scheduler's `webhooks.allow` must list the same.
    #[serde(default)]
    pub callback_allow: Vec<String>,
    /// The most runs of one language that may be accepted and not yet started (`queued`: in
    /// the scheduler's fair queues, or released and waiting for an executor), all tenants
    /// together (a count; 0 for no cap): at it a new run of that language is refused with 429
    /// and `Retry-After`, whoever's it is. Checked as the run is stored, so every gateway and
    /// every batch shares it. Each tenant's `queued_runs` quota holds besides.
    pub max_backlog: u64,
}

/// One `[[tenants]]` table: who a key belongs to and what it may ask for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Stable tenant id, stored in each of its run records and idempotency keys; runs are
    /// visible only to it (another tenant's run answers 404). 1 to 64 letters, digits, `-`,
    /// `_` or `.` (it is part of Redis key names).
    pub id: String,
    /// Hex SHA-256 (64 hex digits, either case) of each API key of this tenant, at least one;
    /// several allow a key to be rotated. The keys themselves are never stored.
    pub key_sha256: Vec<String>,
    /// The tenant's own maximum limits per stage (same units as a request's `limits`): a
    /// request above them is refused with 422. They only lower the catalog's maximum, never
    /// raise it; fields left out take the catalog's.
    #[serde(default)]
    pub max_limits: LimitsRequest,
    /// The most `/v1` requests per second this tenant may send, shared by every gateway
    /// (kept in Redis); above it a request is answered 429 with `Retry-After`. Absent: no
    /// limit.
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// How many requests the tenant may send at once above `requests_per_second` (at least
    /// 1); absent, one second's worth.
    #[serde(default)]
    pub burst: Option<u32>,
    /// The most runs of this tenant accepted and not finished (queued or running) at once;
    /// a run over it is refused with 429 (`concurrent_runs`). Absent: no limit.
    #[serde(default)]
    pub concurrent_runs: Option<u32>,
    /// The most runs of this tenant waiting for an executor at once; a run over it is
    /// refused with 429 (`queued_runs`). Absent: no limit.
    #[serde(default)]
    pub queued_runs: Option<u32>,
    /// `strict` gives every run of this tenant a single-use container of its own, whatever
    /// the executors' setting for the language; absent, the executors decide (see
    /// docs/design.md, "Isolation modes").
    #[serde(default)]
    pub isolation: Option<coderun_schema::messages::Isolation>,
}

impl TenantConfig {
    /// The tenant's concurrency quotas, checked as its runs are stored (the deployment's
    /// backlog cap is added by the caller).
    pub fn active_quota(&self) -> coderun_store::ActiveQuota {
        coderun_store::ActiveQuota {
            max_queued: self.queued_runs,
            max_unfinished: self.concurrent_runs,
            max_backlog: None,
        }
    }

    /// The tenant's request rate, if it has one.
    pub fn rate(&self) -> Option<coderun_store::Rate> {
        let per_second = self.requests_per_second?;
        Some(coderun_store::Rate {
            per_second,
            burst: self.burst.unwrap_or(per_second.ceil() as u32).max(1),
        })
    }
}

impl Config {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        self.bus.validate()?;
        self.store.validate()?;
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
            // The id is part of Redis key names (`<prefix>:tenant:<id>:runs`, ...): no
            // separators or patterns in it.
            let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            if tenant.id.len() > 64 || !tenant.id.chars().all(plain) {
                return Err(format!(
                    "tenant `{}`: an id is 1 to 64 letters, digits, `-`, `_` or `.`",
                    tenant.id
                ));
            }
            if tenant
                .requests_per_second
                .is_some_and(|rate| !(rate > 0.0 && rate.is_finite()))
                || tenant.burst == Some(0)
            {
                return Err(format!(
                    "tenant `{}`: requests_per_second must be above 0 and burst at least 1",
                    tenant.id
                ));
            }
            if tenant.concurrent_runs == Some(0) || tenant.queued_runs == Some(0) {
                return Err(format!(
                    "tenant `{}`: concurrent_runs and queued_runs must be at least 1 (leave them out for no limit)",
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
        toml::from_str(DEFAULTS).expect("committed defaults parse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_rate(requests_per_second: Option<f64>, burst: Option<u32>) -> Config {
        let mut config = Config::defaults_for_tests();
        config.tenants = vec![TenantConfig {
            id: "acme".to_owned(),
            key_sha256: vec!["0".repeat(64)],
            max_limits: Default::default(),
            requests_per_second,
            burst,
            ..Default::default()
        }];
        config
    }

    #[test]
    fn a_tenant_id_is_plain_text_fit_for_key_names() {
        for good in ["acme", "tenant-a", "a.b_c", "x"] {
            let mut config = with_rate(None, None);
            config.tenants[0].id = good.to_owned();
            assert_eq!(config.validate(), Ok(()), "{good}");
        }
        for bad in ["", "a:b", "a*", "a b", "ü", &"x".repeat(65)] {
            let mut config = with_rate(None, None);
            config.tenants[0].id = bad.to_owned();
            assert!(config.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rate_must_be_positive_and_a_burst_at_least_one() {
        assert_eq!(with_rate(None, None).validate(), Ok(()));
        assert_eq!(with_rate(Some(0.5), Some(1)).validate(), Ok(()));
        for (rate, burst) in [
            (Some(0.0), None),
            (Some(-1.0), None),
            (Some(f64::NAN), None),
            (Some(5.0), Some(0)),
        ] {
            let refused = with_rate(rate, burst).validate().expect_err("refused");
            assert!(refused.contains("requests_per_second"), "{refused}");
        }
    }

    #[test]
    fn the_burst_defaults_to_one_seconds_worth() {
        let tenant = &with_rate(Some(2.5), None).tenants[0];
        assert_eq!(
            tenant.rate(),
            Some(coderun_store::Rate {
                per_second: 2.5,
                burst: 3
            })
        );
        assert_eq!(with_rate(None, Some(4)).tenants[0].rate(), None);
    }
}
