//! Starting and continuing a run's trace. The context itself (W3C `traceparent`) is
//! `coderun_schema::trace::TraceContext`; this module draws the random ids.

pub use coderun_schema::trace::{TraceContext, TRACEPARENT};

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
}
