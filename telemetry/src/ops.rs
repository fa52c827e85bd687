//! The operations listener: `GET /metrics` (the service's registry), `GET /healthz` (the
//! process answers) and `GET /readyz` (its dependencies answer; 503 naming the ones that do
//! not). Bound to a configured address, separate from any public API, port 0 in tests.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::web::{self, Data};
use actix_web::{App, HttpResponse, HttpServer};
use anyhow::Context as _;
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::metrics::{render, CONTENT_TYPE};

/// Each dependency's name and whether it answers right now.
pub type Readiness = Vec<(&'static str, bool)>;

/// Asks every dependency of the service whether it answers.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Readiness> + Send + Sync>;

/// The `[ops]` section of a service's configuration: where its operations listener binds.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// The address to listen on: `127.0.0.1` keeps metrics and health on the host, `0.0.0.0`
    /// lets a Prometheus elsewhere scrape them.
    pub host: String,
    /// The port (0: any free port, as the tests use).
    pub port: u16,
}

struct Shared {
    registry: Arc<Registry>,
    readiness: ReadinessCheck,
}

/// The bound operations listener.
pub struct OpsServer {
    listener: TcpListener,
    shared: Data<Shared>,
}

impl OpsServer {
    /// Binds as configured.
    pub fn bind_with(
        config: &OpsConfig,
        registry: Arc<Registry>,
        readiness: ReadinessCheck,
    ) -> anyhow::Result<Self> {
        Self::bind(&config.host, config.port, registry, readiness)
    }

    /// Binds `host:port` (port 0: any free port).
    pub fn bind(
        host: &str,
        port: u16,
        registry: Arc<Registry>,
        readiness: ReadinessCheck,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((host, port))
            .with_context(|| format!("failed to bind the ops listener on {host}:{port}"))?;
        Ok(Self {
            listener,
            shared: Data::new(Shared {
                registry,
                readiness,
            }),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let shared = self.shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/metrics", web::get().to(metrics))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(self.listener)
        .context("failed to serve the ops listener")?
        .run();
        let handle = server.handle();
        let stop = tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        server.await.context("the ops listener failed")?;
        stop.abort();
        Ok(())
    }
}

async fn metrics(shared: Data<Shared>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(render(&shared.registry))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// How long the readiness checks may take together before the service counts as not ready.
const READINESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

async fn readyz(shared: Data<Shared>) -> HttpResponse {
    let Ok(checks) = tokio::time::timeout(READINESS_TIMEOUT, (shared.readiness)()).await else {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "unavailable",
            "checks": {},
            "detail": "the readiness checks did not answer in time",
        }));
    };
    let ready = checks.iter().all(|(_, ok)| *ok);
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": checks
            .iter()
            .map(|(name, ok)| (name.to_string(), serde_json::Value::Bool(*ok)))
            .collect::<serde_json::Map<_, _>>(),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn the_listener_serves_metrics_health_and_readiness_that_follows_its_dependency() {
        let registry = Arc::new(crate::metrics::registry_for("test", "0.0.0"));
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        let readiness: ReadinessCheck = Arc::new(move || {
            let ok = flag.load(Ordering::SeqCst);
            Box::pin(async move { vec![("nats", ok)] })
        });
        let server = OpsServer::bind("127.0.0.1", 0, registry, readiness).expect("binds");
        let base = format!("http://127.0.0.1:{}", server.port());
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(server.run(shutdown.clone()));
        let client = reqwest::Client::new();
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("answers");
        assert_eq!(metrics.status(), 200);
        assert!(metrics
            .text()
            .await
            .expect("text")
            .contains(r#"coderun_build_info{service="test",version="0.0.0"} 1"#));
        let health = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("answers");
        assert_eq!(health.status(), 200);
        let ready = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("answers");
        assert_eq!(ready.status(), 200);
        up.store(false, Ordering::SeqCst);
        let not_ready = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("answers");
        assert_eq!(not_ready.status(), 503);
        let body: serde_json::Value = not_ready.json().await.expect("json");
        assert_eq!(body["checks"]["nats"], false);
        shutdown.cancel();
        serving.await.expect("joins").expect("stops cleanly");
    }
}
