//! The body of each Server-Sent Event of `GET /v1/runs/{id}/events`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[cfg(feature = "openapi")]
use apistos::ApiComponent;
#[cfg(feature = "openapi")]
use schemars::JsonSchema;

use crate::messages::{RunEvent, RunEventKind};
use crate::run::{Run, StageResult};

/// One event of a run's stream, the `data:` of a Server-Sent Event whose `event:` is `event`
/// and whose `id:` is `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct RunStreamEvent {
    /// The event's place in the run's stream, from 1; send it back as `Last-Event-ID` to
    /// resume after it.
    pub seq: u64,
    pub run_id: String,
    /// `queued`, `running`, `compiled`, `test` (one per test case, in order) or `completed`
    /// (always last; the stream ends after it).
    pub event: RunEventKind,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schemars(with = "String"))]
    pub at: OffsetDateTime,
    /// For `test`: which test case (from 0, in the request's order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_index: Option<usize>,
    /// For `compiled`: the compile result; for `test`: that test's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<StageResult>,
    /// For `queued`, `running` and `completed`: the run as it stood (the final run on
    /// `completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
}

impl RunStreamEvent {
    /// The public form of the `seq`th event of a run's log.
    pub fn from_event(seq: u64, event: RunEvent) -> Self {
        Self {
            seq,
            run_id: event.run_id,
            event: event.kind,
            at: event.at,
            test_index: event.test_index,
            result: event.stage,
            run: event.run,
        }
    }
}
