//! `GET /v1/runs/{id}/events`: a run's events as Server-Sent Events.
//!
//! The run's event log in Redis is the source of truth; NATS only says "something new". The
//! stream subscribes to the run's subject first, then sends the log from just after
//! `Last-Event-ID` (all of it without one), then each new event: one that arrives in order is
//! sent as it is, any gap is filled from the log, and the log is read again every second
//! anyway, so a lost NATS message only delays. The stream ends after `completed`. If the
//! record is final and its log has no `completed` (a log that expired before the record), one
//! is made from the record; a record that expired ends the stream. A comment line goes out every 15 s so proxies keep it open.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::http::header;
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse, Responder};
use apistos::paths::{MediaType, Response, Responses};
use apistos::reference_or::ReferenceOr;
use apistos::{api_operation, ApiComponent};
use coderun_schema::messages::{RunEvent, RunEventKind};
use coderun_schema::problem::FieldError;
use coderun_schema::stream::RunStreamEvent;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::routes::{own_run, read_run};
use crate::{auth, wait, State};

/// How often the log is read again when nothing arrives on NATS.
const POLL: Duration = Duration::from_secs(1);
/// Every how many polls the record is read too (to end a stream whose log cannot).
const RECORD_EVERY: u64 = 5;
/// How often a keep-alive comment is sent.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A stream of Server-Sent Events, fed by a task through a channel.
pub struct EventStream(mpsc::Receiver<Bytes>);

impl Responder for EventStream {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse<BoxBody> {
        let body = futures::stream::unfold(self.0, |mut receiver| async move {
            let chunk = receiver.recv().await?;
            Some((Ok::<_, actix_web::Error>(chunk), receiver))
        });
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(body)
    }
}

impl ApiComponent for EventStream {
    fn child_schemas() -> Vec<(String, ReferenceOr<apistos::Schema>)> {
        let mut schemas = <RunStreamEvent as ApiComponent>::child_schemas();
        schemas.extend(<FieldError as ApiComponent>::schema());
        schemas
    }

    fn schema() -> Option<(String, ReferenceOr<apistos::Schema>)> {
        <RunStreamEvent as ApiComponent>::schema()
    }

    fn responses(_content_type: Option<String>) -> Option<Responses> {
        let (name, _) = Self::schema()?;
        // The schema of one event as it goes over the wire; its `data` is the JSON of the
        // named component.
        let event: apistos::Schema = serde_json::from_value(serde_json::json!({
            "type": "object",
            "required": ["id", "event", "data"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9]+$",
                       "description": "The event's `seq`: send it back as `Last-Event-ID` to resume after it."},
                "event": {"type": "string",
                          "enum": ["queued", "running", "compiled", "test", "completed"]},
                "data": {"type": "string",
                         "description": format!("A `{name}` as JSON (see its schema).")}
            }
        }))
        .ok()?;
        let response = Response {
            description: format!(
                "Server-Sent Events: each event's `event:` is its kind, `id:` its `seq`, and \
                 `data:` a `{name}` as JSON; `: keep-alive` comments every 15 s; the stream ends \
                 after `completed`"
            ),
            content: BTreeMap::from([(
                "text/event-stream".to_owned(),
                MediaType {
                    schema: Some(ReferenceOr::Object(event)),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        };
        Some(Responses {
            responses: BTreeMap::from([("200".to_owned(), ReferenceOr::Object(response))])
                .into_iter()
                .collect(),
            ..Default::default()
        })
    }
}

/// Stream a run's events
///
/// Server-Sent Events: `queued`, `running`, `compiled` (with the compile result), `test` (one
/// per test case, with its result) and `completed` (with the whole run), each with an `id:`.
/// Reconnect with `Last-Event-ID` to resume after an event. A client that connects after the
/// run finished gets every event that led to it; the stream ends after `completed`.
#[tracing::instrument(skip_all, fields(run_id = %path.as_str()))]
#[api_operation(
    tag = "runs",
    operation_id = "stream_run_events",
    error_code = 400,
    error_code = 401,
    error_code = 404,
    error_code = 429,
    error_code = 503
)]
pub async fn run_events(
    request: HttpRequest,
    state: Data<State>,
    path: Path<String>,
) -> Result<EventStream, ApiError> {
    let tenant = auth::tenant_of(&request)?;
    let run_id = path.into_inner();
    let after = last_event_id(&request)?;
    own_run(read_run(&state, &run_id).await?, &tenant.id)?;
    let subscriber = wait::subscribe(&state.bus, &run_id)
        .await
        .map_err(ApiError::Unavailable)?;
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut pump = Pump {
            state,
            run_id,
            sent: after,
            sender,
        };
        if let Err(error) = pump.run(subscriber).await {
            tracing::debug!(error = %format!("{error:#}"), "event stream ended early");
        }
    });
    Ok(EventStream(receiver))
}

