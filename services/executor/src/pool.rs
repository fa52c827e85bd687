//! Pre-warmed containers: for every language served, a few containers created, attached and
//! started ahead of time with the language's default limits, their agents blocked on stdin, so
//! a run with those limits pays neither create, nor attach, nor start. Each is taken by exactly one run and never
//! reused; the warmer refills in the background whenever one is taken. Runs with other limits
//! get a container created for them with exactly their settings (never a looser one).

use std::time::Duration;

use bollard::models::ContainerCreateBody;
use tokio_util::sync::CancellationToken;

use crate::sandbox::{container_key, Sandbox, SandboxSpec};
use crate::worker::PoolLanguage;

/// How often the warmer re-checks its pools even when nothing woke it (a container that
/// failed to start, an engine that was down).
const RECHECK: Duration = Duration::from_secs(5);

/// Keeps warm containers for each language's default settings.
pub struct Warmer {
    sandbox: Sandbox,
    /// (language, container body for its default limits, how many to keep).
    bodies: Vec<(String, ContainerCreateBody, usize)>,
}

impl Warmer {
    pub fn new<'a>(
        sandbox: Sandbox,
        languages: impl IntoIterator<Item = &'a PoolLanguage>,
        catalog: &coderun_schema::catalog::Catalog,
        per_language: usize,
        sizes: &std::collections::BTreeMap<String, usize>,
    ) -> Self {
        let bodies = languages
            .into_iter()
            .map(|language| {
                let spec = SandboxSpec {
                    image: &language.spec.image,
                    pool: &language.spec.id,
                    run_id: "warm",
                    limits: catalog.default_limits(&language.spec),
                    compiles: language.spec.compile.is_some(),
                };
                let size = sizes
                    .get(&language.spec.id)
                    .copied()
                    .unwrap_or(per_language);
                (
                    language.spec.id.clone(),
                    sandbox.container_body(&spec),
                    size,
                )
            })
            .collect();
        Self { sandbox, bodies }
    }

    /// Fills every pool now, so the first runs are warm too.
    pub async fn fill(&self) {
        let store = self.sandbox.warm_store();
        for (language, body, size) in &self.bodies {
            let key = container_key(body);
            while store.count(&key) < *size {
                match self.sandbox.create_ready(body.clone()).await {
                    Ok(ready) => store.push(key.clone(), ready),
                    Err(error) => {
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
            self.sandbox.discard(&id).await;
        }
    }
}
