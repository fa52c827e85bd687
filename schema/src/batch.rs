//! The bodies of `POST /v1/runs/batch`: many runs in one request, each accepted or refused on
//! its own.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use apistos::ApiComponent;
#[cfg(feature = "openapi")]
use schemars::JsonSchema;

use crate::problem::Problem;
#[cfg(feature = "openapi")]
use crate::run::RunRequest;

/// The most runs one batch may hold.
pub const MAX_BATCH_RUNS: usize = 100;

/// `POST /v1/runs/batch`: up to 100 runs. Each item is a `RunRequest`; an item that is not one
/// is refused alone (its answer is a problem), never the whole batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "Vec<RunRequest>", length(min = 1, max = 100))
    )]
    pub runs: Vec<serde_json::Value>,
}

/// The answer to a batch: one item per requested run, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct BatchResponse {
    pub runs: Vec<BatchItem>,
}

/// One run of a batch: its id when it was accepted (read it with `GET /v1/runs/{id}`), or the
/// problem that refused it (the same problem a single `POST /v1/runs` would have answered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct BatchItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}
