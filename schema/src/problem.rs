//! RFC 9457 problem details: the body of every HTTP error (`application/problem+json`).

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use apistos::ApiComponent;
#[cfg(feature = "openapi")]
use schemars::JsonSchema;

/// The media type of [`Problem`] bodies.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct FieldError {
    /// A JSON path into the request, such as `files[0].name` or `limits.run.memory_mb`.
    pub field: String,
    pub message: String,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(JsonSchema, ApiComponent))]
pub struct Problem {
    /// A URI naming the kind of problem, stable across releases.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}
