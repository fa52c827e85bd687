//! The scheduler binary's start-up: arguments, and an invalid configuration that ends it with
//! one clear line and exit code 2 before it connects to NATS (pointed where nothing listens).

use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_coderun-scheduler");
const NOWHERE: (&str, &str) = ("CODERUN_SCHEDULER__BUS__URL", "nats://127.0.0.1:1");

#[test]
fn version_answers_and_an_invalid_batch_or_prefix_exits_2_before_connecting() {
    let version = coderun_boot::run_binary(BINARY, &["--version"], &[], Duration::from_secs(20))
        .expect("runs");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("coderun-scheduler {}", env!("CARGO_PKG_VERSION"))
    );
    let invalid = coderun_boot::run_binary(
        BINARY,
        &[],
        &[NOWHERE, ("CODERUN_SCHEDULER__SUBMIT__BATCH", "0")],
        Duration::from_secs(20),
    )
    .expect("runs");
    let text = String::from_utf8_lossy(&invalid.stderr);
    assert_eq!(invalid.status.code(), Some(2), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("submit.batch must be at least 1"), "{text}");

    let bad_prefix = coderun_boot::run_binary(
        BINARY,
        &[],
        &[NOWHERE, ("CODERUN_SCHEDULER__BUS__PREFIX", "a.b")],
        Duration::from_secs(20),
    )
    .expect("runs");
    let text = String::from_utf8_lossy(&bad_prefix.stderr);
    assert_eq!(bad_prefix.status.code(), Some(2), "{text}");
    assert!(text.contains("bus.prefix"), "{text}");
}
