//! Accepting a valid run: the sequence that makes "accepted" mean "stored and queued".
//!
//! 1. A new run id; the submission encoded once and measured against the NATS server's
//!    message limit (413 above it), before anything is stored or bound.
//! 2. With an `Idempotency-Key`: the key bound to the new id, atomically. A key bound already
//!    answers with the run it names (waiting for that run to be stored), never a second run.
//! 3. The run record (`queued`, with its first event) written to Redis unless the tenant is at
//!    its `concurrent_runs` or `queued_runs` quota, or the language at the deployment's
//!    `max_backlog` (429; checked in the same Redis script, so every gateway shares them, and
//!    after the idempotency key, so a retry of an accepted run gets its run); with `wait`, the
//!    run's events subscribed.
//! 4. The submission published to the submit stream and acknowledged by it.
//!
//! If 3 or 4 fails, the client gets 503, the record is closed as `internal_error` and the key
//! released, so nothing waits for a run that was never queued.

use std::time::Duration;

use actix_web::web::Data;
use anyhow::Context as _;
use coderun_schema::callback::{check_address, CallbackTarget};
use coderun_schema::messages::{Job, JobSubmitted, RunEventKind, RunRecord, VERSION};
use coderun_schema::run::{Run, RunRequest, RunStatus, Verdict};
use coderun_schema::trace::TraceContext;
use coderun_store::Created;
use time::OffsetDateTime;
use tracing::Instrument as _;

use crate::auth::Tenant;
use crate::error::ApiError;
use crate::routes::{answer_record, own_run, wait_reply, RunReply};
use crate::{idempotency, validate, wait, State};

/// The job of a request: validated against the catalog and the tenant's maximum limits, for a
/// language some live executor serves (else 503). What every way of creating runs checks
/// before [`accept`].
pub async fn job_for(
    state: &State,
    tenant: &Tenant,
    request: &RunRequest,
) -> Result<Job, ApiError> {
    let mut job = validate::resolve(
        request,
        &state.catalog,
        |max| tenant.max_limits(max),
        &state.config.runs,
    )?;
    job.isolation = tenant.isolation;
    if let Some(url) = &job.callback_url {
        check_callback_name(url, &state.config.runs.callback_allow).await?;
    }
    if !state.executors.serves(&job.language) {
        return Err(ApiError::NoCapacity(job.language));
    }
    Ok(job)
}

/// A `callback_url` whose host is a name that resolves, now, to an internal address is
/// refused at once (422); the scheduler checks again at every delivery, which is what counts:
/// a name that does not resolve yet, or resolves differently later, is caught there.
async fn check_callback_name(url: &str, allow: &[String]) -> Result<(), ApiError> {
    let Ok(target) = CallbackTarget::parse(url) else {
        return Ok(());
    };
    if target.ip.is_some() || target.is_allowed(allow) {
        return Ok(());
    }
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let Ok(Ok(addresses)) = tokio::time::timeout(Duration::from_secs(2), lookup).await else {
        return Ok(());
    };
    // Which address it resolved to is not said: the tenant learns nothing about the network.
    if addresses
        .into_iter()
        .any(|address| check_address(address.ip()).is_err())
    {
        return Err(ApiError::invalid_field(
            "callback_url",
            format!("{} resolves to an address that is not public", target.host),
        ));
    }
    Ok(())
}

fn new_run_id() -> String {
    format!("run_{}", ulid::Ulid::new())
}

/// Stores and queues `job` for `tenant`, or answers the run `idempotency_key` already names.
///
/// The run's trace starts here (under the client's `traceparent` when it sent one): every
/// log line of accepting it carries `run_id` and `trace_id`, and the submission carries the
/// context to the scheduler.
pub async fn accept(
    state: &Data<State>,
    tenant: &Tenant,
    job: Job,
    idempotency_key: Option<String>,
    wait_for: Option<Duration>,
    incoming_trace: Option<TraceContext>,
) -> Result<RunReply, ApiError> {
    let span = tracing::info_span!(
        "accept",
        run_id = tracing::field::Empty,
        trace_id = tracing::field::Empty
    );
    let trace = coderun_telemetry::trace::join(&span, incoming_trace);
    accept_traced(state, tenant, job, idempotency_key, wait_for, trace)
        .instrument(span)
        .await
}

