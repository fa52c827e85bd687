//! A request body read as a form (`application/x-www-form-urlencoded`, what the older runner
//! clients send) or as JSON, whichever its `Content-Type` says. Every value becomes a string
//! before it is read into `T`, as a form would give it (JSON `true` and `10` included).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use apistos::reference_or::ReferenceOr;
use apistos::ApiComponent;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `T` from a form or a JSON object.
pub struct FormOrJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for FormOrJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = request
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        let body = Bytes::from_request(request, payload);
        Box::pin(async move {
            let bytes = body.await?;
            let fields = if is_json {
                json_fields(&bytes)?
            } else {
                form_fields(&bytes)
            };
            let value = serde_json::from_value(serde_json::Value::Object(fields))
                .map_err(|error| ApiError::BadRequest(format!("invalid request: {error}")))?;
            Ok(FormOrJson(value))
        })
    }
}

fn form_fields(bytes: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    url::form_urlencoded::parse(bytes)
        .map(|(name, value)| {
            (
                name.into_owned(),
                serde_json::Value::String(value.into_owned()),
            )
        })
        .collect()
}

fn json_fields(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|error| ApiError::BadRequest(format!("the body is not a JSON object: {error}")))?;
    Ok(object
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            (name, serde_json::Value::String(text))
        })
        .collect())
}

impl<T: ApiComponent> ApiComponent for FormOrJson<T> {
    fn content_type() -> String {
        "application/x-www-form-urlencoded".to_owned()
    }

    fn child_schemas() -> Vec<(String, ReferenceOr<apistos::Schema>)> {
        T::child_schemas()
    }

    fn schema() -> Option<(String, ReferenceOr<apistos::Schema>)> {
        T::schema()
    }
}
