//! The gateway's view of live executors, from their heartbeats: which languages are served
//! right now and at which version. Drives `GET /v1/languages` and the 503 for a language no
//! live executor serves.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use coderun_bus::Bus;
use coderun_schema::messages::ExecutorHeartbeat;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
struct Seen {
    heartbeat: ExecutorHeartbeat,
    expires: Instant,
}

impl Seen {
    /// Heard from within its time to live and not draining: it takes new runs.
    fn is_live(&self, now: Instant) -> bool {
        self.expires > now && !self.heartbeat.draining
    }
}

/// Live executors by id.
#[derive(Clone, Default)]
pub struct ExecutorView {
    executors: Arc<RwLock<HashMap<String, Seen>>>,
}

impl ExecutorView {
    /// Subscribes to heartbeats and keeps the view current until `shutdown`.
    pub async fn follow(
        bus: &Bus,
        fallback_ttl: Duration,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let view = Self::default();
        let mut subscriber = bus
            .client()
            .subscribe(bus.names().executor_heartbeat())
            .await?;
        let updated = view.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    message = subscriber.next() => match message {
                        Some(message) => message,
                        None => return,
                    },
                };
                match coderun_bus::decode::<ExecutorHeartbeat>(&message.payload) {
                    Ok(heartbeat) => updated.record(heartbeat, fallback_ttl),
                    Err(error) => tracing::warn!(%error, "ignoring a malformed heartbeat"),
                }
            }
        });
        Ok(view)
    }

    fn record(&self, heartbeat: ExecutorHeartbeat, fallback_ttl: Duration) {
        let ttl = if heartbeat.ttl_ms > 0 {
            Duration::from_millis(heartbeat.ttl_ms)
        } else {
            fallback_ttl
        };
        let mut executors = self
            .executors
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        executors.retain(|_, seen| seen.expires > Instant::now());
        executors.insert(
            heartbeat.executor_id.clone(),
            Seen {
                heartbeat,
                expires: Instant::now() + ttl,
            },
        );
    }

    /// Languages served by at least one live, non-draining executor, with a version each.
    pub fn served_languages(&self) -> BTreeMap<String, String> {
        let now = Instant::now();
        let executors = self
            .executors
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut served = BTreeMap::new();
        for seen in executors.values().filter(|seen| seen.is_live(now)) {
            for language in &seen.heartbeat.languages {
                served
                    .entry(language.id.clone())
                    .or_insert_with(|| language.version.clone());
            }
        }
        served
    }

    /// Whether some live executor serves `language`.
    pub fn serves(&self, language: &str) -> bool {
        let now = Instant::now();
        let executors = self
            .executors
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        executors.values().any(|seen| {
            seen.is_live(now)
                && seen
                    .heartbeat
                    .languages
                    .iter()
                    .any(|served| served.id == language)
        })
    }
}
