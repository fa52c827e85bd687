//! What apistos cannot say from the handlers' types, added to the generated document as it
//! is served (`GET /openapi.json`), so the served and committed spec documents everything:
//!
//! - the two ways to authenticate (security schemes, on every `/v1` operation);
//! - request headers (`Idempotency-Key`, `Last-Event-ID`) and response headers (`Location`,
//!   `Retry-After`, `WWW-Authenticate`);
//! - links from a created run to reading, cancelling and streaming it (clients and
//!   schemathesis follow them);
//! - unique operation ids for the legacy `.json` paths, their JSON bodies and answers;
//! - examples of a request, a run and a problem;
//! - shapes every generator reads: an enum of documented values becomes one `enum` (its
//!   values' meanings in its description), and an object-typed property drops a `{}` default
//!   (absent means empty already).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use serde_json::{json, Map, Value};

/// The decorated spec, made on the first request for it.
static DECORATED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Middleware: rewrites the body of `GET /openapi.json`; every other response passes as it is.
pub async fn decorate_spec(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let is_spec = request.path() == "/openapi.json";
    let response = next.call(request).await?.map_into_boxed_body();
    if !is_spec || !response.status().is_success() {
        return Ok(response);
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    // The generated spec never changes while the process runs: decorated once, then served.
    let decorated = match DECORATED.get() {
        Some(decorated) => decorated.clone(),
        None => {
            let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
            let Ok(mut spec) = serde_json::from_slice::<Value>(&bytes) else {
                return Ok(ServiceResponse::new(
                    request,
                    head.set_body(BoxBody::new(bytes)),
                ));
            };
            decorate(&mut spec);
            let decorated = serde_json::to_vec(&spec).unwrap_or_else(|_| bytes.to_vec());
            DECORATED.get_or_init(|| decorated).clone()
        }
    };
    let mut response = head.set_body(BoxBody::new(decorated));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(ServiceResponse::new(request, response))
}

fn header_parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({"in": "header", "name": name, "required": false, "description": description, "schema": schema})
}

fn response_header(description: &str, schema: Value) -> Value {
    json!({"description": description, "schema": schema})
}

/// Adds everything listed in the module's documentation to a generated spec.
pub fn decorate(spec: &mut Value) {
    let components = ensure_object(spec, "components");
    components.insert(
        "securitySchemes".to_owned(),
        json!({
            "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <api key>`"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "`X-Api-Key: <api key>`"}
        }),
    );
    crate::openapi_examples::add(components);
    if let Some(schemas) = components.get_mut("schemas").and_then(Value::as_object_mut) {
        for schema in schemas.values_mut() {
            simplify(schema);
        }
    }
    let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (_, operation) in item.iter_mut() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            decorate_operation(path, operation);
        }
    }
}

fn decorate_operation(path: &str, operation: &mut Map<String, Value>) {
    let id = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if path.starts_with("/v1/") {
        operation.insert(
            "security".to_owned(),
            json!([{"bearer": []}, {"apiKey": []}]),
        );
    }
    if path.starts_with("/runners/") {
        decorate_legacy(path, &id, operation);
    }
    let parameters = operation
        .entry("parameters")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut parameters = parameters;
    match id.as_str() {
        "create_run" | "create_runs_batch" => parameters.push(header_parameter(
            "Idempotency-Key",
            "1 to 255 visible ASCII characters. The same key and tenant always get the same run (for a batch, item i is the run of `<key>#<i>`), for the record's lifetime; never a second run.",
            json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"}),
        )),
        "stream_run_events" => parameters.push(header_parameter(
            "Last-Event-ID",
            "The `id` of the last event received: the stream resumes after it.",
            json!({"type": "string", "pattern": "^[0-9]*$", "maxLength": 19}),
        )),
        _ => {}
    }
    if parameters.is_empty() {
        operation.remove("parameters");
    } else {
        operation.insert("parameters".to_owned(), Value::Array(parameters));
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        let headers = response
            .entry("headers")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        let Some(headers) = headers else { continue };
        match status.as_str() {
            "202" => {
                headers.insert(
                    "Location".to_owned(),
                    response_header("The run's URL, `/v1/runs/{id}`.", json!({"type": "string"})),
                );
            }
            "429" | "503" => {
                headers.insert(
                    "Retry-After".to_owned(),
                    response_header(
                        "Seconds to wait before trying again.",
                        json!({"type": "integer", "minimum": 1}),
                    ),
                );
            }
            "401" => {
                headers.insert(
                    "WWW-Authenticate".to_owned(),
                    response_header("`Bearer`.", json!({"type": "string"})),
                );
            }
            _ => {}
        }
        if headers.is_empty() {
            response.remove("headers");
        }
    }
    if id == "create_run" {
        if let Some(accepted) = responses.get_mut("202").and_then(Value::as_object_mut) {
            accepted.insert("links".to_owned(), run_links());
        }
        if let Some(done) = responses.get_mut("200").and_then(Value::as_object_mut) {
            done.insert("links".to_owned(), run_links());
        }
    }
}

