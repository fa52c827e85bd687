//! The coderun NATS topology, in one place, so that every service declares the same streams
//! and consumers the same way.
//!
//! - [`Bus`]: a connection plus the [`Names`] it works under; publishes schema messages on
//!   core NATS or durably on JetStream (waiting for the stream's acknowledgement).
//! - Streams (`streams`): `<PREFIX>_SUBMIT` (accepted runs), `<PREFIX>_JOBS` (dispatched jobs,
//!   one subject per pool) and `<PREFIX>_WEBHOOKS`, work queues on file storage; the jobs in
//!   the jobs stream by pool.
//! - Consumers (`streams`): the scheduler's durable consumers on the submit and webhooks
//!   streams, and one durable consumer per pool on the jobs stream that every executor serving
//!   the pool shares.
//! - [`executors`]: the live executors and each pool's capacity, from their heartbeats.
//! - Publishing (`publish`): core NATS or JetStream, with the run's trace context as a
//!   `traceparent` header ([`trace_of`] reads it back); failures counted by operation.
//!
//! Architecture invariant: this crate knows the shape of the topology, not what the messages
//! mean; what to do with a message is the services' business.

pub mod executors;
mod progress;
mod publish;
mod streams;

use std::time::Duration;

use async_nats::jetstream;
use coderun_schema::names::Names;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::de::DeserializeOwned;

pub use progress::InProgress;
pub use publish::trace_of;

pub use async_nats;

/// Why a NATS call failed, kept whole so a log can show the chain ([`describe`]).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong talking to NATS. Each variant keeps its cause as its `source`.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("failed to connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("failed to encode a message")]
    Encode(#[from] serde_json::Error),
    #[error("failed to publish to {subject}")]
    Publish {
        subject: String,
        #[source]
        source: Cause,
    },
    #[error("failed to set up JetStream {what}")]
    Setup {
        what: String,
        #[source]
        source: Cause,
    },
    #[error("failed to read {what}")]
    Read {
        what: String,
        #[source]
        source: Cause,
    },
}

/// The servers of `url`: one `nats://host:port`, or several separated by commas (the servers
/// of one cluster; the client moves to another when the one it uses goes away).
pub fn server_list(url: &str) -> Result<Vec<async_nats::ServerAddr>, std::io::Error> {
    url.split(',').map(|server| server.trim().parse()).collect()
}

/// An error and every cause below it, `: `-separated, for a log line.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Where NATS is and which names to use: the `[bus]` section of every service's config.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// NATS server URL (`nats://host:port`), or the URLs of a cluster's servers separated by
    /// commas; JetStream must be enabled. The connection is retried in the background if NATS
    /// restarts later, and moves to another of the servers when the one it uses goes away.
    pub url: String,
    /// Prefix of every NATS subject and stream name, every Redis key and every sandbox
    /// container's name (production: `coderun`), so deployments, or tests, can share one
    /// NATS, Redis and Docker without seeing each other's work. Letters, digits, `_` and `-`
    /// only; every service of a deployment must use the same one.
    pub prefix: String,
    /// Copies of each stream (and of the scheduler's lease bucket) a NATS cluster keeps when
    /// the services create them: 1 on one server, 3 in production (a stream then survives
    /// the loss of one server). A stream that already exists keeps its own; a smaller count
    /// than this is logged at start-up.
    #[serde(default = "one_replica")]
    pub stream_replicas: usize,
}

fn one_replica() -> usize {
    1
}

impl BusConfig {
    /// Checks what serde cannot: a prefix that makes valid subject, stream and key names.
    pub fn validate(&self) -> Result<(), String> {
        Names::new(self.prefix.clone()).map_err(|problem| format!("bus.prefix: {problem}"))?;
        if self.url.is_empty() {
            return Err("bus.url must name the NATS server".to_owned());
        }
        server_list(&self.url).map_err(|error| format!("bus.url: {error}"))?;
        if !(1..=5).contains(&self.stream_replicas) {
            return Err("bus.stream_replicas must be between 1 and 5".to_owned());
        }
        Ok(())
    }
}

/// How a durable consumer redelivers: set from a service's config when the consumer is
/// created (an existing consumer keeps the settings it was created with).
#[derive(Debug, Clone, Copy)]
pub struct ConsumerSettings {
    /// How long a delivered message may go unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// After this many deliveries the message is no longer redelivered.
    pub max_deliver: i64,
}

/// The operations NATS errors are counted by.
pub const OPERATIONS: [&str; 7] = [
    "publish",
    "publish_durable",
    "setup",
    "fetch",
    "ack",
    "queue_read",
    "stream_info",
];

/// Label pairs of a metric family (here: the failed `operation`).
pub type Labels = Vec<(&'static str, String)>;

/// A NATS connection with the coderun topology.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    names: Names,
    /// Copies of each stream the services create ([`BusConfig::stream_replicas`]).
    stream_replicas: usize,
    /// Streams already found with fewer copies than that: each is logged once.
    warned_replicas: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    /// NATS calls that failed, by operation: what `coderun_nats_errors_total` reports.
    errors: Family<Labels, Counter>,
}

