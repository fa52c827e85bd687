//! The API paths users depend on, each checked through the public API: a run's `Location`
//! and long-poll, an idempotent retry, the legacy runner API, cancel, and the event stream.

use std::future::Future;
use std::time::Instant;

use coderun_client::{Client, CreateOptions};
use coderun_schema::messages::RunEventKind;
use coderun_schema::run::{RunRequest, RunStatus, StageLimitsRequest, Verdict};

use crate::checks::{CheckResult, Timing};

fn python(source: &str) -> RunRequest {
    RunRequest {
        language: "python".to_owned(),
        source: Some(source.to_owned()),
        ..Default::default()
    }
}

/// Runs one check within its timeout and objective.
pub(crate) async fn timed<F>(name: &str, timing: Timing, check: F) -> CheckResult
where
    F: Future<Output = Result<String, String>>,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(timing.timeout, check).await;
    let elapsed = started.elapsed();
    let (passed, detail) = match outcome {
        Err(_) => (false, format!("no answer within {:?}", timing.timeout)),
        Ok(Ok(detail)) => (true, detail),
        Ok(Err(why)) => (false, why),
    };
    CheckResult {
        name: name.to_owned(),
        language: "python".to_owned(),
        objective: timing.objective,
        passed,
        detail,
        millis: elapsed.as_millis(),
        within_objective: elapsed <= timing.objective,
    }
}

/// `POST /v1/runs` without waiting (202, `Location`), then `GET` with `wait_ms`.
async fn long_poll(client: &Client) -> Result<String, String> {
    let created = client
        .create_run(&python("print('polled')"), &CreateOptions::default())
        .await
        .map_err(|error| error.to_string())?;
    let id = created.body.id;
    if created.status != 202 || created.location.as_deref() != Some(&format!("/v1/runs/{id}")) {
        return Err(format!(
            "created: {} with Location {:?}",
            created.status, created.location
        ));
    }
    let read = client
        .get_run(&id, Some(30_000))
        .await
        .map_err(|error| error.to_string())?;
    match (read.status, read.body.verdict, read.body.stdout()) {
        (200, Some(Verdict::Ok), "polled\n") => Ok("202, then 200 ok".to_owned()),
        (status, verdict, stdout) => Err(format!("{status} {verdict:?} {stdout:?}")),
    }
}

/// The same `Idempotency-Key` twice: one run.
async fn idempotent_retry(client: &Client) -> Result<String, String> {
    let options = CreateOptions {
        idempotency_key: Some(format!("prober-{}", ulid::Ulid::new())),
        ..Default::default()
    };
    let request = python("print('once')");
    let first = client
        .create_run(&request, &options)
        .await
        .map_err(|error| error.to_string())?;
    let again = client
        .create_run(&request, &options)
        .await
        .map_err(|error| error.to_string())?;
    if first.body.id == again.body.id {
        Ok("one run for two requests".to_owned())
    } else {
        Err(format!("two runs: {} and {}", first.body.id, again.body.id))
    }
}

/// The legacy runner API: create with longpoll, then the details.
async fn legacy(client: &Client, api_key: &str) -> Result<String, String> {
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("source_code", "print(input())")
        .append_pair("language", "python3")
        .append_pair("input", "legacy")
        .append_pair("longpoll", "true")
        .append_pair("longpoll_timeout", "30")
        .append_pair("api_key", api_key)
        .finish();
    let created = client
        .send_raw(
            reqwest::Method::POST,
            "/runners/create",
            Some("application/x-www-form-urlencoded"),
            form.into_bytes(),
            &[],
        )
        .await
        .map_err(|error| error.to_string())?;
    let status: serde_json::Value = serde_json::from_slice(&created.body)
        .map_err(|_| format!("create answered {}", created.status))?;
    let id = status["id"].as_str().unwrap_or_default().to_owned();
    if status["status"] != "completed" {
        return Err(format!("create: {status}"));
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id", &id)
        .append_pair("api_key", api_key)
        .finish();
    let details = client
        .send_raw(
            reqwest::Method::GET,
            &format!("/runners/get_details?{query}"),
            None,
            Vec::new(),
            &[],
        )
        .await
        .map_err(|error| error.to_string())?;
    let details: serde_json::Value = serde_json::from_slice(&details.body)
        .map_err(|_| format!("get_details answered {}", details.status))?;
    match (details["result"].as_str(), details["stdout"].as_str()) {
        (Some("success"), Some("legacy\n")) => Ok("completed, success".to_owned()),
        _ => Err(format!("details: {details}")),
    }
}

/// A long run cancelled: `cancelled` at once.
async fn cancel(client: &Client) -> Result<String, String> {
    let mut request = python("import time\ntime.sleep(30)");
    request.limits.run = Some(StageLimitsRequest {
        wall_ms: Some(40_000),
        ..Default::default()
    });
    let created = client
        .create_run(&request, &CreateOptions::default())
        .await
        .map_err(|error| error.to_string())?;
    let cancelled = client
        .cancel_run(&created.body.id)
        .await
        .map_err(|error| error.to_string())?;
    match (cancelled.body.status, cancelled.body.verdict) {
        (RunStatus::Cancelled, Some(Verdict::Cancelled)) => Ok("cancelled".to_owned()),
        (status, verdict) => Err(format!("{status:?} {verdict:?}")),
    }
}

/// A finished run's event stream: from `queued` to `completed`.
async fn events(client: &Client) -> Result<String, String> {
    let run = client
        .run_and_wait(&python("print('streamed')"))
        .await
        .map_err(|error| error.to_string())?;
    let events = client
        .run_events(&run.id, None)
        .await
        .map_err(|error| error.to_string())?
        .collect()
        .await
        .map_err(|error| error.to_string())?;
    let kinds: Vec<_> = events.iter().map(|event| event.data.event).collect();
    match (kinds.first(), kinds.last()) {
        (Some(RunEventKind::Queued), Some(RunEventKind::Completed)) => {
            Ok(format!("{} events", kinds.len()))
        }
        _ => Err(format!("events {kinds:?}")),
    }
}

/// Every API-path check, one after another.
pub async fn run(client: &Client, api_key: &str, timing: Timing) -> Vec<CheckResult> {
    vec![
        timed("api.long_poll", timing, long_poll(client)).await,
        timed("api.idempotent_retry", timing, idempotent_retry(client)).await,
        timed("api.legacy", timing, legacy(client, api_key)).await,
        timed("api.cancel", timing, cancel(client)).await,
        timed("api.events", timing, events(client)).await,
    ]
}
