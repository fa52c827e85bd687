//! The scheduler's configuration, loaded once at start-up (see `config/default.toml`).

use std::collections::BTreeMap;

use serde::Deserialize;

pub use coderun_bus::BusConfig;
pub use coderun_store::StoreConfig;
pub use coderun_telemetry::ops::OpsConfig;

/// Committed defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &["webhooks.allow"];

/// The scheduler's whole configuration: one field per section of `config/default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[bus]`: the NATS server whose submit stream the scheduler pulls and whose jobs stream
    /// it publishes to.
    pub bus: BusConfig,
    /// `[submit]`: how the scheduler pulls accepted runs from the submit stream.
    pub submit: SubmitConfig,
    /// `[store]`: the Redis server with the run records (webhooks read the finished run and
    /// record how delivering it went).
    pub store: StoreConfig,
    /// `[webhooks]`: delivering finished runs to their `callback_url`.
    pub webhooks: WebhooksConfig,
    /// `[ops]`: where `/metrics`, `/healthz` and `/readyz` are served.
    pub ops: OpsConfig,
    /// `[metrics]`: how often the queues are read for their metrics.
    pub metrics: MetricsConfig,
    /// `[fairness]`: how runs are shared out across tenants.
    pub fairness: FairnessConfig,
    /// `[leader]`: which of several schedulers is active.
    pub leader: LeaderConfig,
    /// `[sweeper]`: finding runs left behind.
    pub sweeper: SweeperConfig,
}

/// The `[sweeper]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweeperConfig {
    /// Seconds between two sweeps (at least 1).
    pub every_secs: u64,
    /// Seconds after its creation when a `queued` run found in no queue, not being released
    /// and not in the jobs stream (while the submit stream is empty) is queued again.
    pub lost_after_secs: u64,
    /// Seconds past its limits' wall time, since it started, when a `running` run is ended as
    /// `internal_error`: more than the executors' `worker.ack_wait_secs`, so that a job whose
    /// executor died is delivered again first.
    pub running_margin_secs: u64,
    /// Seconds after which a job of a final (or expired) run still in the jobs stream is
    /// deleted from it.
    pub stale_job_secs: u64,
}

/// The `[leader]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderConfig {
    /// How long the active scheduler's lease lives without a renewal, in milliseconds (at
    /// least 1000). It renews every fifth of it, stops acting after three fifths without a
    /// renewal, and a standby takes over within about one lease of the active one's death.
    pub lease_ms: u64,
}

/// The `[fairness]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairnessConfig {
    /// Jobs released to a pool beyond its live slots, per live executor, so that a slot that
    /// frees finds its next job waiting (a count). More keeps executors busier; fewer lets a
    /// newly arrived tenant's run overtake sooner.
    pub ready_per_executor: u32,
    /// Each tenant's share, by tenant id (at least 1; a tenant not listed has 1): over a round
    /// a waiting tenant gets as many runs released as its weight.
    pub weights: BTreeMap<String, u64>,
}

/// The `[metrics]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Seconds between two readings of every language's queue (`coderun_queue_depth`,
    /// `coderun_queue_oldest_age_seconds`), at least 1: how stale those gauges may be.
    pub queue_poll_secs: u64,
}

/// The `[webhooks]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Webhooks being delivered (or waiting to retry) at once, a count (at least 1).
    pub concurrency: usize,
    /// How long one POST may take, connecting included, in seconds.
    pub attempt_timeout_secs: u64,
    /// The wait before the first retry, in milliseconds; it doubles after each failure up to
    /// `max_retry_ms`, and each wait is drawn at random between half of it and all of it.
    pub first_retry_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub max_retry_ms: u64,
    /// No attempt starts later than this after the run ended, in seconds: delivery gives up.
    pub give_up_after_secs: u64,
    /// Exact `host:port` targets allowed although they are not public addresses (a receiver
    /// on 127.0.0.1 in tests, an internal service); everything else must resolve to public
    /// addresses only.
    pub allow: Vec<String>,
    /// The secret each tenant's webhooks are signed with, by tenant id. A tenant without one
    /// gets no webhooks (the run's `webhook.error` says so).
    pub secrets: BTreeMap<String, String>,
}

/// The `[submit]` section: the scheduler's durable consumer on the submit stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitConfig {
    /// The most submissions fetched in one pull (a count, at least 1); the scheduler
    /// dispatches them one by one before it pulls again. Larger batches mean fewer round trips
    /// to NATS.
    pub batch: usize,
    /// How long a submission may stay unacknowledged before NATS delivers it again, in
    /// seconds: the time after which the work of a scheduler that died comes back. A
    /// submission is acknowledged only once its job is stored in the jobs stream.
    pub ack_wait_secs: u64,
    /// Deliveries of one submission before NATS stops redelivering it (at least 1). Nothing
    /// marks the run then: it stays `queued` until its record expires.
    pub max_deliver: i64,
}

impl Config {
    /// Checks what serde cannot: the bus prefix and the ranges of `submit.batch` and
    /// `submit.max_deliver`.
    pub fn validate(&self) -> Result<(), String> {
        self.bus.validate()?;
        if self.submit.batch == 0 {
            return Err("submit.batch must be at least 1".to_owned());
        }
        if self.submit.max_deliver < 1 {
            return Err("submit.max_deliver must be at least 1".to_owned());
        }
        self.store.validate()?;
        if let Some((tenant, _)) = self
            .fairness
            .weights
            .iter()
            .find(|(_, weight)| **weight == 0)
        {
            return Err(format!("fairness.weights.{tenant} must be at least 1"));
        }
        if self.metrics.queue_poll_secs == 0 {
            return Err("metrics.queue_poll_secs must be at least 1".to_owned());
        }
        let webhooks = &self.webhooks;
        if webhooks.concurrency == 0 || webhooks.attempt_timeout_secs == 0 {
            return Err(
                "webhooks.concurrency and webhooks.attempt_timeout_secs must be at least 1"
                    .to_owned(),
            );
        }
        if webhooks.first_retry_ms == 0 || webhooks.max_retry_ms < webhooks.first_retry_ms {
            return Err(
                "webhooks.first_retry_ms must be at least 1 and at most webhooks.max_retry_ms"
                    .to_owned(),
            );
        }
        if let Some((tenant, _)) = webhooks
            .secrets
            .iter()
            .find(|(_, secret)| secret.len() < 16)
        {
            return Err(format!(
                "webhooks.secrets.{tenant}: a signing secret must be at least 16 characters"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Config {
        toml::from_str(DEFAULTS).expect("the committed defaults fit the config type")
    }

    #[test]
    fn the_defaults_are_valid_and_the_smallest_values_too() {
        assert_eq!(defaults().validate(), Ok(()));
        let mut smallest = defaults();
        smallest.submit.batch = 1;
        smallest.submit.max_deliver = 1;
        assert_eq!(smallest.validate(), Ok(()));
    }

    #[test]
    fn an_empty_batch_or_no_delivery_is_refused_by_name() {
        let mut config = defaults();
        config.submit.batch = 0;
        assert_eq!(
            config.validate(),
            Err("submit.batch must be at least 1".to_owned())
        );
        for max_deliver in [0, -1] {
            let mut config = defaults();
            config.submit.max_deliver = max_deliver;
            assert_eq!(
                config.validate(),
                Err("submit.max_deliver must be at least 1".to_owned())
            );
        }
    }
}
