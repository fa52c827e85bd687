//! Run records in Redis: the one place a run's state is kept between the services.
//!
//! - The gateway creates a record (`queued`) before it publishes the submission.
//! - The executor moves it to `running`, then to its final state.
//! - A terminal record is never overwritten: [`RunStore::update`] refuses atomically (a Lua
//!   script), so a late or duplicate writer cannot undo a final result.
//! - Every state change is also appended to the run's event log in the same script, and the
//!   tenant's queued and running sets follow it (`records`, `events`); the gateway's
//!   concurrency quotas count those sets when it creates a run.
//! - Records expire after a TTL; long-term storage is not a goal.
//! - Every call goes through one connection that counts what Redis failed (`counted`).
//! - The scheduler's fair queues (per pool, a list per tenant) live here too (`queues`).
//! - Each tenant's run ids are kept in a sorted set beside the records, for listing
//!   ([`RunStore::list`], in `listing`); tenants' request rates are kept here too, so every
//!   gateway shares them ([`RunStore::admit`], in `quota`).
//!
//! Architecture invariant: the store knows keys and record shapes, not the run life cycle's
//! rules beyond "terminal is final".

use std::time::Duration;

use coderun_schema::messages::RunRecord;
use coderun_schema::names::Names;
mod counted;
mod events;
mod listing;
mod queues;
mod quota;
mod records;
mod webhooks;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use redis::aio::ConnectionManager;

use crate::counted::CountedConnection;
pub use crate::counted::Labels;
use redis::AsyncCommands;

pub use listing::RunPage;
pub use queues::FairQueues;
pub use quota::Rate;
pub use records::{ActiveQuota, Created};

/// What went wrong with Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("a stored record is not valid: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether Redis may answer if asked again: it is unreachable, slow, restarting, failing
    /// over, or refusing writes it cannot persist (`MISCONF`: its disk is full, until there is
    /// room again). An error in what was asked (a wrong type, a script error) or a record that
    /// cannot be decoded fails again however often it is retried.
    pub fn is_transient(&self) -> bool {
        let StoreError::Redis(error) = self else {
            return false;
        };
        error.is_io_error()
            || error.is_connection_refusal()
            || error.is_connection_dropped()
            || error.is_timeout()
            || matches!(
                error.kind(),
                redis::ErrorKind::BusyLoadingError
                    | redis::ErrorKind::TryAgain
                    | redis::ErrorKind::MasterDown
                    | redis::ErrorKind::ReadOnly
                    | redis::ErrorKind::ClusterDown
            )
            || error.code() == Some("MISCONF")
    }
}

/// Where Redis is and how long records live: the `[store]` section of services' configs.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Redis URL (`redis://host:port`, optionally with a database number). The connection
    /// reconnects by itself when Redis comes back.
    pub url: String,
    /// How long a run record, and an idempotency key bound to a run, lives in Redis, in
    /// seconds: it is set when the gateway creates the record or binds the key, and updates
    /// keep it. Records are not kept for the long term; after this a run answers 404.
    pub run_ttl_secs: u64,
}

impl StoreConfig {
    /// Checks what serde cannot: a record must live a while.
    pub fn validate(&self) -> Result<(), String> {
        if self.run_ttl_secs == 0 {
            return Err("store.run_ttl_secs must be at least 1".to_owned());
        }
        if self.url.is_empty() {
            return Err("store.url must name the Redis server".to_owned());
        }
        Ok(())
    }
}

/// The outcome of [`RunStore::update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated,
    /// The record was already terminal and was left as it was.
    AlreadyTerminal,
    /// A claim was refused: the run is running for another job (this one is a duplicate).
    HeldByAnotherJob,
    /// No record (expired, or never created).
    Missing,
}

/// Run records under one prefix.
#[derive(Clone)]
pub struct RunStore {
    connection: CountedConnection,
    names: Names,
    ttl: Duration,
    update_script: redis::Script,
    create_script: redis::Script,
    append_script: redis::Script,
    webhook_script: redis::Script,
    admit_script: redis::Script,
}

