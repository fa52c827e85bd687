//! The schema's small rules, each as a client or a service relies on it: binary-safe bytes,
//! limit field names, the file-name bounds, defaults of messages older than a field, the names
//! of subjects, streams and keys, and which run states are final.

use coderun_schema::agent::{AgentJob, FALLBACK_PROGRAM_UID};
use coderun_schema::bytes64::{self, Bytes64};
use coderun_schema::catalog::StageLimits;
use coderun_schema::file_names::file_name_problem;
use coderun_schema::messages::{JobSubmitted, VERSION};
use coderun_schema::names::Names;
use coderun_schema::run::{Run, RunStatus, StageResult};

#[test]
fn bytes_travel_as_base64_and_keep_every_byte() {
    let binary = Bytes64::from(vec![0, 159, 255, b'\n']);
    assert_eq!((binary.len(), binary.is_empty()), (4, false));
    assert_eq!(
        (Bytes64::default().len(), Bytes64::default().is_empty()),
        (0, true)
    );
    let json = serde_json::to_string(&binary).expect("serialises");
    assert_eq!(json, "\"AJ//Cg==\"");
    assert_eq!(
        serde_json::from_str::<Bytes64>(&json).expect("reads"),
        binary
    );
    assert!(serde_json::from_str::<Bytes64>("\"not base64!\"").is_err());
    assert_eq!(Bytes64::from("héllo").as_slice(), "héllo".as_bytes());
    assert_eq!(format!("{:?}", Bytes64::from("hi\n")), "Bytes64(\"hi\\n\")");
    assert_eq!(bytes64::encode(b"print(1)"), "cHJpbnQoMSk=");
    assert_eq!(bytes64::decode("cHJpbnQoMSk=").expect("valid"), b"print(1)");
    assert!(
        bytes64::decode("cHJpbnQoMSk").is_err(),
        "padding is required"
    );
}

#[test]
fn limit_fields_are_named_as_in_the_api() {
    let limits = StageLimits {
        cpu_ms: 1,
        wall_ms: 2,
        memory_mb: 3,
        pids: 4,
        output_kb: 5,
        file_size_kb: 6,
    };
    assert_eq!(
        limits.fields(),
        [
            ("cpu_ms", 1),
            ("wall_ms", 2),
            ("memory_mb", 3),
            ("pids", 4),
            ("output_kb", 5),
            ("file_size_kb", 6),
        ]
    );
}

#[test]
fn file_names_may_reach_their_bounds_but_not_pass_them() {
    let component = |byte: &str, length: usize| byte.repeat(length);
    assert_eq!(file_name_problem(&component("c", 255)), None);
    assert_eq!(
        file_name_problem(&component("c", 256)),
        Some("must have components of at most 255 bytes")
    );
    let path = |last: usize| {
        [
            component("a", 255),
            component("b", 255),
            component("c", 255),
            component("d", 254 + last - 1),
            component("e", 1),
        ]
        .join("/")
    };
    assert_eq!(path(1).len(), 1024);
    assert_eq!(file_name_problem(&path(1)), None);
    assert_eq!(path(2).len(), 1025);
    assert_eq!(
        file_name_problem(&path(2)),
        Some("must be at most 1024 bytes")
    );
}

#[test]
fn a_message_older_than_a_field_gets_its_default() {
    let fixture = include_str!("fixtures/job_submitted.v1.json");
    let mut value: serde_json::Value = serde_json::from_str(fixture).expect("json");
    value.as_object_mut().expect("an object").remove("v");
    let submitted: JobSubmitted = serde_json::from_value(value).expect("reads without v");
    assert_eq!(submitted.v, VERSION);

    let fixture = include_str!("fixtures/agent_job.v1.json");
    let mut value: serde_json::Value = serde_json::from_str(fixture).expect("json");
    let object = value.as_object_mut().expect("an object");
    object.remove("compile_uid");
    object.remove("run_uid");
    let job: AgentJob = serde_json::from_value(value).expect("reads without users");
    assert_eq!(
        (job.compile_uid, job.run_uid),
        (FALLBACK_PROGRAM_UID, FALLBACK_PROGRAM_UID)
    );
}

#[test]
fn every_name_lives_under_its_prefix() {
    let names = Names::new("test_a1").expect("a valid prefix");
    assert_eq!(names.prefix(), "test_a1");
    assert_eq!(names.runs_submit(), "test_a1.runs.submit");
    assert_eq!(names.jobs("c"), "test_a1.jobs.c");
    assert_eq!(names.jobs_all(), "test_a1.jobs.*");
    assert_eq!(names.run_events("run_9"), "test_a1.runs.events.run_9");
    assert_eq!(names.executor_heartbeat(), "test_a1.executors.heartbeat");
    assert_eq!(names.run_cancel("run_9"), "test_a1.runs.cancel.run_9");
    assert_eq!(names.run_cancel_all(), "test_a1.runs.cancel.*");
    assert_eq!(names.submit_stream(), "TEST_A1_SUBMIT");
    assert_eq!(names.jobs_stream(), "TEST_A1_JOBS");
    assert_eq!(names.pool_consumer("c"), "pool-c");
    assert_eq!(names.scheduler_consumer(), "scheduler");
    assert_eq!(names.run_key("run_9"), "test_a1:run:run_9");
    assert_eq!(names.tenant_runs_key("acme"), "test_a1:tenant:acme:runs");
    assert_eq!(names.rate_key("acme"), "test_a1:rate:acme");
    assert_eq!(
        names.idempotency_key("acme", "k"),
        "test_a1:idempotency:acme:k"
    );
    assert_eq!(Names::pool_of("python"), "python");
}

#[test]
fn only_completed_and_cancelled_runs_are_final() {
    let finality = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Cancelled,
    ]
    .map(RunStatus::is_terminal);
    assert_eq!(finality, [false, false, true, true]);
}

#[test]
fn a_runs_stdout_is_its_run_stages() {
    let mut run = Run::queued(
        "run_1".to_owned(),
        "python".to_owned(),
        time::OffsetDateTime::UNIX_EPOCH,
    );
    assert_eq!(run.stdout(), "", "no stage, no output");
    run.run = Some(StageResult {
        stdout: "hello\n".to_owned(),
        ..Default::default()
    });
    assert_eq!(run.stdout(), "hello\n");
}
