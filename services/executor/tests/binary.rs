//! The executor binary's start-up: a language that is not in the catalog, or a missing agent,
//! ends it with one clear line and exit code 2 before it connects to NATS, Redis or Docker
//! (NATS is pointed where nothing listens).

use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_coderun-executor");
const NOWHERE: (&str, &str) = ("CODERUN_EXECUTOR__BUS__URL", "nats://127.0.0.1:1");

fn refused(variables: &[(&str, &str)]) -> String {
    let mut all = vec![NOWHERE];
    all.extend_from_slice(variables);
    let output =
        coderun_boot::run_binary(BINARY, &[], &all, Duration::from_secs(20)).expect("runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    text
}

#[test]
fn an_unknown_language_exits_2_before_connecting() {
    // An agent that exists, so the language is what is refused.
    let text = refused(&[
        ("CODERUN_EXECUTOR__SANDBOX__AGENT_PATH", BINARY),
        ("CODERUN_EXECUTOR__WORKER__LANGUAGES", "python,cobol"),
    ]);
    assert!(
        text.contains("worker.languages") && text.contains("cobol"),
        "{text}"
    );
}

#[test]
fn a_missing_agent_exits_2_before_connecting() {
    let text = refused(&[(
        "CODERUN_EXECUTOR__SANDBOX__AGENT_PATH",
        "/nonexistent/agent",
    )]);
    assert!(text.contains("sandbox.agent_path"), "{text}");
}
