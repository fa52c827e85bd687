//! The legacy runner API's bodies (`/runners/*`), kept for existing integrations: field names
//! and value formats are those the older runner protocol used, mapped onto the same runs.
//!
//! Times are seconds as strings with two decimals (`"0.02"`), memory is bytes, and a stage's
//! result is `success`, `failure` (it ran and failed), `error` (it could not be judged: a
//! crash of the sandbox, a memory or output limit) or `timeout`.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use apistos::ApiComponent;
#[cfg(feature = "openapi")]
use schemars::JsonSchema;

/// `POST /runners/create`, as a form or as JSON. Every value may be sent as a string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct LegacyCreate {
    pub source_code: String,
    /// A catalog id or alias (`python3`, `c`, `cpp`, `java`, …).
    pub language: String,
    /// The program's standard input.
    #[serde(default)]
    pub input: Option<String>,
    /// `true`: answer once the run has finished (or `longpoll_timeout` passed).
    #[serde(default)]
    pub longpoll: Option<String>,
    /// Seconds to wait with `longpoll` (default 10, at most the gateway's wait maximum).
    #[serde(default)]
    pub longpoll_timeout: Option<String>,
    pub api_key: String,
}

/// The query of `GET /runners/get_status` and `GET /runners/get_details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct LegacyQuery {
    pub id: String,
    pub api_key: String,
}

/// The answer of `create` and `get_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct LegacyStatus {
    pub id: String,
    /// `running` until the run is final, then `completed`.
    pub status: String,
    /// Why the run could not be run, if so.
    pub error: Option<String>,
}

/// The answer of `get_details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct LegacyDetails {
    pub id: String,
    pub language: String,
    pub note: Option<String>,
    pub status: String,
    pub build_stdout: Option<String>,
    pub build_stderr: Option<String>,
    pub build_exit_code: Option<i32>,
    /// Seconds, two decimals.
    pub build_time: Option<String>,
    /// Bytes.
    pub build_memory: Option<u64>,
    pub build_result: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub exit_code: Option<i32>,
    /// Seconds, two decimals.
    pub time: Option<String>,
    /// Bytes.
    pub memory: Option<u64>,
    /// Network connections the program made: always 0 (sandboxes have no network).
    pub connections: Option<u32>,
    pub result: Option<String>,
    pub error: Option<String>,
}
