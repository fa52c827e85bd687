//! A typed client of the coderun public HTTP API, over the schema types.
//!
//! The prober, the tools and the integration tests call the API through this crate and only
//! through it, so the API is exercised exactly as a client sees it.
//!
//! - [`Client`]: one per base URL and API key.
//! - [`Reply`]: a successful answer with its status (200 or 202) and `Location`.
//! - [`ClientError::Problem`]: an error answer, decoded from problem+json.
//! - [`EventReader`]: a run's Server-Sent Events, one at a time.
//! - [`Client::send_raw`]: an escape hatch for sending bytes the typed calls never would
//!   (malformed JSON, wrong media types), to prove the API's answers to bad input.

mod events;

use std::time::Duration;

pub use events::{EventReader, SseEvent};

use coderun_schema::batch::BatchResponse;
use coderun_schema::problem::Problem;
use coderun_schema::run::{Health, LanguageList, Run, RunList, RunRequest};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use serde::de::DeserializeOwned;

/// What can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the API key cannot be sent in a header")]
    ApiKey,
    #[error("invalid base URL: {0}")]
    BaseUrl(#[from] url::ParseError),
    #[error("the API answered {status}: {}", problem.title)]
    Problem {
        status: u16,
        problem: Problem,
        /// Seconds, from `Retry-After`.
        retry_after: Option<u64>,
    },
    #[error("the API answered {status} with a body that is not problem+json: {body}")]
    UnexpectedBody { status: u16, body: String },
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
}

impl ClientError {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Problem { status, .. } | ClientError::UnexpectedBody { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ClientError::Problem { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    pub status: u16,
    pub body: T,
    pub location: Option<String>,
}

/// Options of [`Client::create_run`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `?wait=true`.
    pub wait: bool,
    /// `timeout_ms` with `wait`.
    pub timeout_ms: Option<u64>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
}

/// An answer to [`Client::send_raw`], whatever its status.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

/// A client bound to one gateway and one API key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
}

impl Client {
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, ClientError> {
        let mut headers = HeaderMap::new();
        if !api_key.is_empty() {
            let mut value = HeaderValue::from_str(&format!("Bearer {api_key}"))
                .map_err(|_| ClientError::ApiKey)?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(300))
            // The gateway closes a connection idle for 5 s (actix's keep-alive): one reused at
            // that very moment fails the request ("error sending request"), which the bench's
            // random arrivals met once in a few thousand runs. Connections idle that long are
            // dropped here first.
            .pool_idle_timeout(Duration::from_secs(4))
            .build()?;
        Ok(Self {
            http,
            base: url::Url::parse(base_url)?,
        })
    }

    fn url(&self, path: &str) -> Result<url::Url, ClientError> {
        Ok(self.base.join(path)?)
    }

    /// `POST /v1/runs`.
    pub async fn create_run(
        &self,
        request: &RunRequest,
        options: &CreateOptions,
    ) -> Result<Reply<Run>, ClientError> {
        let mut url = self.url("/v1/runs")?;
        if options.wait {
            let mut query = url.query_pairs_mut();
            query.append_pair("wait", "true");
            if let Some(timeout) = options.timeout_ms {
                query.append_pair("timeout_ms", &timeout.to_string());
            }
        }
        let mut builder = self.http.post(url).json(request);
        if let Some(key) = &options.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        decode(builder.send().await?).await
    }

    /// `POST /v1/runs?wait=true` with the default timeout.
    pub async fn run_and_wait(&self, request: &RunRequest) -> Result<Run, ClientError> {
        let options = CreateOptions {
            wait: true,
            ..Default::default()
        };
        Ok(self.create_run(request, &options).await?.body)
    }

    /// `GET /v1/runs/{id}`, long-polling up to `wait_ms` when given.
    pub async fn get_run(&self, id: &str, wait_ms: Option<u64>) -> Result<Reply<Run>, ClientError> {
        let mut url = self.url(&format!("/v1/runs/{id}"))?;
        if let Some(wait_ms) = wait_ms {
            url.query_pairs_mut()
                .append_pair("wait_ms", &wait_ms.to_string());
        }
        decode(self.http.get(url).send().await?).await
    }

