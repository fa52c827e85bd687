//! The view of live executors from their heartbeats, shared by the gateway (which languages
//! are served right now and at which version: `GET /v1/languages`, and the 503 for a language
//! no live executor serves) and the scheduler (each pool's capacity, which gates releases).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use coderun_schema::messages::ExecutorHeartbeat;
use coderun_schema::names::Names;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::{Bus, BusError};

/// A live executor as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveExecutor {
    pub slots_total: u32,
    pub slots_free: u32,
    /// The pools of the languages it serves.
    pub pools: BTreeSet<String>,
}

/// One pool's capacity, summed over the executors serving it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolCapacity {
    /// Executors heard from within their time to live that take new runs.
    pub live: u32,
    /// Executors heard from that are finishing their work and take no more.
    pub draining: u32,
    /// Slots of the live executors.
    pub slots_total: u32,
    /// Of those, free at their last heartbeat.
    pub slots_free: u32,
    /// Pre-warmed containers of the pool's languages ready at the live executors.
    pub warm_ready: u32,
    /// The image digests the live executors run (more than one during a roll-out).
    pub image_digests: BTreeSet<String>,
}

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
    ) -> Result<Self, BusError> {
        let view = Self::default();
        let subject = bus.names().executor_heartbeat();
        let mut subscriber = bus
            .client()
            .subscribe(subject.clone())
            .await
            .map_err(|error| BusError::Setup {
                what: format!("a subscription to {subject}"),
                source: error.into(),
            })?;
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
                match crate::decode::<ExecutorHeartbeat>(&message.payload) {
                    Ok(heartbeat) => updated.record(heartbeat, fallback_ttl),
                    Err(error) => tracing::warn!(%error, "ignoring a malformed heartbeat"),
                }
            }
        });
        Ok(view)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Seen>> {
        self.executors
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let executors = self.read();
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

    /// Every pool some executor heard from within its time to live serves, with its capacity.
    pub fn capacity(&self) -> BTreeMap<String, PoolCapacity> {
        let now = Instant::now();
        let executors = self.read();
        let mut pools: BTreeMap<String, PoolCapacity> = BTreeMap::new();
        for seen in executors.values().filter(|seen| seen.expires > now) {
            let heartbeat = &seen.heartbeat;
            // Two languages of one pool count the executor once.
            let mut served: BTreeMap<String, (BTreeSet<String>, u32)> = BTreeMap::new();
            for language in &heartbeat.languages {
                let (digests, warm) = served.entry(Names::pool_of(&language.id)).or_default();
                digests.insert(language.image_digest.clone());
                *warm += language.warm_ready;
            }
            for (pool, (digests, warm)) in served {
                let pool = pools.entry(pool).or_default();
                if heartbeat.draining {
                    pool.draining += 1;
                    continue;
                }
                pool.live += 1;
                pool.slots_total += heartbeat.slots_total;
                pool.slots_free += heartbeat.slots_free;
                pool.warm_ready += warm;
                pool.image_digests.extend(digests);
            }
        }
        pools
    }

    /// The ids of every executor heard from within its time to live, draining or not.
    pub fn heard(&self) -> BTreeSet<String> {
        let now = Instant::now();
        let executors = self.read();
        executors
            .iter()
            .filter(|(_, seen)| seen.expires > now)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The live executors that take new runs (not draining), each with the pools it serves.
    pub fn live(&self) -> Vec<LiveExecutor> {
        let now = Instant::now();
        let executors = self.read();
        executors
            .values()
            .filter(|seen| seen.is_live(now))
            .map(|seen| LiveExecutor {
                slots_total: seen.heartbeat.slots_total,
                slots_free: seen.heartbeat.slots_free,
                pools: seen
                    .heartbeat
                    .languages
                    .iter()
                    .map(|language| Names::pool_of(&language.id))
                    .collect(),
            })
            .collect()
    }

    /// Whether some live executor serves `language`.
    pub fn serves(&self, language: &str) -> bool {
        let now = Instant::now();
        let executors = self.read();
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