impl RunStore {
    /// Connects as configured.
    pub async fn connect_with(config: &StoreConfig, names: Names) -> Result<Self, StoreError> {
        Self::connect(&config.url, names, Duration::from_secs(config.run_ttl_secs)).await
    }

    /// Connects; the connection reconnects by itself when Redis comes back.
    pub async fn connect(url: &str, names: Names, ttl: Duration) -> Result<Self, StoreError> {
        // `rediss://` URLs use rustls, which needs a process-wide crypto provider: ring, the one
        // the rest of the workspace builds (an already installed one is kept).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(url)?;
        // A lost connection is made again in the background, and every command waits for that
        // attempt. The library's default backoff waits one to two seconds, then a minute or
        // two between tries, so a Redis back after two seconds went unused for minutes: here
        // every wait is one to two seconds (jitter), four tries at most, and a command after a
        // failed attempt starts a new one.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(5))
            .set_max_delay(1000)
            .set_number_of_retries(3);
        let connection =
            CountedConnection::new(ConnectionManager::new_with_config(client, config).await?);
        Ok(Self {
            connection,
            names,
            ttl,
            update_script: redis::Script::new(records::UPDATE_UNLESS_TERMINAL),
            create_script: redis::Script::new(records::CREATE_AND_LIST),
            append_script: redis::Script::new(events::APPEND),
            webhook_script: redis::Script::new(webhooks::SET_STATUS),
            admit_script: redis::Script::new(quota::ADMIT),
        })
    }

    /// The Redis calls that failed, by kind, for the service to register as
    /// `coderun_redis_errors`.
    pub fn error_counter(&self) -> Family<Labels, Counter> {
        self.connection.error_counter()
    }

    /// The scheduler's fair queues, on this store's connection.
    pub fn queues(&self) -> FairQueues {
        FairQueues::new(self.connection.clone(), self.names.clone(), self.ttl)
    }

    /// Answers when Redis answers a PING.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(())
    }

    /// A run's record, with its webhook status merged into the run.
    pub async fn get(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let mut connection = self.connection.clone();
        let (record, webhook): (Option<String>, Option<String>) = redis::cmd("MGET")
            .arg(self.names.run_key(run_id))
            .arg(self.names.run_webhook_key(run_id))
            .query_async(&mut connection)
            .await?;
        webhooks::merged(record, webhook)
    }

    /// Binds a tenant's idempotency key to a run id, unless it is bound already; returns the
    /// run id the key is bound to afterwards.
    pub async fn bind_idempotency_key(
        &self,
        tenant: &str,
        key: &str,
        run_id: &str,
    ) -> Result<String, StoreError> {
        let mut connection = self.connection.clone();
        let redis_key = self.names.idempotency_key(tenant, key);
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .get(true)
            .with_expiration(redis::SetExpiry::EX(self.ttl.as_secs()));
        let previous: Option<String> = connection.set_options(&redis_key, run_id, options).await?;
        Ok(previous.unwrap_or_else(|| run_id.to_owned()))
    }

    /// Removes an idempotency binding (when the run it names could not be accepted).
    pub async fn release_idempotency_key(&self, tenant: &str, key: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: i64 = connection
            .del(self.names.idempotency_key(tenant, key))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod transient_tests {
    use super::*;

    #[test]
    fn a_redis_that_cannot_persist_is_waited_out_and_a_wrong_command_is_not() {
        let misconf = redis::make_extension_error(
            "MISCONF".to_owned(),
            Some("Errors writing to the AOF file: No space left on device".to_owned()),
        );
        assert!(StoreError::Redis(misconf).is_transient());
        let wrong_type = redis::RedisError::from((
            redis::ErrorKind::TypeError,
            "WRONGTYPE",
            "Operation against a key holding the wrong kind of value".to_owned(),
        ));
        assert!(!StoreError::Redis(wrong_type).is_transient());
    }
}
