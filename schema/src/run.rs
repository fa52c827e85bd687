//! The public HTTP bodies: what a client sends ([`RunRequest`]) and what it gets back
//! ([`Run`]), plus the small bodies around them. Field names and meanings are fixed by the
//! HTTP contract (docs/api.md).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[cfg(feature = "openapi")]
use apistos::ApiComponent;
#[cfg(feature = "openapi")]
use schemars::JsonSchema;

/// How `content`, `stdin` and `expected_stdout` are encoded in a request, and how `stdout`
/// and `stderr` are encoded in the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Plain text. Output that is not valid UTF-8 is decoded lossily, never an error.
    #[default]
    Utf8,
    /// Standard base64: binary-safe in both directions.
    Base64,
}

/// One source file of the program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// A plain relative file name such as `main.py` or `lib/util.h`.
    pub name: String,
    /// The file's content, in the request's `encoding`.
    pub content: String,
}

/// One test case: the program runs once per test with that test's stdin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// Standard input for this test, in the request's `encoding`.
    #[serde(default)]
    pub stdin: String,
    /// When present, stdout is compared with it (trailing whitespace ignored per line and at
    /// the end) and a mismatch is `wrong_answer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_stdout: Option<String>,
}

/// Limits a client may ask for on one stage. A field left out takes the language's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(deny_unknown_fields)]
pub struct StageLimitsRequest {
    /// CPU time of the whole process tree, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Wall-clock time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// Memory of the whole process tree, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Processes and threads at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Cap on stdout and on stderr, each, in KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_kb: Option<u64>,
    /// Largest file the program may write, in KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size_kb: Option<u64>,
}

/// Requested limits for the compile stage and for each run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::optional_object"
    )]
    pub compile: Option<StageLimitsRequest>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::optional_object"
    )]
    pub run: Option<StageLimitsRequest>,
}

/// The body of `POST /v1/runs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// A catalog language id or alias, such as `python` or `python3`.
    #[cfg_attr(feature = "openapi", schemars(length(min = 1)))]
    pub language: String,
    /// The program's files. Either `files` or `source` must be given. `files` must include the
    /// language's main file (`source_file` in `GET /v1/languages`). C, C++, C# and Java compile
    /// every file with the main file's extension; Go builds the package beside `main.go`; other
    /// languages follow the main file's imports. Names are plain relative paths: components
    /// separated by single `/`, none empty, `.` or `..`, each at most 255 bytes and the whole
    /// at most 1024; no control or bidirectional-formatting characters or backslashes; not
    /// starting with `-` or `@`; no name twice and none that is also another file's directory.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::strict::objects"
    )]
    pub files: Vec<SourceFile>,
    /// Shorthand for one file with the catalog's default name for the language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Standard input, used when there are no `tests`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdin: String,
    /// Command-line arguments, passed as argv (never through a shell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Compile once, run once per test. With the limits they are held to per-request budgets:
    /// tests × (stdout + stderr caps) and compile wall + tests × run wall (422 above them).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::strict::objects"
    )]
    pub tests: Vec<TestCase>,
    #[serde(default, deserialize_with = "crate::strict::object")]
    pub limits: LimitsRequest,
    #[serde(default)]
    pub encoding: Encoding,
    /// Where the finished run is POSTed, signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Completed,
    Cancelled,
}

impl RunStatus {
    /// A terminal run never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Cancelled)
    }
}

/// The outcome of a stage, a test, or the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    CompileError,
    RuntimeError,
    TimeLimit,
    MemoryLimit,
    OutputLimit,
    WrongAnswer,
    Cancelled,
    InternalError,
}

/// The result of compiling, or of one execution of the program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct StageResult {
    /// Exit status when the process exited; `null` when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal's name, such as `SIGSEGV`, when a signal ended it.
    pub signal: Option<String>,
    /// In the request's `encoding`.
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub cpu_ms: u64,
    pub wall_ms: u64,
    /// Peak memory of the whole process tree, in KiB.
    pub memory_kb: u64,
    pub verdict: Option<Verdict>,
}

