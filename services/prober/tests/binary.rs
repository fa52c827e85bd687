//! The prober binary's start-up: `--config` is read, and a configuration it cannot work with
//! ends it with one clear line and exit code 2 before it calls the gateway.

use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_coderun-prober");

fn run(args: &[&str], variables: &[(&str, &str)]) -> (Option<i32>, String) {
    let output =
        coderun_boot::run_binary(BINARY, args, variables, Duration::from_secs(20)).expect("runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), text)
}

#[test]
fn without_a_key_it_exits_2_with_one_line() {
    let (code, text) = run(&["--once"], &[]);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("target.api_key is empty"), "{text}");
}

#[test]
fn the_config_file_is_read() {
    let file = std::env::temp_dir().join(format!("coderun-prober-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "[target]\napi_key = \"k\"\nbase_url = \"ftp://example\"\n",
    )
    .expect("write");
    let path = file.to_string_lossy().into_owned();
    let (code, text) = run(&["--once", "--config", &path], &[]);
    std::fs::remove_file(&file).ok();
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("target.base_url must be an http or https URL"),
        "{text}"
    );
}

#[test]
fn an_unknown_argument_is_a_usage_error_and_help_lists_once() {
    let (code, _) = run(&["--twice"], &[]);
    assert_eq!(code, Some(2));
    let output =
        coderun_boot::run_binary(BINARY, &["--help"], &[], Duration::from_secs(20)).expect("runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("--once") && help.contains("--config <PATH>"),
        "{help}"
    );
}
