//! Publishing schema messages, each with the run's trace context as a `traceparent` header
//! when there is one, and every failure counted in `coderun_nats_errors_total`.

use std::time::Duration;

use async_nats::HeaderMap;
use coderun_schema::messages::{RunEvent, WebhookDue};
use coderun_schema::trace::{TraceContext, TRACEPARENT};
use serde::Serialize;

use crate::{describe, Bus, BusError, Cause};

/// The trace context a message carries, if it carries a valid one.
pub fn trace_of(headers: Option<&HeaderMap>) -> Option<TraceContext> {
    headers
        .and_then(|headers| headers.get(TRACEPARENT))
        .and_then(|value| TraceContext::parse(value.as_str()))
}

fn headers_with(trace: Option<TraceContext>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(trace) = trace {
        headers.insert(TRACEPARENT, trace.to_string().as_str());
    }
    headers
}

/// The bytes headers add to a message on the wire (`NATS/1.0\r\n`, each `name: value\r\n`,
/// the closing `\r\n`), which the server counts against its payload limit.
fn header_bytes(headers: &HeaderMap) -> usize {
    if headers.is_empty() {
        return 0;
    }
    let lines: usize = headers
        .iter()
        .map(|(name, values)| {
            values
                .iter()
                .map(|value| name.to_string().len() + value.as_str().len() + 4)
                .sum::<usize>()
        })
        .sum();
    "NATS/1.0\r\n".len() + lines + 2
}

impl Bus {
    /// Refuses, before sending, a message the server would refuse (closing the connection):
    /// payload and headers over its payload limit.
    fn check_size(
        &self,
        operation: &'static str,
        subject: &str,
        payload: usize,
        headers: &HeaderMap,
    ) -> Result<(), BusError> {
        let limit = self.max_message_bytes();
        let size = payload + header_bytes(headers);
        if size > limit {
            self.count_error(operation);
            return Err(BusError::Publish {
                subject: subject.to_owned(),
                source: format!("the message takes {size} bytes; the server accepts {limit}")
                    .into(),
            });
        }
        Ok(())
    }

    /// Publishes a run's event on its subject (core NATS). Best effort: listeners fall back to
    /// the run's event log and record, so an event lost here delays, never loses (logged).
    pub async fn publish_run_event(&self, event: &RunEvent, trace: Option<TraceContext>) {
        let subject = self.names.run_events(&event.run_id);
        if let Err(error) = self.publish_traced(subject, event, trace).await {
            tracing::warn!(run_id = %event.run_id, error = %describe(&error), "failed to publish a run event");
        }
    }

    /// Hands a run's webhook to the scheduler (stored once per run, whoever sends it), trying
    /// a few times: a run made final is not undone because NATS hiccuped, but its webhook
    /// would be lost if every try failed (logged).
    pub async fn announce_webhook(&self, due: &WebhookDue, trace: Option<TraceContext>) {
        for attempt in 1..=3u64 {
            match self
                .publish_durable_traced(self.names.webhooks_due(), due, &due.run_id, trace)
                .await
            {
                Ok(()) => return,
                Err(error) if attempt == 3 => {
                    tracing::error!(run_id = %due.run_id, error = %describe(&error), "the run's webhook could not be queued; it will not be sent");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * attempt)).await,
            }
        }
    }

    /// Publishes on core NATS: fire and forget (events, heartbeats).
    pub async fn publish<T: Serialize>(
        &self,
        subject: String,
        message: &T,
    ) -> Result<(), BusError> {
        self.publish_traced(subject, message, None).await
    }

    /// [`Bus::publish`] carrying a run's trace context.
    pub async fn publish_traced<T: Serialize>(
        &self,
        subject: String,
        message: &T,
        trace: Option<TraceContext>,
    ) -> Result<(), BusError> {
        let payload = serde_json::to_vec(message)?;
        let headers = headers_with(trace);
        self.check_size("publish", &subject, payload.len(), &headers)?;
        let sent = if headers.is_empty() {
            self.client.publish(subject.clone(), payload.into()).await
        } else {
            self.client
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
        };
        sent.map_err(|error| {
            self.count_error("publish");
            BusError::Publish {
                subject,
                source: error.into(),
            }
        })
    }

    /// Publishes to JetStream and waits until the stream has stored the message. `message_id`
    /// makes retries idempotent within the stream's duplicate window.
    pub async fn publish_durable<T: Serialize>(
        &self,
        subject: String,
        message: &T,
        message_id: &str,
    ) -> Result<(), BusError> {
        self.publish_durable_traced(subject, message, message_id, None)
            .await
    }

    /// [`Bus::publish_durable`] carrying a run's trace context.
    pub async fn publish_durable_traced<T: Serialize>(
        &self,
        subject: String,
        message: &T,
        message_id: &str,
        trace: Option<TraceContext>,
    ) -> Result<(), BusError> {
        let payload = serde_json::to_vec(message)?;
        self.publish_durable_encoded(subject, payload, message_id, trace)
            .await
    }

    /// [`Bus::publish_durable_traced`] for a message already encoded (when the caller needed
    /// its size first).
    pub async fn publish_durable_encoded(
        &self,
        subject: String,
        payload: Vec<u8>,
        message_id: &str,
        trace: Option<TraceContext>,
    ) -> Result<(), BusError> {
        let mut headers = headers_with(trace);
        headers.insert("Nats-Msg-Id", message_id);
        self.check_size("publish_durable", &subject, payload.len(), &headers)?;
        let publish_error = |source: Cause| {
            self.count_error("publish_durable");
            BusError::Publish {
                subject: subject.clone(),
                source,
            }
        };
        let ack = self
            .jetstream
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await
            .map_err(|error| publish_error(error.into()))?;
        ack.await.map_err(|error| publish_error(error.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_carries_a_trace_and_a_bad_one_carries_none() {
        let trace = TraceContext::new([1; 16], [2; 8]).expect("valid ids");
        let headers = headers_with(Some(trace));
        assert_eq!(trace_of(Some(&headers)), Some(trace));
        let mut bad = HeaderMap::new();
        bad.insert(TRACEPARENT, "not-a-trace");
        assert_eq!(trace_of(Some(&bad)), None);
        assert_eq!(trace_of(None), None);
    }
}