/// A run as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct Run {
    /// `run_` followed by a ULID.
    pub id: String,
    pub status: RunStatus,
    /// The catalog id (never the alias the client used).
    pub language: String,
    /// The language's version, as read from the image that ran it.
    #[serde(default)]
    pub version: Option<String>,
    /// Set once the run is terminal.
    #[serde(default)]
    pub verdict: Option<Verdict>,
    #[serde(default)]
    pub compile: Option<StageResult>,
    /// The (first) execution of the program.
    #[serde(default)]
    pub run: Option<StageResult>,
    /// Every test's result in order, when the request had `tests`.
    #[serde(default)]
    pub tests: Vec<StageResult>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schemars(with = "String"))]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schemars(with = "Option<String>"))]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schemars(with = "Option<String>"))]
    pub finished_at: Option<OffsetDateTime>,
    /// Milliseconds between creation and the start of execution.
    #[serde(default)]
    pub queue_ms: Option<u64>,
    /// Why the run ended without a stage's own verdict (`internal_error`, or a sandbox stopped
    /// as a whole for memory or output), in words that reveal nothing internal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The webhook's delivery, once one was tried (runs with a `callback_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookStatus>,
}

/// How delivering a run's webhook went so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct WebhookStatus {
    /// POSTs tried so far.
    pub attempts: u32,
    /// The HTTP status of the last answer; `null` when the last attempt got none (refused
    /// target, connection error, timeout).
    #[serde(default)]
    pub last_status: Option<u16>,
    /// A 2xx answer was received; no more attempts follow.
    #[serde(default)]
    pub delivered: bool,
    /// Why the last attempt failed, when it did without an answer, or why delivery stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Run {
    /// The run stage's stdout (the first test's), empty when the program did not run.
    pub fn stdout(&self) -> &str {
        self.run.as_ref().map_or("", |stage| stage.stdout.as_str())
    }

    /// A new run, just accepted.
    pub fn queued(id: String, language: String, created_at: OffsetDateTime) -> Self {
        Self {
            id,
            status: RunStatus::Queued,
            language,
            version: None,
            verdict: None,
            compile: None,
            run: None,
            tests: Vec::new(),
            created_at,
            started_at: None,
            finished_at: None,
            queue_ms: None,
            error: None,
            webhook: None,
        }
    }
}

/// A catalog language that some live executor serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct LanguageInfo {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    /// Read from the image by the executor that serves it.
    pub version: String,
    /// The file name `source` is stored under.
    pub source_file: String,
    pub compiled: bool,
}

/// The body of `GET /v1/languages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct LanguageList {
    pub languages: Vec<LanguageInfo>,
}

/// The body of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct Health {
    /// `ok`, or `unavailable`.
    pub status: String,
    /// Each dependency checked, with `ok` or what is wrong.
    #[serde(default)]
    pub checks: std::collections::BTreeMap<String, String>,
}

/// Query of `POST /v1/runs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct CreateRunQuery {
    /// Wait for the run to finish: 200 with the finished run, or 202 with its current state
    /// if it did not finish in time.
    #[serde(default)]
    pub wait: bool,
    /// How long `wait=true` waits, in milliseconds (default 30 000; at most the gateway's
    /// `runs.max_wait_ms`, 120 000 unless configured).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(range(max = 120_000)))]
    pub timeout_ms: Option<u64>,
}

/// Query of `GET /v1/runs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct ListRunsQuery {
    /// Where the previous page ended: its `next_cursor` (a run id). Absent for the newest runs.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schemars(regex(pattern = r"^run_[0-9A-HJKMNP-TV-Z]{26}$"))
    )]
    pub cursor: Option<String>,
    /// Runs per page, 1 to 100 (default 20).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(range(min = 1, max = 100)))]
    pub limit: Option<u32>,
}

/// The body of `GET /v1/runs`: the tenant's runs, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct RunList {
    pub runs: Vec<Run>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query of `GET /v1/runs/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct GetRunQuery {
    /// Long-poll: answer when the run is terminal or after this many milliseconds (at most the
    /// gateway's `runs.max_wait_ms`, 120 000 unless configured).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(range(max = 120_000)))]
    pub wait_ms: Option<u64>,
}
