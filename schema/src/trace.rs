//! The trace context that makes one run one trace: a W3C `traceparent`
//! (`00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`), carried as a NATS header
//! from the gateway to the scheduler, the executor, and back (run events, webhooks), and
//! accepted from an HTTP client that sends one.

use std::fmt;

/// The header (HTTP and NATS) that carries a [`TraceContext`].
pub const TRACEPARENT: &str = "traceparent";

/// One hop of a trace: which trace, and which span the next one hangs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace every span of the run belongs to; never all zeros.
    pub trace_id: [u8; 16],
    /// The span that sent this context (the parent of the receiver's span); never all zeros.
    pub parent_id: [u8; 8],
    /// W3C trace flags; bit 0 says the caller records this trace.
    pub flags: u8,
}

impl TraceContext {
    /// A context from ids the caller drew at random; `None` if either is all zeros (invalid in
    /// W3C trace context).
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8]) -> Option<Self> {
        (trace_id != [0; 16] && parent_id != [0; 8]).then_some(Self {
            trace_id,
            parent_id,
            flags: 1,
        })
    }

    /// The same trace under another parent span (the span id the caller drew for itself).
    pub fn child(self, span_id: [u8; 8]) -> Self {
        Self {
            parent_id: if span_id == [0; 8] {
                self.parent_id
            } else {
                span_id
            },
            ..self
        }
    }

    /// The trace id as 32 lowercase hex digits, as it appears in logs.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The parent span id as 16 lowercase hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex(&self.parent_id)
    }

    /// Parses a `traceparent` value. Version `00` must have exactly four fields; a later
    /// version may append fields, which are ignored. Anything else is `None` (the receiver
    /// starts a trace of its own, as the W3C specification says).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let parent_id = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let mut trace = [0u8; 16];
        let mut parent = [0u8; 8];
        let mut flag = [0u8; 1];
        decode_hex(trace_id, &mut trace)?;
        decode_hex(parent_id, &mut parent)?;
        decode_hex(flags, &mut flag)?;
        let context = Self::new(trace, parent)?;
        Some(Self {
            flags: flag[0],
            ..context
        })
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn decode_hex(text: &str, out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 || !is_lower_hex(text) {
        return None;
    }
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_w3c_example_round_trips() {
        let context = TraceContext::parse(EXAMPLE).expect("the specification's example parses");
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_id_hex(), "00f067aa0ba902b7");
        assert_eq!(context.flags, 1);
        assert_eq!(context.to_string(), EXAMPLE);
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_parent() {
        let context = TraceContext::parse(EXAMPLE).expect("parses");
        let child = context.child([7; 8]);
        assert_eq!(child.trace_id, context.trace_id);
        assert_eq!(child.parent_id_hex(), "0707070707070707");
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?} is refused");
        }
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more")
                .is_some(),
            "a later version may append fields"
        );
    }
}