impl Bus {
    /// Connects as configured.
    pub async fn connect_with(config: &BusConfig, client_name: &str) -> Result<Self, BusError> {
        let names = Names::new(config.prefix.clone()).map_err(|message| BusError::Setup {
            what: "names".to_owned(),
            source: message.into(),
        })?;
        let mut bus = Self::connect(&config.url, names, client_name).await?;
        bus.stream_replicas = config.stream_replicas;
        Ok(bus)
    }

    /// Copies of each stream the services create.
    pub fn stream_replicas(&self) -> usize {
        self.stream_replicas
    }

    /// Connects, retrying in the background if NATS restarts later.
    pub async fn connect(url: &str, names: Names, client_name: &str) -> Result<Self, BusError> {
        let servers = server_list(url).map_err(|error| BusError::Setup {
            what: format!("the NATS server list {url}"),
            source: error.into(),
        })?;
        let client = async_nats::ConnectOptions::new()
            .name(client_name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(servers.as_slice())
            .await
            .map_err(|source| BusError::Connect {
                url: url.to_owned(),
                source,
            })?;
        // A real connection is required at start-up: fail fast on a wrong URL.
        tokio::time::timeout(Duration::from_secs(10), client.flush())
            .await
            .map_err(|_| BusError::Setup {
                what: "connection".to_owned(),
                source: format!("no answer from NATS at {url} within 10 s").into(),
            })?
            .map_err(|error| BusError::Setup {
                what: "connection".to_owned(),
                source: error.into(),
            })?;
        let jetstream = jetstream::new(client.clone());
        let errors = Family::<Labels, Counter>::default();
        // Every operation's series exists from the start at 0, so a first error is an
        // increase a rule sees, not a series appearing.
        for operation in OPERATIONS {
            let _ = errors.get_or_create(&vec![("operation", operation.to_owned())]);
        }
        Ok(Self {
            client,
            jetstream,
            names,
            stream_replicas: 1,
            warned_replicas: Default::default(),
            errors,
        })
    }

    /// The failed NATS calls by operation, for the service to register as
    /// `coderun_nats_errors` (counted here for publishes and set-up, by the services for
    /// fetches and acknowledgements).
    pub fn error_counter(&self) -> Family<Labels, Counter> {
        self.errors.clone()
    }

    /// Counts one failed NATS call.
    pub fn count_error(&self, operation: &'static str) {
        self.errors
            .get_or_create(&vec![("operation", operation.to_owned())])
            .inc();
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The largest message the server accepts, headers included.
    pub fn max_message_bytes(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// The largest payload a caller should encode: the server's limit less room for the
    /// headers a publish adds (`Nats-Msg-Id`, `traceparent`) and for what the next hop adds
    /// to the message (the scheduler's dispatch fields).
    pub fn max_payload_bytes(&self) -> usize {
        self.max_message_bytes().saturating_sub(1024)
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// Decodes a schema message, ignoring fields this version does not know.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(payload)
}

/// Decodes a JetStream message as `T`, or terminates it: a message that is not a `T` never
/// will be, so it is logged and never redelivered.
pub async fn decode_or_term<T: DeserializeOwned>(message: &jetstream::Message) -> Option<T> {
    match decode(&message.payload) {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            tracing::error!(
                %error,
                expected = std::any::type_name::<T>(),
                "dropping a message that is not what its stream carries"
            );
            let _ = message.ack_with(jetstream::AckKind::Term).await;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bus_error_keeps_its_cause_for_the_log() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let error = BusError::Publish {
            subject: "coderun.runs.submit".to_owned(),
            source: cause.into(),
        };
        assert!(
            std::error::Error::source(&error).is_some(),
            "the cause is the source"
        );
        assert_eq!(
            describe(&error),
            "failed to publish to coderun.runs.submit: reset by peer"
        );
    }

    #[test]
    fn a_url_names_one_server_or_a_clusters_servers() {
        let count = |url: &str| server_list(url).map(|servers| servers.len()).ok();
        assert_eq!(count("nats://127.0.0.1:4222"), Some(1));
        let cluster = "nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222";
        assert_eq!(count(cluster), Some(3));
        assert_eq!(count("nats://127.0.0.1:4222,nats://host:port"), None);
        let config = BusConfig {
            url: "nats://127.0.0.1:4222,nats://host:port".to_owned(),
            prefix: "coderun".to_owned(),
            stream_replicas: 1,
        };
        assert!(
            config.validate().is_err(),
            "a bad server list is a config error"
        );
    }

    #[test]
    fn stream_replicas_are_one_to_five() {
        let config = |replicas| BusConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: "coderun".to_owned(),
            stream_replicas: replicas,
        };
        assert!(config(1).validate().is_ok() && config(3).validate().is_ok());
        assert!(config(0).validate().is_err() && config(6).validate().is_err());
    }
}