async fn accept_traced(
    state: &Data<State>,
    tenant: &Tenant,
    job: Job,
    idempotency_key: Option<String>,
    wait_for: Option<Duration>,
    trace: TraceContext,
) -> Result<RunReply, ApiError> {
    let quota = coderun_store::ActiveQuota {
        max_backlog: Some(state.config.runs.max_backlog).filter(|cap| *cap > 0),
        ..tenant.active_quota()
    };
    let tenant = tenant.id.as_str();
    let run_id = new_run_id();
    let now = OffsetDateTime::now_utc();
    let submitted = JobSubmitted {
        v: VERSION,
        run_id: run_id.clone(),
        tenant: tenant.to_owned(),
        job,
        submitted_at: now,
    };
    // Encoded once: measured against the server's limit, then published as it is.
    let payload = serde_json::to_vec(&submitted).context("failed to encode the run")?;
    let max_message = state.bus.max_payload_bytes();
    if payload.len() > max_message {
        return Err(ApiError::TooLarge(format!(
            "the run takes {} bytes once encoded; at most {max_message} are accepted",
            payload.len()
        )));
    }

    if let Some(key) = &idempotency_key {
        let bound = state
            .store
            .bind_idempotency_key(tenant, key, &run_id)
            .await
            .context("failed to bind the idempotency key")
            .map_err(ApiError::Unavailable)?;
        if bound != run_id {
            // The same key was used before: answer with that run, never a second one, logged
            // under that run's trace.
            let replay = tracing::info_span!(
                "replay",
                run_id = %bound,
                trace_id = tracing::field::Empty
            );
            return async {
                // The request that bound the key may not have stored its run yet.
                let stored = idempotency::wait_for_record(state, &bound).await?;
                let span = tracing::Span::current();
                coderun_telemetry::trace::join(&span, stored.as_ref().and_then(RunRecord::trace));
                tracing::info!("the idempotency key names an earlier run");
                answer_record(state, own_run(stored, tenant)?, wait_for).await
            }
            .instrument(replay)
            .await;
        }
    }
    tracing::Span::current().record("run_id", run_id.as_str());

    let record = RunRecord {
        v: VERSION,
        tenant: tenant.to_owned(),
        run: Run::queued(run_id.clone(), submitted.job.language.clone(), now),
        submission: Some(submitted),
        traceparent: Some(trace.to_string()),
        job_sequence: None,
    };
    let created = state
        .store
        .create_within(&record, quota)
        .await
        .context("failed to store the run")
        .map_err(ApiError::Unavailable);
    if let Some(refused) = over_quota(created, &record.run.language) {
        if let Some(key) = &idempotency_key {
            let _ = state.store.release_idempotency_key(tenant, key).await;
        }
        return Err(refused);
    }
    // From here the run is stored: queuing it (or closing it when that fails) runs as a task
    // of its own, so a client that goes away meanwhile cannot leave it stored and never queued.
    let task_state = state.clone();
    let key = idempotency_key.clone();
    let language = record.run.language.clone();
    let queuing = tokio::spawn(
        async move {
            let queued = async {
                // Subscribed before publishing: the run cannot finish unseen.
                let events = match wait_for {
                    Some(_) => Some(wait::subscribe(&task_state.bus, &run_id).await?),
                    None => None,
                };
                task_state
                    .bus
                    .publish_durable_encoded(
                        task_state.bus.names().runs_submit(),
                        payload,
                        &run_id,
                        Some(trace),
                    )
                    .await
                    .context("failed to queue the run")?;
                anyhow::Ok(events)
            }
            .await;
            match queued {
                Ok(events) => Ok((events, record)),
                Err(error) => {
                    let tenant = record.tenant.clone();
                    close_unqueued(&task_state, record, &tenant, key.as_deref()).await;
                    Err(error)
                }
            }
        }
        .instrument(tracing::Span::current()),
    );
    let (events, record) = match queuing.await {
        Ok(Ok(queued)) => queued,
        Ok(Err(error)) => return Err(ApiError::Unavailable(error)),
        Err(panicked) => return Err(ApiError::Unexpected(anyhow::anyhow!("{panicked}"))),
    };
    state.metrics.run_accepted(&language);
    tracing::info!("run queued");
    match (events, wait_for) {
        (Some(events), Some(timeout)) => wait_reply(state, events, timeout, record.run).await,
        _ => Ok(RunReply(record.run)),
    }
}

/// The refusal when the run was not stored: a quota, or Redis unreachable (a record that
/// exists already cannot happen with a fresh id).
fn over_quota(created: Result<Created, ApiError>, language: &str) -> Option<ApiError> {
    let (quota, what) = match created {
        Ok(Created::Stored | Created::Exists) => return None,
        Ok(Created::OverQueued) => ("queued_runs", "runs waiting for an executor"),
        Ok(Created::OverConcurrent) => ("concurrent_runs", "runs not finished"),
        Ok(Created::OverBacklog) => {
            return Some(ApiError::OverQuota {
                quota: "max_backlog",
                detail: format!(
                    "as many runs of `{language}` wait for an executor as this deployment \
                     queues; retry once some have started"
                ),
                retry_after_secs: 5,
            })
        }
        Err(error) => return Some(error),
    };
    Some(ApiError::OverQuota {
        quota,
        detail: format!(
            "the tenant has as many {what} as its `{quota}` quota allows; retry once some finish"
        ),
        retry_after_secs: 1,
    })
}

/// The client is told the run was not accepted: make sure nothing waits for it.
async fn close_unqueued(state: &State, mut failed: RunRecord, tenant: &str, key: Option<&str>) {
    failed.run.status = RunStatus::Completed;
    failed.run.verdict = Some(Verdict::InternalError);
    failed.run.finished_at = Some(OffsetDateTime::now_utc());
    failed.run.error = Some("the run could not be queued".to_owned());
    let closed = state
        .store
        .update_and_log(&failed, Some(RunEventKind::Completed))
        .await;
    if let Err(cleanup) = closed {
        tracing::error!(%cleanup, "failed to close a run that could not be queued");
    }
    if let Some(key) = key {
        let _ = state.store.release_idempotency_key(tenant, key).await;
    }
}