    /// `POST /v1/runs/batch`: up to `MAX_BATCH_RUNS` runs (any JSON, so a test can send
    /// items that are not run requests), each answered on its own.
    pub async fn create_batch(
        &self,
        runs: &[serde_json::Value],
        idempotency_key: Option<&str>,
    ) -> Result<BatchResponse, ClientError> {
        let url = self.url("/v1/runs/batch")?;
        let mut builder = self
            .http
            .post(url)
            .json(&serde_json::json!({ "runs": runs }));
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        Ok(decode(builder.send().await?).await?.body)
    }

    /// `GET /v1/runs`: a page of the tenant's runs, newest first.
    pub async fn list_runs(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<RunList, ClientError> {
        let mut url = self.url("/v1/runs")?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(cursor) = cursor {
                query.append_pair("cursor", cursor);
            }
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
        }
        Ok(decode(self.http.get(url).send().await?).await?.body)
    }

    /// `POST /v1/runs/{id}/cancel`: the run, `cancelled` (a 409 problem if it had finished).
    pub async fn cancel_run(&self, id: &str) -> Result<Reply<Run>, ClientError> {
        let url = self.url(&format!("/v1/runs/{id}/cancel"))?;
        decode(self.http.post(url).send().await?).await
    }

    /// `GET /v1/runs/{id}/events`: the run's Server-Sent Events, from just after
    /// `last_event_id` when given.
    pub async fn run_events(
        &self,
        id: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventReader, ClientError> {
        let url = self.url(&format!("/v1/runs/{id}/events"))?;
        let mut builder = self.http.get(url).header("Accept", "text/event-stream");
        if let Some(last) = last_event_id {
            builder = builder.header("Last-Event-ID", last);
        }
        let response = builder.send().await?;
        if !response.status().is_success() {
            return Err(decode::<serde_json::Value>(response).await.err().unwrap_or(
                ClientError::UnexpectedBody {
                    status: 0,
                    body: "an error status without a problem".to_owned(),
                },
            ));
        }
        Ok(EventReader::new(response))
    }

    /// `GET /v1/languages`.
    pub async fn languages(&self) -> Result<LanguageList, ClientError> {
        let url = self.url("/v1/languages")?;
        Ok(decode(self.http.get(url).send().await?).await?.body)
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        Ok(decode(self.http.get(self.url("/healthz")?).send().await?)
            .await?
            .body)
    }

    /// `GET /readyz`.
    pub async fn ready(&self) -> Result<Health, ClientError> {
        Ok(decode(self.http.get(self.url("/readyz")?).send().await?)
            .await?
            .body)
    }

    /// `GET /openapi.json`, as JSON.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        Ok(
            decode(self.http.get(self.url("/openapi.json")?).send().await?)
                .await?
                .body,
        )
    }

    /// Sends any bytes with any content type and returns the answer as it is.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse, ClientError> {
        let mut builder = self.http.request(method, self.url(path)?).body(body);
        if let Some(content_type) = content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = builder.send().await?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value: &HeaderValue| value.to_str().ok())
                .map(str::to_owned)
        };
        Ok(RawResponse {
            status: response.status().as_u16(),
            content_type: header(CONTENT_TYPE),
            retry_after: header(RETRY_AFTER),
            body: response.bytes().await?.to_vec(),
        })
    }
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<Reply<T>, ClientError> {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let bytes = response.bytes().await?;
    if (200..300).contains(&status) {
        return serde_json::from_slice(&bytes)
            .map(|body| Reply {
                status,
                body,
                location,
            })
            .map_err(|_| ClientError::UnexpectedBody {
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
    }
    match serde_json::from_slice::<Problem>(&bytes) {
        Ok(problem) => Err(ClientError::Problem {
            status,
            problem,
            retry_after,
        }),
        Err(_) => Err(ClientError::UnexpectedBody {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }),
    }
}
