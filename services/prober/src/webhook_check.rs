//! The webhook check (`api.webhook`): a run submitted with a `callback_url` pointing at the
//! prober's own receiver must be POSTed there, for that run, with a valid signature.
//!
//! The receiver is a small HTTP listener of its own (`[webhook]`): `POST /webhook/<token>`
//! stores what came for a token a check is waiting on and answers 204; any other token is a
//! 404, bodies over [`MAX_BODY`] a 413, and a token is forgotten when its check ends, so
//! nothing accumulates (late or duplicate deliveries, strangers posting).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::{self, Bytes, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Context as _;
use coderun_client::Client;
use coderun_schema::run::{Run, RunRequest, Verdict};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::checks::{CheckResult, Timing};

/// The `[webhook]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookCheckConfig {
    /// The receiver's address.
    pub host: String,
    /// The receiver's port (0: any free port).
    pub port: u16,
    /// The base URL the schedulers reach the receiver at; empty: the check is skipped.
    pub public_url: String,
    /// The prober tenant's signing secret; empty: the signature is not checked.
    pub secret: String,
}

impl WebhookCheckConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.public_url.is_empty() {
            return Ok(());
        }
        let url = url::Url::parse(&self.public_url)
            .map_err(|error| format!("webhook.public_url is not a URL: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("webhook.public_url must be an http or https URL".to_owned());
        }
        Ok(())
    }
}

/// The largest webhook body the receiver reads (the probe's run prints one word).
pub const MAX_BODY: usize = 64 * 1024;

/// A webhook the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub run_id: String,
    pub signature: Option<String>,
    pub body: Bytes,
}

