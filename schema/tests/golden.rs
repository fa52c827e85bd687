//! Every NATS message, Redis value and agent message version ever shipped must keep
//! deserialising: a newer reader meets older writers during every rolling release. The files in
//! `fixtures/` are golden — never edit one; add `<name>.v<N+1>.json` for a new version.

use coderun_schema::agent::{
    AgentJob, AgentOutput, AgentPaused, AgentResult, AgentResume, AgentStageDone, OutputStream,
};
use coderun_schema::messages::{
    CancelRequested, ExecutorHeartbeat, JobDispatched, JobSubmitted, RunEvent, RunEventKind,
    RunRecord, WebhookDue,
};
use coderun_schema::run::Verdict;
use serde::de::DeserializeOwned;

fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Deserialises a fixture as it is, and again with a field this version has never heard of:
/// readers ignore unknown fields.
fn read<T: DeserializeOwned>(name: &str) -> T {
    let mut value = fixture(name);
    let plain: T =
        serde_json::from_value(value.clone()).unwrap_or_else(|error| panic!("{name}: {error}"));
    value.as_object_mut().expect("messages are objects").insert(
        "field_from_the_future".to_owned(),
        serde_json::json!({"any": ["thing"]}),
    );
    serde_json::from_value::<T>(value)
        .unwrap_or_else(|error| panic!("{name} with an unknown field: {error}"));
    plain
}

#[test]
fn job_submitted_v1() {
    let message: JobSubmitted = read("job_submitted.v1.json");
    assert_eq!(message.v, 1);
    assert_eq!(
        message.job.files[0].content.as_slice(),
        b"print(input()[::-1])\n"
    );
    assert_eq!(message.job.limits.run.memory_mb, 256);
}

#[test]
fn job_dispatched_v1() {
    let message: JobDispatched = read("job_dispatched.v1.json");
    assert_eq!(message.pool, "python");
    assert_eq!(
        message.job.tests[0]
            .expected_stdout
            .as_ref()
            .map(|b| b.as_slice()),
        Some(&b"olleh\n"[..])
    );
}

#[test]
fn run_event_v1() {
    let message: RunEvent = read("run_event.v1.json");
    assert_eq!(message.kind, RunEventKind::Completed);
    assert_eq!(message.run.and_then(|run| run.verdict), Some(Verdict::Ok));
}

#[test]
fn run_event_of_a_test_v1() {
    let message: RunEvent = read("run_event_test.v1.json");
    assert_eq!(message.kind, RunEventKind::Test);
    assert_eq!((message.seq, message.test_index), (Some(5), Some(2)));
    assert_eq!(
        message.stage.and_then(|stage| stage.verdict),
        Some(Verdict::WrongAnswer)
    );
}

#[test]
fn webhook_due_v1() {
    let message: WebhookDue = read("webhook_due.v1.json");
    assert_eq!(
        (message.run_id.as_str(), message.tenant.as_str()),
        ("run_01JDZ8W8N6P4Q2R3S4T5V6W7X8", "tenant-a")
    );
}

#[test]
fn cancel_requested_v1() {
    let message: CancelRequested = read("cancel_requested.v1.json");
    assert_eq!(message.run_id, "run_01JDZ8W8N6P4Q2R3S4T5V6W7X8");
}

#[test]
fn executor_heartbeat_v1() {
    let message: ExecutorHeartbeat = read("executor_heartbeat.v1.json");
    assert_eq!(message.languages[0].id, "python");
    assert_eq!((message.slots_total, message.slots_free), (4, 3));
}

#[test]
fn run_record_v1() {
    let record: RunRecord = read("run_record.v1.json");
    assert_eq!(record.tenant, "tenant-a");
    assert_eq!(
        record.run.run.map(|stage| stage.stdout),
        Some("olleh\n".to_owned())
    );
    assert!(record.submission.is_some());
}

/// A record written since the gateway keeps the run's trace context in it.
#[test]
fn run_record_with_its_trace_v1() {
    let record: RunRecord = read("run_record_traced.v1.json");
    assert_eq!(
        record.trace().map(|trace| trace.trace_id_hex()).as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let older: RunRecord = read("run_record.v1.json");
    assert_eq!(older.trace(), None, "records from before it have none");
}

/// A record written since executors claim a run for the job that runs it.
#[test]
fn run_record_claimed_by_a_job_v1() {
    let record: RunRecord = read("run_record_claimed.v1.json");
    assert_eq!(record.job_sequence, Some(4211));
    assert_eq!(record.run.status, coderun_schema::run::RunStatus::Running);
    let older: RunRecord = read("run_record_traced.v1.json");
    assert_eq!(older.job_sequence, None, "records from before it have none");
}

#[test]
fn agent_job_v1() {
    let job: AgentJob = read("agent_job.v1.json");
    assert_eq!(job.run.argv, vec!["./main", "a b", "$(x)\n"]);
    assert_eq!(job.stdins.len(), 2);
}

#[test]
fn agent_result_v1() {
    let result: AgentResult = read("agent_result.v1.json");
    assert_eq!(result.runs[0].signal, Some(11));
    assert_eq!(result.runs[0].stdout.as_slice(), b"partial");
}

#[test]
fn agent_paused_v1() {
    let paused: AgentPaused = read("agent_paused.v1.json");
    assert!(paused.paused_after_compile);
}

#[test]
fn agent_resume_v1() {
    let resume: AgentResume = read("agent_resume.v1.json");
    assert!(resume.proceed);
}

#[test]
fn agent_output_v1() {
    let output: AgentOutput = read("agent_output.v1.json");
    assert_eq!(
        (output.test, output.stream),
        (Some(2), OutputStream::Stderr)
    );
    assert_eq!(output.data.as_slice(), b"warning\n");
}

#[test]
fn agent_stage_done_v1() {
    let done: AgentStageDone = read("agent_stage_done.v1.json");
    assert_eq!(done.test, None);
    assert_eq!(done.stage_done.exit_code, Some(1));
    // Never mistaken for the final answer or an output piece.
    let line = serde_json::to_vec(&fixture("agent_stage_done.v1.json")).expect("json");
    assert!(serde_json::from_slice::<AgentResult>(&line).is_err());
    assert!(serde_json::from_slice::<AgentOutput>(&line).is_err());
}
