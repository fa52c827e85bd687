//! The streams and consumers of the topology, declared the same way by every service, and
//! what the scheduler reads of the jobs stream.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::{Bus, BusError, ConsumerSettings};

impl Bus {
    /// Creates the submit stream if it does not exist yet.
    pub async fn ensure_submit_stream(&self) -> Result<stream::Stream, BusError> {
        self.ensure_stream(self.names.submit_stream(), vec![self.names.runs_submit()])
            .await
    }

    /// Creates the jobs stream if it does not exist yet.
    pub async fn ensure_jobs_stream(&self) -> Result<stream::Stream, BusError> {
        self.ensure_stream(self.names.jobs_stream(), vec![self.names.jobs_all()])
            .await
    }

    /// Creates the webhooks stream if it does not exist yet.
    pub async fn ensure_webhooks_stream(&self) -> Result<stream::Stream, BusError> {
        self.ensure_stream(
            self.names.webhooks_stream(),
            vec![self.names.webhooks_due()],
        )
        .await
    }

    async fn ensure_stream(
        &self,
        name: String,
        subjects: Vec<String>,
    ) -> Result<stream::Stream, BusError> {
        let config = stream::Config {
            name: name.clone(),
            subjects,
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            // Publishes carry the run id as Nats-Msg-Id: a retried publish is stored once.
            duplicate_window: Duration::from_secs(120),
            num_replicas: self.stream_replicas(),
            ..Default::default()
        };
        // Two services starting together may both find the stream missing: the create that
        // loses the race fails ("subjects overlap"), and the stream the other made is used.
        let created = match self.jetstream.get_or_create_stream(config).await {
            Ok(stream) => Ok(stream),
            Err(first) => self.jetstream.get_stream(&name).await.map_err(|_| first),
        };
        if let Ok(stream) = &created {
            self.warn_if_fewer_replicas(&name, stream.cached_info().config.num_replicas);
        }
        created.map_err(|error| {
            self.count_error("setup");
            BusError::Setup {
                what: format!("stream {name}"),
                source: error.into(),
            }
        })
    }

    /// Logs a stream made earlier with fewer copies than configured (it keeps its own), once
    /// per stream.
    pub fn warn_if_fewer_replicas(&self, name: &str, replicas: usize) {
        if replicas >= self.stream_replicas() {
            return;
        }
        let first = self
            .warned_replicas
            .lock()
            .map(|mut warned| warned.insert(name.to_owned()))
            .unwrap_or(false);
        if first {
            tracing::warn!(
                stream = name,
                replicas,
                configured = self.stream_replicas(),
                "the stream has fewer replicas than bus.stream_replicas; it keeps its own"
            );
        }
    }

    /// Jobs in the jobs stream by pool: released and not yet finished (the stream is a work
    /// queue: an executor's ack removes a job), waiting or running.
    pub async fn jobs_by_pool(&self) -> Result<std::collections::BTreeMap<String, u64>, BusError> {
        use futures::TryStreamExt as _;
        let stream = self.ensure_jobs_stream().await?;
        let setup = |error: jetstream::stream::InfoError| {
            self.count_error("stream_info");
            BusError::Read {
                what: format!("the jobs in stream {}", self.names.jobs_stream()),
                source: error.into(),
            }
        };
        let mut subjects = stream
            .info_with_subjects(self.names.jobs_all())
            .await
            .map_err(setup)?;
        let prefix = self.names.jobs("");
        let mut pools = std::collections::BTreeMap::new();
        while let Some((subject, count)) = subjects.try_next().await.map_err(setup)? {
            if let Some(pool) = subject.strip_prefix(&prefix) {
                pools.insert(pool.to_owned(), count as u64);
            }
        }
        Ok(pools)
    }

    /// The scheduler's durable pull consumer on the submit stream.
    pub async fn submit_consumer(
        &self,
        settings: ConsumerSettings,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, BusError> {
        let stream = self.ensure_submit_stream().await?;
        let name = self.names.scheduler_consumer();
        self.durable_consumer(&stream, name, self.names.runs_submit(), settings)
            .await
    }

    /// The scheduler's durable pull consumer on the webhooks stream.
    pub async fn webhook_consumer(
        &self,
        settings: ConsumerSettings,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, BusError> {
        let stream = self.ensure_webhooks_stream().await?;
        let name = self.names.webhook_consumer();
        self.durable_consumer(&stream, name, self.names.webhooks_due(), settings)
            .await
    }

    /// The pull consumer shared by every executor of `pool`.
    pub async fn pool_consumer(
        &self,
        pool: &str,
        settings: ConsumerSettings,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, BusError> {
        let stream = self.ensure_jobs_stream().await?;
        let name = self.names.pool_consumer(pool);
        self.durable_consumer(&stream, name, self.names.jobs(pool), settings)
            .await
    }

    async fn durable_consumer(
        &self,
        stream: &stream::Stream,
        name: String,
        filter_subject: String,
        settings: ConsumerSettings,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, BusError> {
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subject,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: settings.ack_wait,
            max_deliver: settings.max_deliver,
            ..Default::default()
        };
        stream
            .get_or_create_consumer(&name, config)
            .await
            .map_err(|error| {
                self.count_error("setup");
                BusError::Setup {
                    what: format!("consumer {name}"),
                    source: error.into(),
                }
            })
    }
}