/// The tokens checks are waiting on, each with what came for it so far.
#[derive(Default)]
struct Inbox {
    by_token: Mutex<HashMap<String, Option<Received>>>,
    arrived: Notify,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Received>>> {
        self.by_token
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The prober's webhook receiver, serving until stopped.
pub struct Receiver {
    port: u16,
    inbox: Arc<Inbox>,
}

impl Receiver {
    /// Binds and starts serving until `stop`.
    pub fn start(
        config: &WebhookCheckConfig,
        stop: CancellationToken,
    ) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        let listener =
            TcpListener::bind((config.host.as_str(), config.port)).with_context(|| {
                format!(
                    "failed to bind the webhook receiver on {}:{}",
                    config.host, config.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let inbox = Arc::new(Inbox::default());
        let shared = Data::from(inbox.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY))
                .route("/webhook/{token}", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(2)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let serving = tokio::spawn(async move {
            tokio::select! {
                result = server => if let Err(error) = result {
                    tracing::error!(%error, "the webhook receiver failed");
                },
                _ = stop.cancelled() => handle.stop(true).await,
            }
        });
        Ok((Self { port, inbox }, serving))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new token to put in a `callback_url`: webhooks for it are kept while the returned
    /// expectation lives.
    pub fn expect(&self) -> Expectation {
        let token = ulid::Ulid::new().to_string().to_ascii_lowercase();
        self.inbox.lock().insert(token.clone(), None);
        Expectation {
            inbox: self.inbox.clone(),
            token,
        }
    }
}

/// A token the receiver accepts webhooks for, forgotten when this is dropped (also when the
/// check is cut short by its timeout).
pub struct Expectation {
    inbox: Arc<Inbox>,
    token: String,
}

impl Expectation {
    pub fn token(&self) -> &str {
        &self.token
    }

    /// What came for the token, once it comes (`None` after `timeout`).
    pub async fn received(&self, timeout: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.inbox.arrived.notified();
            if let Some(Some(received)) = self.inbox.lock().get(&self.token) {
                return Some(received.clone());
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }
}

impl Drop for Expectation {
    fn drop(&mut self) {
        self.inbox.lock().remove(&self.token);
    }
}

async fn receive(
    inbox: Data<Inbox>,
    token: web::Path<String>,
    request: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let Some(run_id) = header("x-coderun-run-id") else {
        return HttpResponse::BadRequest().finish();
    };
    let mut waiting = inbox.lock();
    let Some(slot) = waiting.get_mut(token.as_str()) else {
        return HttpResponse::NotFound().finish();
    };
    *slot = Some(Received {
        run_id,
        signature: header("x-coderun-signature"),
        body,
    });
    drop(waiting);
    inbox.arrived.notify_waiters();
    HttpResponse::NoContent().finish()
}

/// Whether `header` (`t=<unix>,v1=<hex>`) signs `body` with `secret`: HMAC-SHA256 of
/// `"<t>.<body>"`, compared in constant time.
pub fn signature_valid(header: &str, body: &[u8], secret: &[u8]) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = Some(value),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    signatures.into_iter().any(|signature| {
        let Ok(expected) = hex::decode(signature) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return false;
        };
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    })
}

/// Submits a run whose webhook targets the receiver, and checks what arrives.
pub async fn check(
    client: &Client,
    receiver: &Receiver,
    config: &WebhookCheckConfig,
    timing: Timing,
) -> CheckResult {
    crate::api_checks::timed("api.webhook", timing, async {
        let expected = receiver.expect();
        let token = expected.token();
        let request = RunRequest {
            language: "python".to_owned(),
            source: Some("print('webhook')".to_owned()),
            callback_url: Some(format!(
                "{}/webhook/{token}",
                config.public_url.trim_end_matches('/')
            )),
            ..Default::default()
        };
        let run = client
            .run_and_wait(&request)
            .await
            .map_err(|error| error.to_string())?;
        let received = expected
            .received(timing.timeout)
            .await
            .ok_or_else(|| format!("no webhook came for {}", run.id))?;
        if received.run_id != run.id {
            return Err(format!(
                "the webhook for {} said it was for {}",
                run.id, received.run_id
            ));
        }
        if !config.secret.is_empty() {
            let signature = received.signature.as_deref().unwrap_or_default();
            if !signature_valid(signature, &received.body, config.secret.as_bytes()) {
                return Err(format!("the webhook of {} is not validly signed", run.id));
            }
        }
        let posted: Run = serde_json::from_slice(&received.body)
            .map_err(|error| format!("the webhook body is not a run: {error}"))?;
        match (posted.id == run.id, posted.verdict) {
            (true, Some(Verdict::Ok)) => Ok("delivered and signed".to_owned()),
            (same, verdict) => Err(format!(
                "the webhook carried run {} (same: {same}) with verdict {verdict:?}",
                posted.id
            )),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(timestamp: &str, body: &[u8], secret: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[tokio::test]
    async fn only_an_expected_token_is_accepted_and_it_is_forgotten_after() {
        let config = WebhookCheckConfig {
            host: "127.0.0.1".to_owned(),
            port: 0,
            public_url: String::new(),
            secret: String::new(),
        };
        let stop = CancellationToken::new();
        let (receiver, serving) = Receiver::start(&config, stop.clone()).expect("binds");
        let client = reqwest::Client::new();
        let post = |token: &str, body: Vec<u8>| {
            client
                .post(format!(
                    "http://127.0.0.1:{}/webhook/{token}",
                    receiver.port()
                ))
                .header("x-coderun-run-id", "run_1")
                .body(body)
                .send()
        };
        let status = |response: Result<reqwest::Response, reqwest::Error>| {
            response.expect("answers").status().as_u16()
        };
        assert_eq!(status(post("stranger", b"{}".to_vec()).await), 404);
        let expected = receiver.expect();
        let token = expected.token().to_owned();
        assert_eq!(status(post(&token, vec![b' '; MAX_BODY + 1]).await), 413);
        assert_eq!(status(post(&token, b"{}".to_vec()).await), 204);
        let received = expected.received(Duration::from_secs(5)).await;
        assert_eq!(
            received.map(|received| received.run_id).as_deref(),
            Some("run_1")
        );
        drop(expected);
        assert_eq!(status(post(&token, b"{}".to_vec()).await), 404, "forgotten");
        stop.cancel();
        serving.await.expect("stops");
    }

    #[test]
    fn a_signature_is_valid_only_for_its_body_and_secret() {
        let body = br#"{"id":"run_1"}"#;
        let header = format!("t=1700000000,v1={}", sign("1700000000", body, b"secret"));
        assert!(signature_valid(&header, body, b"secret"));
        assert!(!signature_valid(&header, b"{}", b"secret"));
        assert!(!signature_valid(&header, body, b"other"));
        assert!(!signature_valid("v1=00", body, b"secret"));
    }
}
