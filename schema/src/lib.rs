//! Every type that crosses a coderun process boundary, and nothing else.
//!
//! If a type is serialisable, it is part of an IPC boundary and lives here:
//!
//! - [`run`]: the public HTTP bodies — [`run::RunRequest`] in, [`run::Run`] out;
//!   [`batch`]: many runs in one request; [`legacy`]: the older runner API's bodies.
//! - [`messages`]: NATS messages between services ([`messages::JobSubmitted`],
//!   [`messages::JobDispatched`], [`messages::RunEvent`], [`messages::ExecutorHeartbeat`]) and
//!   the Redis value [`messages::RunRecord`]. Each carries a schema version `v`.
//! - [`stream`]: the body of each Server-Sent Event of a run's event stream.
//! - [`agent`]: the host ⇄ in-container agent protocol.
//! - [`catalog`]: the language catalog (`images/languages.toml`) and resolved limits.
//! - [`file_names`]: the one rule for submitted file names (gateway and agent);
//!   [`callback`]: the one rule for webhook targets (gateway and scheduler).
//! - [`trace`]: the W3C trace context that travels with a run (HTTP and NATS headers).
//! - [`names`]: NATS subject, stream and Redis key names, all under one prefix.
//! - [`problem`]: RFC 9457 problem details, the body of every HTTP error.
//! - [`bytes64`]: bytes that travel as base64 strings in JSON.
//!
//! Architecture invariant: this crate knows nothing of tokio, actix, redis or NATS. The
//! optional `openapi` feature (on only in the gateway) adds apistos derives and nothing else.
//! Readers ignore unknown fields; fields are only ever added, never renamed or repurposed.

pub mod agent;
pub mod batch;
pub mod bytes64;
pub mod callback;
pub mod catalog;
pub mod file_names;
pub mod legacy;
pub mod messages;
pub mod names;
pub mod problem;
pub mod run;
pub mod stream;
mod strict;
pub mod trace;
