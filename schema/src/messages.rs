//! NATS messages between the services, and the run record kept in Redis.
//!
//! Each message carries `v`, its schema version. Readers ignore unknown fields, and a field is
//! only ever added (with a default), never renamed or repurposed: that is what lets each
//! service be released on its own. `schema/tests/fixtures/` holds a golden JSON file of every
//! version of every message, and a test proves they all still deserialise.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::bytes64::Bytes64;
use crate::catalog::Limits;
use crate::run::{Encoding, Run, StageResult};

#[cfg(feature = "openapi")]
use apistos::ApiComponent;
#[cfg(feature = "openapi")]
use schemars::JsonSchema;

/// The current version of every message defined here.
pub const VERSION: u32 = 1;

fn current_version() -> u32 {
    VERSION
}

/// One file of a job, decoded to bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    /// Validated by the gateway: relative, no `..`, no control characters.
    pub name: String,
    pub content: Bytes64,
}

/// One test of a job, decoded to bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTest {
    pub stdin: Bytes64,
    #[serde(default)]
    pub expected_stdout: Option<Bytes64>,
}

/// A validated, resolved request: everything an executor needs to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The catalog id.
    pub language: String,
    pub files: Vec<JobFile>,
    pub args: Vec<String>,
    /// At least one: a request without tests becomes one test with the request's stdin.
    pub tests: Vec<JobTest>,
    /// Whether the request had `tests` (the answer then lists them).
    #[serde(default)]
    pub explicit_tests: bool,
    pub limits: Limits,
    /// How the answer's outputs are encoded.
    pub encoding: Encoding,
    #[serde(default)]
    pub callback_url: Option<String>,
    /// The isolation the tenant requires (`strict`: a single-use container for each of its
    /// runs); absent, the executor's setting for the language decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
}

impl Job {
    /// The wall time its limits allow, compile and every test together, in milliseconds.
    pub fn wall_ms_budget(&self) -> u64 {
        let runs = self.tests.len().max(1) as u64;
        self.limits.compile.wall_ms + self.limits.run.wall_ms * runs
    }
}

/// How a run is isolated from the runs before and after it on the same executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// A container of its own, created for it (or pre-warmed) and removed after it: never
    /// used twice.
    Strict,
    /// A fresh inner sandbox (new user, PID, mount, IPC, UTS and network namespaces, fresh
    /// workspace and scratch directories) inside a container reused for the same tenant's
    /// runs of the same language and settings only, and recycled after a number of runs, an
    /// age, or at once after any run the agent cannot vouch for.
    Fast,
}

/// gateway → scheduler on `<prefix>.runs.submit` (JetStream): a run was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSubmitted {
    #[serde(default = "current_version")]
    pub v: u32,
    pub run_id: String,
    pub tenant: String,
    pub job: Job,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
}

/// scheduler → executor on `<prefix>.jobs.<pool>` (JetStream work queue): run this now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDispatched {
    #[serde(default = "current_version")]
    pub v: u32,
    pub run_id: String,
    pub tenant: String,
    /// The pool the job was routed to.
    pub pool: String,
    pub job: Job,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub dispatched_at: OffsetDateTime,
}

/// What happened to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(rename_all = "snake_case")]
pub enum RunEventKind {
    /// The run was accepted and waits for an executor.
    Queued,
    /// An executor started it.
    Running,
    /// Compilation ended (languages that compile); carries the compile result.
    Compiled,
    /// One test case (or the one execution of a run without tests) ended; carries its result.
    Test,
    /// The run is final (completed or cancelled); carries the whole run. Always the last.
    Completed,
}

/// A run's progress, on `<prefix>.runs.events.<id>` (core NATS) and in the run's event log in
/// Redis (`<prefix>:run:<id>:events`, a list, same lifetime as the record). Whoever writes the
/// record's state changes writes the event in the same Redis script: the gateway (`queued`,
/// and `completed` of a cancel), the executor (`running`, `compiled`, `test`, `completed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEvent {
    #[serde(default = "current_version")]
    pub v: u32,
    pub run_id: String,
    pub kind: RunEventKind,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// For `test` events: which test finished.
    #[serde(default)]
    pub test_index: Option<usize>,
    /// The run as it stands: set on `queued`, `running` and `completed`.
    #[serde(default)]
    pub run: Option<Run>,
    /// Position in the run's event log, from 1 (set on NATS; the log's own order is it).
    #[serde(default)]
    pub seq: Option<u64>,
    /// For `compiled` and `test` events: the stage's result.
    #[serde(default)]
    pub stage: Option<StageResult>,
}

