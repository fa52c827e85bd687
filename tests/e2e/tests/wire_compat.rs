//! Wire compatibility between releases: each service ships on its own, so a service of this
//! build must work with messages a service of the first release wrote, and the first release's
//! readers must be able to read what this build writes. The first release's messages are the
//! golden fixtures of schema version 1 (`schema/tests/fixtures/*.v1.json`), kept unchanged.
//!
//! - Old writer, new readers: a run record and a `JobSubmitted` exactly as version 1 wrote
//!   them (only the ids changed) go to Redis and the submit stream; this build's scheduler,
//!   executor and gateway must run it to the end.
//! - New writer, old readers: what this build's services publish and store (a run's events,
//!   an executor's heartbeat, the run record) must still have every field of the version 1
//!   fixture, with the same JSON type, so a reader of version 1 finds what it needs; extra
//!   fields are what version 1 readers ignore.

use std::time::Duration;

use coderun_e2e::{nats_url, redis_url, StackOptions, TestStack};
use coderun_schema::run::{RunStatus, Verdict};
use futures::StreamExt;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schema/tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("a golden fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn new_run_id() -> String {
    format!("run_{}", ulid::Ulid::new())
}

fn python_stack() -> StackOptions {
    StackOptions {
        languages: vec!["python".to_owned()],
        ..StackOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_build_runs_a_job_the_first_release_submitted() {
    let stack = TestStack::start_with(python_stack()).await;
    let id = new_run_id();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");

    // The submission as version 1 wrote it: the fixture's program, stdin, test and limits.
    let mut submitted = fixture("job_submitted.v1.json");
    submitted["run_id"] = id.clone().into();
    submitted["tenant"] = "tenant-a".into();
    submitted["submitted_at"] = now.clone().into();
    // Its record as the version 1 gateway stored it before answering: queued.
    let mut record = fixture("run_record.v1.json");
    record["tenant"] = "tenant-a".into();
    record["submission"] = submitted.clone();
    let run = &mut record["run"];
    run["id"] = id.clone().into();
    run["status"] = "queued".into();
    run["created_at"] = now.into();
    for field in [
        "version",
        "verdict",
        "compile",
        "run",
        "started_at",
        "finished_at",
        "queue_ms",
    ] {
        run[field] = Value::Null;
    }
    run["tests"] = Value::Array(Vec::new());

    let redis = redis::Client::open(redis_url()).expect("a Redis URL");
    let mut connection = redis
        .get_multiplexed_async_connection()
        .await
        .expect("Redis is up");
    let _: () = redis::cmd("SET")
        .arg(stack.names.run_key(&id))
        .arg(record.to_string())
        .arg("EX")
        .arg(600)
        .query_async(&mut connection)
        .await
        .expect("the record is stored");
    let nats = async_nats::connect(nats_url()).await.expect("NATS is up");
    let jetstream = async_nats::jetstream::new(nats);
    jetstream
        .publish(stack.names.runs_submit(), submitted.to_string().into())
        .await
        .expect("published")
        .await
        .expect("the submit stream stored it");

    let client = stack.client();
    let mut finished = None;
    for _ in 0..30 {
        let reply = client
            .get_run(&id, Some(2_000))
            .await
            .expect("the run is readable");
        if reply.body.status == RunStatus::Completed {
            finished = Some(reply.body);
            break;
        }
    }
    let run = finished.expect("the first release's job ran to the end");
    assert_eq!(run.verdict, Some(Verdict::Ok), "{run:?}");
    assert_eq!(run.tests.len(), 1, "the fixture's one test");
    assert_eq!(run.tests[0].stdout, "olleh\n", "{run:?}");
    stack.stop().await;
}

/// Every field of `old` is in `new` with the same JSON type (a null in `old` stands for any
/// value); objects and the first element of arrays are compared the same way, depth first.
fn missing_for_an_old_reader(old: &Value, new: &Value, path: &str, found: &mut Vec<String>) {
    match (old, new) {
        (Value::Null, _) => {}
        (Value::Object(old), Value::Object(new)) => {
            for (key, old_value) in old {
                match new.get(key) {
                    Some(new_value) => missing_for_an_old_reader(
                        old_value,
                        new_value,
                        &format!("{path}.{key}"),
                        found,
                    ),
                    None => found.push(format!("{path}.{key} is gone")),
                }
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            if let (Some(old), Some(new)) = (old.first(), new.first()) {
                missing_for_an_old_reader(old, new, &format!("{path}[0]"), found);
            }
        }
        (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_)) => {}
        (old, Value::Null) if path.ends_with("signal") || path.ends_with("test_index") => {
            let _ = old; // optional in version 1 too: its reader has an Option there
        }
        (old, new) => found.push(format!(
            "{path}: version 1 has {old}, this build writes {new}"
        )),
    }
}

fn assert_readable_by_version_1(fixture_name: &str, written: &Value) {
    let mut found = Vec::new();
    missing_for_an_old_reader(&fixture(fixture_name), written, "", &mut found);
    assert!(
        found.is_empty(),
        "a version 1 reader of {fixture_name} would fail on what this build wrote:\n{}\n{written:#}",
        found.join("\n")
    );
    assert_eq!(
        written["v"], 1,
        "{fixture_name}: the schema version is still 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_releases_readers_can_read_what_this_build_writes() {
    let stack = TestStack::start_with(python_stack()).await;
    let nats = async_nats::connect(nats_url()).await.expect("NATS is up");
    let mut heartbeats = nats
        .subscribe(stack.names.executor_heartbeat())
        .await
        .expect("subscribed");
    let mut events = nats
        .subscribe(stack.names.run_events("*"))
        .await
        .expect("subscribed");

    let mut request = coderun_schema::run::RunRequest {
        language: "python".to_owned(),
        source: Some("print(input()[::-1])".to_owned()),
        ..Default::default()
    };
    request.tests = vec![coderun_schema::run::TestCase {
        stdin: "hello\n".to_owned(),
        expected_stdout: Some("olleh\n".to_owned()),
    }];
    let run = stack
        .client()
        .run_and_wait(&request)
        .await
        .expect("the run ends");
    assert_eq!(run.verdict, Some(Verdict::Ok));

    let heartbeat = tokio::time::timeout(Duration::from_secs(5), heartbeats.next())
        .await
        .expect("a heartbeat within 5 s")
        .expect("the subscription is open");
    let heartbeat: Value = serde_json::from_slice(&heartbeat.payload).expect("JSON");
    assert_readable_by_version_1("executor_heartbeat.v1.json", &heartbeat);

    let mut completed = None;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), events.next()).await
    {
        let event: Value = serde_json::from_slice(&message.payload).expect("JSON");
        if event["run_id"] == run.id.as_str() && event["kind"] == "completed" {
            completed = Some(event);
            break;
        }
    }
    let completed = completed.expect("the completed event was published");
    assert_readable_by_version_1("run_event.v1.json", &completed);

    let redis = redis::Client::open(redis_url()).expect("a Redis URL");
    let mut connection = redis
        .get_multiplexed_async_connection()
        .await
        .expect("Redis is up");
    let stored: String = redis::cmd("GET")
        .arg(stack.names.run_key(&run.id))
        .query_async(&mut connection)
        .await
        .expect("the record");
    let stored: Value = serde_json::from_str(&stored).expect("JSON");
    assert_readable_by_version_1("run_record.v1.json", &stored);
    stack.stop().await;
}
