//! What the store's tests share: a store under a prefix of the test's own in the test Redis,
//! and a freshly queued record. Each test binary uses some of it.
#![allow(dead_code)]

use std::time::Duration;

use coderun_schema::messages::{RunRecord, VERSION};
use coderun_schema::names::Names;
use coderun_schema::run::Run;
use coderun_store::RunStore;

pub fn redis_url() -> String {
    std::env::var("CODERUN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub async fn store(test: &str) -> RunStore {
    let prefix = format!("test_store_{test}_{}", std::process::id());
    let names = Names::new(prefix).expect("a valid prefix");
    RunStore::connect(&redis_url(), names, Duration::from_secs(600))
        .await
        .expect("Redis is up (scripts/test.sh starts it)")
}

/// A python run of tenant `acme`, queued now.
pub fn record(id: &str) -> RunRecord {
    RunRecord {
        v: VERSION,
        tenant: "acme".to_owned(),
        run: Run::queued(
            id.to_owned(),
            "python".to_owned(),
            time::OffsetDateTime::now_utc(),
        ),
        submission: None,
        traceparent: None,
        job_sequence: None,
    }
}