impl RunEvent {
    /// An event of the current version, now.
    pub fn new(run_id: &str, kind: RunEventKind) -> Self {
        Self {
            v: VERSION,
            run_id: run_id.to_owned(),
            kind,
            at: OffsetDateTime::now_utc(),
            test_index: None,
            run: None,
            seq: None,
            stage: None,
        }
    }

    /// An event carrying the run as it stands.
    pub fn with_run(run: &Run, kind: RunEventKind) -> Self {
        Self {
            run: Some(run.clone()),
            ..Self::new(&run.id, kind)
        }
    }
}

/// gateway → executors on `<prefix>.runs.cancel.<id>` (core NATS): the run was cancelled (its
/// record is already final, `cancelled`); the executor running it kills its sandbox. Nobody
/// listening is fine: a queued run's executor finds the record final and never starts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequested {
    #[serde(default = "current_version")]
    pub v: u32,
    pub run_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// executor or gateway → scheduler on `<prefix>.webhooks.due` (JetStream work queue, one per
/// run: the message id is the run id): a run with a `callback_url` became final. The
/// scheduler reads the run from Redis and POSTs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDue {
    #[serde(default = "current_version")]
    pub v: u32,
    pub run_id: String,
    pub tenant: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// One language an executor serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedLanguage {
    pub id: String,
    /// As read from the image.
    pub version: String,
    /// The image id (content digest) the executor runs.
    pub image_digest: String,
    /// Pre-warmed containers of the language ready at the heartbeat (0 from executors before
    /// this field, and wherever it does not apply).
    #[serde(default)]
    pub warm_ready: u32,
}

/// executor → gateways and scheduler on `<prefix>.executors.heartbeat` (core NATS), every couple
/// of seconds (`worker.heartbeat_interval_ms`): this executor is alive, serves these languages
/// and has this much room. The scheduler releases a pool's jobs only within its live
/// executors' slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorHeartbeat {
    #[serde(default = "current_version")]
    pub v: u32,
    pub executor_id: String,
    /// The executor's own release version.
    pub version: String,
    pub arch: String,
    pub languages: Vec<ServedLanguage>,
    pub slots_total: u32,
    pub slots_free: u32,
    pub draining: bool,
    /// How long a receiver may trust this heartbeat without hearing another, in milliseconds
    /// (three heartbeat intervals); 0 leaves it to the receiver.
    pub ttl_ms: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

/// The Redis value at `<prefix>:run:<id>`: the run as the API shows it, whose it is, and the
/// submission, so that a run lost from the streams can be submitted again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(default = "current_version")]
    pub v: u32,
    pub tenant: String,
    pub run: Run,
    #[serde(default)]
    pub submission: Option<JobSubmitted>,
    /// The W3C `traceparent` of the gateway's span that accepted the run, so that later work
    /// on the run (a cancel, an idempotent retry) is logged and sent under the same trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The jobs-stream sequence of the job that marked the run `running`: only that job (a
    /// retry of its own write, or a delivery of it again after its executor died) may mark it
    /// running again; any other job of the run is a duplicate and is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_sequence: Option<u64>,
}

impl RunRecord {
    /// Whether the job at `job_sequence` may end this run: it is queued, or running for that
    /// job (or for a job that was not named, from before claims).
    pub fn held_by(&self, job_sequence: u64) -> bool {
        self.run.status == crate::run::RunStatus::Queued
            || self.job_sequence.is_none_or(|held| held == job_sequence)
    }

    /// The run's trace context, when the record has a valid one.
    pub fn trace(&self) -> Option<crate::trace::TraceContext> {
        self.traceparent
            .as_deref()
            .and_then(crate::trace::TraceContext::parse)
    }

    /// Where the run's webhook goes, if it has one.
    pub fn callback_url(&self) -> Option<&str> {
        self.submission
            .as_ref()
            .and_then(|submission| submission.job.callback_url.as_deref())
    }

    /// The webhook message for this run, when it has a `callback_url`.
    pub fn webhook_due(&self) -> Option<WebhookDue> {
        self.callback_url()?;
        Some(WebhookDue {
            v: VERSION,
            run_id: self.run.id.clone(),
            tenant: self.tenant.clone(),
            at: OffsetDateTime::now_utc(),
        })
    }
}
