//! The gateway binary's start-up: arguments, and configuration errors that end it with one
//! clear line and exit code 2 before it connects to anything (NATS is pointed at a port where
//! nothing listens: a binary that tried to connect would fail differently, or hang).

use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_coderun-gateway");
const NOWHERE: (&str, &str) = ("CODERUN_GATEWAY__BUS__URL", "nats://127.0.0.1:1");
const A_TENANT: &str = "[[tenants]]\nid = \"a\"\nkey_sha256 = [\"";

fn run(args: &[&str], variables: &[(&str, &str)]) -> std::process::Output {
    coderun_boot::run_binary(BINARY, args, variables, Duration::from_secs(20)).expect("runs")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_and_version_answer_without_starting_anything() {
    let help = run(&["--help"], &[NOWHERE]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--config <PATH>") && text.contains("--version"),
        "{text}"
    );
    let version = run(&["--version"], &[NOWHERE]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("coderun-gateway {}", env!("CARGO_PKG_VERSION"))
    );
    let unknown = run(&["--verbose"], &[NOWHERE]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
}

#[test]
fn no_tenants_is_one_line_and_exit_2_before_connecting() {
    let output = run(&[], &[NOWHERE]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("coderun-gateway: invalid configuration: no tenants"),
        "{text}"
    );
}

#[test]
fn a_value_of_the_wrong_type_names_its_key_and_exits_2() {
    let output = run(&[], &[NOWHERE, ("CODERUN_GATEWAY__HTTP__PORT", "eighty")]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("http.port"), "{text}");
}

#[test]
fn a_config_file_is_read_and_a_misspelt_variable_is_warned_about() {
    let file = std::env::temp_dir().join(format!("coderun-gateway-{}.toml", std::process::id()));
    // A valid tenant, and a default wait above the maximum: the file was read when the
    // error names that rule rather than the missing tenants.
    let text = format!(
        "{A_TENANT}{}\"]\n[runs]\ndefault_wait_ms = 900000\n",
        "0".repeat(64)
    );
    std::fs::write(&file, text).expect("write the file");
    let path = file.to_string_lossy().into_owned();
    let output = run(
        &["--config", &path],
        &[NOWHERE, ("CODERUN_GATEWY__HTTP__PORT", "8081")],
    );
    std::fs::remove_file(&file).ok();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("runs.default_wait_ms"),
        "{}",
        stderr(&output)
    );
    // Logs go to stderr too (stdout is for what a command prints).
    let logs = stderr(&output);
    assert!(
        logs.contains("CODERUN_GATEWY__HTTP__PORT"),
        "no warning in: {logs}"
    );
}
