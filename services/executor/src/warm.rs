//! Pre-warmed containers: for every language served, a few containers created, attached and
//! started ahead of time with the language's default limits, their agents blocked on stdin, so
//! a run with those limits pays neither create, nor attach, nor start. Each is taken by exactly one run and never
//! reused; the warmer refills in the background whenever one is taken. Runs with other limits
//! get a container created for them with exactly their settings (never a looser one).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::container::{container_key, SandboxSpec};
use crate::sandbox::Sandbox;
use crate::worker::PoolLanguage;

/// How often the warmer re-checks every language even when nothing woke it (a container that
/// failed to start, an engine that was down).
const RECHECK: Duration = Duration::from_secs(5);

/// Counters a test or a metric can read.
#[derive(Debug, Default)]
pub struct SandboxStats {
    /// Runs that took a pre-warmed container: no create, no start on their path.
    pub warm_takes: AtomicU64,
    /// Runs that had to create and start their container.
    pub cold_starts: AtomicU64,
}

/// A started container with its stdio already attached: its agent waits for a job.
pub struct ReadyContainer {
    pub id: String,
    pub(crate) attached: bollard::container::AttachContainerResults,
    /// The agent's lines read from `attached` and not handled yet.
    pub(crate) lines: crate::exchange::LineBuffer,
}

/// Pre-warmed containers by container key: each was created, attached and started with
/// exactly the settings a run with that key needs, and waits with its agent blocked on stdin.
#[derive(Default)]
pub struct WarmStore {
    containers: Mutex<HashMap<String, VecDeque<ReadyContainer>>>,
    /// Woken whenever a container is taken, so the warmer refills.
    pub refill: Notify,
    pub stats: SandboxStats,
}

impl WarmStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<ReadyContainer>>> {
        self.containers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Warm containers waiting under `key`.
    pub fn count(&self, key: &str) -> usize {
        self.lock().get(key).map_or(0, VecDeque::len)
    }

    /// The ids of every waiting container.
    pub fn ids(&self) -> Vec<String> {
        self.lock()
            .values()
            .flatten()
            .map(|ready| ready.id.clone())
            .collect()
    }

    /// Every warm container, across keys.
    pub fn total(&self) -> usize {
        self.lock().values().map(VecDeque::len).sum()
    }

    pub fn push(&self, key: String, ready: ReadyContainer) {
        self.lock().entry(key).or_default().push_back(ready);
    }

    pub(crate) fn pop(&self, key: &str) -> Option<ReadyContainer> {
        self.lock().get_mut(key).and_then(VecDeque::pop_front)
    }

    /// Empties the store, returning every container id it held.
    pub fn drain(&self) -> Vec<String> {
        self.lock()
            .drain()
            .flat_map(|(_, ready)| ready)
            .map(|ready| ready.id)
            .collect()
    }
}

/// Keeps warm containers for each language's default settings.
pub struct Warmer {
    sandbox: Sandbox,
    /// One per language: the body for its default limits, computed once.
    languages: Vec<WarmLanguage>,
}

/// How many warm containers one language should have, and under which key they wait.
#[derive(Debug, Clone)]
pub struct WarmTarget {
    pub language: String,
    pub key: String,
    pub size: usize,
}

/// What the warmer keeps for one language.
struct WarmLanguage {
    language: String,
    body: ContainerCreateBody,
    /// `container_key(&body)`: what a run with the default limits asks for.
    key: String,
    size: usize,
}

impl Warmer {
    pub fn new<'a>(
        sandbox: Sandbox,
        languages: impl IntoIterator<Item = &'a PoolLanguage>,
        catalog: &coderun_schema::catalog::Catalog,
        per_language: usize,
        sizes: &std::collections::BTreeMap<String, usize>,
    ) -> Self {
        let warmed = languages
            .into_iter()
            .map(|language| {
                let pool = coderun_schema::names::Names::pool_of(&language.spec.id);
                let spec = SandboxSpec {
                    image: &language.spec.image,
                    pool: &pool,
                    run_id: "warm",
                    limits: catalog.default_limits(&language.spec),
                    compiles: language.spec.compile.is_some(),
                    tenant: "",
                    isolation: None,
                };
                let size = sizes
                    .get(&language.spec.id)
                    .copied()
                    .unwrap_or(per_language);
                // What a run of a tenant without a requirement of its own asks for.
                let body = sandbox.body_for(&spec);
                WarmLanguage {
                    language: language.spec.id.clone(),
                    key: container_key(&body),
                    body,
                    size,
                }
            })
            .collect();
        Self {
            sandbox,
            languages: warmed,
        }
    }

    /// Each language's target, for the warm-container gauges.
    pub fn targets(&self) -> Vec<WarmTarget> {
        self.languages
            .iter()
            .map(|warmed| WarmTarget {
                language: warmed.language.clone(),
                key: warmed.key.clone(),
                size: warmed.size,
            })
            .collect()
    }

    /// Fills every language's containers now, so the first runs are warm too.
    pub async fn fill(&self) {
        let store = self.sandbox.warm_store();
        for warmed in &self.languages {
            while store.count(&warmed.key) < warmed.size {
                let name = self.sandbox.container_name("warm");
                match self.sandbox.create_ready(warmed.body.clone(), &name).await {
                    Ok(ready) => store.push(warmed.key.clone(), ready),
                    Err(error) => {
                        let language = &warmed.language;
                        tracing::warn!(%language, %error, "failed to pre-warm a container");
                        break;
                    }
                }
            }
        }
    }

    /// Refills until `shutdown`, then removes every container still waiting.
    pub async fn run(self, shutdown: CancellationToken) {
        let store = self.sandbox.warm_store();
        loop {
            self.fill().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = store.refill.notified() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
        for id in store.drain() {
            self.sandbox.remove(&id).await;
        }
    }
}