/// From a created run to the operations on it, by its `id`.
fn run_links() -> Value {
    let by_id = json!({"id": "$response.body#/id"});
    json!({
        "GetRun": {"operationId": "get_run", "parameters": by_id, "description": "Read the run."},
        "CancelRun": {"operationId": "cancel_run", "parameters": by_id, "description": "Cancel the run."},
        "StreamRunEvents": {"operationId": "stream_run_events", "parameters": by_id, "description": "Follow the run's events."}
    })
}

/// The legacy paths: one operation id per path, JSON accepted beside forms, answers described.
fn decorate_legacy(path: &str, id: &str, operation: &mut Map<String, Value>) {
    if path.ends_with(".json") {
        operation.insert("operationId".to_owned(), json!(format!("{id}_json")));
    }
    if let Some(content) = operation
        .get_mut("requestBody")
        .and_then(|body| body.get_mut("content"))
        .and_then(Value::as_object_mut)
    {
        if let Some(form) = content.get("application/x-www-form-urlencoded").cloned() {
            content.insert("application/json".to_owned(), form);
        }
    }
    let description = match id {
        "legacy_create" => "The new run's id and status (`running`, or `completed` after a longpoll that saw it finish); `error` is empty",
        "legacy_get_status" => "The run's id and status (`running` or `completed`)",
        _ => "The run in the legacy protocol's fields and units",
    };
    if let Some(ok) = operation
        .get_mut("responses")
        .and_then(|responses| responses.get_mut("200"))
        .and_then(Value::as_object_mut)
    {
        ok.insert("description".to_owned(), json!(description));
    }
}

fn ensure_object<'a>(value: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let object = value.as_object_mut().expect("a spec is an object");
    object
        .entry(key)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("an object")
}

/// Rewrites, in one schema and every schema inside it, the two shapes some generators refuse.
fn simplify(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(flat) = flat_enum(object) {
        *object = flat;
        return;
    }
    let empty_object_default = object.get("default") == Some(&json!({}));
    if empty_object_default && object.contains_key("allOf") {
        object.remove("default");
    }
    for (_, child) in object.iter_mut() {
        match child {
            Value::Object(_) => simplify(child),
            Value::Array(items) => items.iter_mut().for_each(simplify),
            _ => {}
        }
    }
}

/// `oneOf` of single-string enums (how documented enum variants are generated) as one enum.
fn flat_enum(object: &Map<String, Value>) -> Option<Map<String, Value>> {
    let variants = object.get("oneOf")?.as_array()?;
    let mut values = Vec::new();
    let mut meanings = Vec::new();
    for variant in variants {
        let value = match variant.get("enum")?.as_array()?.as_slice() {
            [Value::String(value)] => value.clone(),
            _ => return None,
        };
        if let Some(meaning) = variant.get("description").and_then(Value::as_str) {
            meanings.push(format!("- `{value}`: {meaning}"));
        }
        values.push(Value::String(value));
    }
    let mut flat = object.clone();
    flat.remove("oneOf");
    flat.insert("type".to_owned(), json!("string"));
    flat.insert("enum".to_owned(), Value::Array(values));
    if !meanings.is_empty() {
        let summary = object
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let text = format!("{summary}\n\n{}", meanings.join("\n"))
            .trim()
            .to_owned();
        flat.insert("description".to_owned(), json!(text));
    }
    Some(flat)
}