/// The `Last-Event-ID` header: the `seq` of the last event the client has.
fn last_event_id(request: &HttpRequest) -> Result<u64, ApiError> {
    let Some(value) = request.headers().get("last-event-id") else {
        return Ok(0);
    };
    let refused = || {
        ApiError::BadRequest(
            "Last-Event-ID must be the id of an event of this stream (a whole number)".to_owned(),
        )
    };
    match value.to_str().map(str::trim) {
        Ok("") => Ok(0),
        Ok(text) => text
            .parse::<u64>()
            .ok()
            .filter(|seq| i64::try_from(*seq).is_ok())
            .ok_or_else(refused),
        Err(_) => Err(refused()),
    }
}

/// Why the stream stopped before `completed`.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("the client went away")]
    ClientGone,
    #[error(transparent)]
    Store(#[from] coderun_store::StoreError),
}

struct Pump {
    state: Data<State>,
    run_id: String,
    /// The `seq` of the last event sent.
    sent: u64,
    sender: mpsc::Sender<Bytes>,
}

impl Pump {
    async fn run(&mut self, mut subscriber: async_nats::Subscriber) -> Result<(), Stop> {
        let mut poll = tokio::time::interval(POLL);
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        let mut polls: u64 = 0;
        loop {
            tokio::select! {
                message = subscriber.next() => {
                    let Some(message) = message else { break };
                    let Ok(event) = coderun_bus::decode::<RunEvent>(&message.payload) else {
                        continue;
                    };
                    match event.seq {
                        Some(seq) if seq == self.sent.saturating_add(1) => {
                            if self.send(event).await? {
                                return Ok(());
                            }
                        }
                        Some(seq) if seq <= self.sent => {}
                        _ => {
                            if self.catch_up().await? {
                                return Ok(());
                            }
                        }
                    }
                }
                _ = poll.tick() => {
                    polls += 1;
                    if self.catch_up().await? {
                        return Ok(());
                    }
                    // The record itself (larger than the log) at once, then now and then.
                    if polls % RECORD_EVERY == 1 && self.finished_without_log().await? {
                        return Ok(());
                    }
                }
                _ = keep_alive.tick() => self.write(Bytes::from_static(b": keep-alive\n\n")).await?,
            }
        }
        let _ = subscriber.unsubscribe().await;
        Ok(())
    }

    /// Sends what the log holds after the last event sent; true once `completed` went out.
    async fn catch_up(&mut self) -> Result<bool, Stop> {
        loop {
            let events = self
                .state
                .store
                .events_after(&self.run_id, self.sent)
                .await?;
            if events.is_empty() {
                return Ok(false);
            }
            for event in events {
                if self.send(event).await? {
                    return Ok(true);
                }
            }
        }
    }

    /// A final record whose log has nothing more: its `completed` is made from the record. A
    /// record that is gone (expired) ends the stream: nothing will follow.
    async fn finished_without_log(&mut self) -> Result<bool, Stop> {
        let Some(record) = self.state.store.get(&self.run_id).await? else {
            return Ok(true);
        };
        if !record.run.status.is_terminal() {
            return Ok(false);
        }
        // The log may have grown since it was read.
        if self.catch_up().await? {
            return Ok(true);
        }
        // A log that ends with `completed` has been sent up to the client's id (or past it):
        // nothing follows.
        let last = self.state.store.last_event(&self.run_id).await?;
        if last.is_some_and(|event| event.kind == RunEventKind::Completed) {
            return Ok(true);
        }
        let mut event = RunEvent::with_run(&record.run, RunEventKind::Completed);
        event.seq = Some(self.sent.saturating_add(1));
        if let Some(finished) = record.run.finished_at {
            event.at = finished;
        }
        self.send(event).await
    }

    /// Sends one event (its `seq` must follow the last one sent); true if it was `completed`.
    async fn send(&mut self, event: RunEvent) -> Result<bool, Stop> {
        let seq = event.seq.unwrap_or(self.sent.saturating_add(1));
        let kind = event.kind;
        let data = RunStreamEvent::from_event(seq, event);
        let json = serde_json::to_string(&data).unwrap_or_default();
        let name = serde_json::to_value(kind)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.write(Bytes::from(format!(
            "id: {seq}\nevent: {name}\ndata: {json}\n\n"
        )))
        .await?;
        self.sent = seq;
        Ok(kind == RunEventKind::Completed)
    }

    async fn write(&self, chunk: Bytes) -> Result<(), Stop> {
        self.sender.send(chunk).await.map_err(|_| Stop::ClientGone)
    }
}
