//! Every HTTP error the gateway answers, mapped to a status and a problem+json body in one
//! place. 5xx bodies reveal nothing internal; the full cause chain goes to the log.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use apistos::paths::{MediaType, Response};
use apistos::reference_or::ReferenceOr;
use apistos::{ApiComponent, ApiErrorComponent};
use coderun_schema::problem::{FieldError, Problem, PROBLEM_CONTENT_TYPE};

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "2";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("missing or unknown API key")]
    Unauthorized,
    #[error("no such run")]
    NotFound,
    #[error("no such route")]
    NoRoute,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("over the quota {quota}")]
    OverQuota {
        /// The quota's name, as in the tenant's configuration.
        quota: &'static str,
        detail: String,
        retry_after_secs: u64,
    },
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("invalid request: {detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("no executor serves {0} right now")]
    NoCapacity(String),
    #[error("a dependency is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("unexpected error")]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    /// A 422 about one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::Invalid {
            detail: message.clone(),
            errors: vec![FieldError {
                field: field.into(),
                message,
            }],
        }
    }

    fn kind_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("malformed-request", "Malformed request"),
            ApiError::Unauthorized => ("unauthorized", "Missing or unknown API key"),
            ApiError::NotFound => ("run-not-found", "No such run"),
            ApiError::NoRoute => ("not-found", "Not found"),
            ApiError::Conflict(_) => ("conflict", "Conflict with the run's state"),
            ApiError::OverQuota { .. } => ("over-quota", "Too many requests"),
            ApiError::TooLarge(_) => ("too-large", "Request too large"),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported-media-type", "Unsupported media type")
            }
            ApiError::Invalid { .. } => ("invalid-request", "Invalid request"),
            ApiError::NoCapacity(_) => ("no-capacity", "No capacity for this language"),
            ApiError::Unavailable(_) => ("unavailable", "Service temporarily unavailable"),
            ApiError::Unexpected(_) => ("internal", "Internal error"),
        }
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        let (kind, title) = self.kind_and_title();
        let (detail, errors) = match self {
            ApiError::BadRequest(detail)
            | ApiError::Conflict(detail)
            | ApiError::TooLarge(detail)
            | ApiError::UnsupportedMediaType(detail) => (Some(detail.clone()), Vec::new()),
            ApiError::Invalid { detail, errors } => (Some(detail.clone()), errors.clone()),
            ApiError::OverQuota { quota, detail, .. } => (
                Some(detail.clone()),
                vec![FieldError {
                    field: (*quota).to_owned(),
                    message: "over this quota".to_owned(),
                }],
            ),
            ApiError::NoCapacity(language) => (
                Some(format!(
                    "no live executor serves `{language}` right now; retry later"
                )),
                Vec::new(),
            ),
            ApiError::Unauthorized => (
                Some("send `Authorization: Bearer <key>` or `X-Api-Key: <key>`".to_owned()),
                Vec::new(),
            ),
            _ => (None, Vec::new()),
        };
        Problem {
            kind: format!("urn:coderun:problem:{kind}"),
            title: title.to_owned(),
            status: self.status_code().as_u16(),
            detail,
            errors,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::OverQuota { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NoCapacity(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %format!("{cause:#}"), "dependency unavailable")
            }
            ApiError::Unexpected(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "unexpected error")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
        match self {
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::NoCapacity(_) | ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
            }
            ApiError::OverQuota {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        let body = serde_json::to_string(&self.problem())
            .unwrap_or_else(|_| r#"{"title":"Internal error","status":500}"#.to_owned());
        response.body(body)
    }
}

/// The statuses every documented operation may answer with a problem.
const DOCUMENTED: &[(u16, &str)] = &[
    (400, "Malformed request"),
    (401, "Missing or unknown API key"),
    (404, "No such run"),
    (409, "Conflict: the run has already finished"),
    (413, "Request too large"),
    (415, "Body is not JSON"),
    (422, "Invalid request"),
    (
        429,
        "Over a tenant quota: requests per second, concurrent or queued runs (see Retry-After)",
    ),
    (
        503,
        "No capacity for the language, or a dependency is down (see Retry-After)",
    ),
];

impl ApiErrorComponent for ApiError {
    fn schemas_by_status_code() -> BTreeMap<String, (String, ReferenceOr<apistos::Schema>)> {
        let Some((name, schema)) = <Problem as ApiComponent>::schema() else {
            return BTreeMap::new();
        };
        DOCUMENTED
            .iter()
            .map(|(status, _)| (status.to_string(), (name.clone(), schema.clone())))
            .collect()
    }

    fn error_responses() -> Vec<(String, Response)> {
        DOCUMENTED
            .iter()
            .map(|(status, description)| {
                let content = BTreeMap::from([(
                    PROBLEM_CONTENT_TYPE.to_owned(),
                    MediaType {
                        schema: Some(ReferenceOr::Reference {
                            _ref: "#/components/schemas/Problem".to_owned(),
                        }),
                        ..Default::default()
                    },
                )]);
                (
                    status.to_string(),
                    Response {
                        description: (*description).to_owned(),
                        content,
                        ..Default::default()
                    },
                )
            })
            .collect()
    }
}
