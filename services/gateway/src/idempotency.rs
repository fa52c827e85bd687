//! `Idempotency-Key`: the same key and tenant always get the same run. The key is bound to a
//! new run id atomically in Redis; a request that finds it bound answers with that run, waiting
//! for the request that bound it to store it.

use std::time::Duration;

use actix_web::HttpRequest;
use coderun_schema::messages::RunRecord;

use crate::error::ApiError;
use crate::routes::read_run;
use crate::State;

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The request's `Idempotency-Key`, if it has one.
pub fn key_of(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".to_owned()))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 characters".to_owned(),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// How long a duplicate request waits for the run its idempotency key names to be stored: the
/// request that bound the key stores it next (or, failing, releases the key).
const BOUND_RUN_WAIT: Duration = Duration::from_secs(5);

/// The run `run_id` once it is stored, or `None` if `BOUND_RUN_WAIT` passes first.
pub async fn wait_for_record(state: &State, run_id: &str) -> Result<Option<RunRecord>, ApiError> {
    let deadline = tokio::time::Instant::now() + BOUND_RUN_WAIT;
    let mut pause = Duration::from_millis(2);
    loop {
        let stored = read_run(state, run_id).await?;
        if stored.is_some() || tokio::time::Instant::now() >= deadline {
            return Ok(stored);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
