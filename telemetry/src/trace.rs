//! Starting and continuing a run's trace. The context itself (W3C `traceparent`) is
//! `coderun_schema::trace::TraceContext`; [`join`] makes a service's span part of the run's
//! trace and says what to send onward.

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub use coderun_schema::trace::{TraceContext, TRACEPARENT};

/// Makes `span` this hop of the run's trace (under `received`, or the start of a new trace),
/// records its `trace_id` field, and returns the context to send with the run's next
/// messages. When spans are exported (OTLP), the ids are the exported span's, so the hops
/// link up in the trace viewer; otherwise they are drawn here.
pub fn join(span: &tracing::Span, received: Option<TraceContext>) -> TraceContext {
    let context = exported_context(span, received).unwrap_or_else(|| continue_or_start(received));
    span.record("trace_id", context.trace_id_hex().as_str());
    context
}

fn exported_context(span: &tracing::Span, received: Option<TraceContext>) -> Option<TraceContext> {
    if !crate::logs::exporting() || span.is_disabled() {
        return None;
    }
    if let Some(received) = received {
        let remote = SpanContext::new(
            TraceId::from_bytes(received.trace_id),
            SpanId::from_bytes(received.parent_id),
            TraceFlags::new(received.flags),
            true,
            TraceState::default(),
        );
        let parent = opentelemetry::Context::new().with_remote_span_context(remote);
        span.set_parent(parent).ok()?;
    }
    let own = span.context().span().span_context().clone();
    if !own.is_valid() {
        return None;
    }
    let mut context = TraceContext::new(own.trace_id().to_bytes(), own.span_id().to_bytes())?;
    context.flags = own.trace_flags().to_u8();
    Some(context)
}

/// A new trace: a random trace id under a random root span id.
pub fn start() -> TraceContext {
    loop {
        if let Some(context) = TraceContext::new(rand::random(), rand::random()) {
            return context;
        }
    }
}

/// This hop's context: the received one under a new span id of this hop, or a new trace when
/// nothing (or nothing valid) was received.
pub fn continue_or_start(received: Option<TraceContext>) -> TraceContext {
    match received {
        Some(context) => context.child(span_id()),
        None => start(),
    }
}

/// A random, non-zero span id.
pub fn span_id() -> [u8; 8] {
    loop {
        let id: [u8; 8] = rand::random();
        if id != [0; 8] {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuing_keeps_the_trace_and_starting_makes_a_new_one() {
        let first = start();
        let next = continue_or_start(Some(first));
        assert_eq!(next.trace_id, first.trace_id);
        assert_ne!(next.parent_id, first.parent_id);
        assert_ne!(continue_or_start(None).trace_id, first.trace_id);
    }

    #[test]
    fn without_export_a_span_joins_the_received_trace_and_records_it() {
        let received = TraceContext::new([9; 16], [8; 8]).expect("valid");
        let span = tracing::info_span!("hop", trace_id = tracing::field::Empty);
        let onward = join(&span, Some(received));
        assert_eq!(onward.trace_id, received.trace_id);
        assert_ne!(onward.parent_id, received.parent_id);
    }
}
