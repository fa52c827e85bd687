//! checkov (a scanner nobody here wrote) finds no failed check in `terraform/`, and every check
//! skipped there says why.

use std::process::Command;

use coderun_infra_tests::{repository, tool_directory};
use serde_json::Value;

#[test]
fn checkov_passes_every_check_and_each_skip_is_justified() {
    let checkov = tool_directory("CODERUN_TEST_INFRA_TOOLS").join("bin/checkov");
    let output = Command::new(checkov)
        .args([
            "--directory",
            "terraform",
            "--framework",
            "terraform",
            "--output",
            "json",
        ])
        .args(["--quiet", "--compact", "--skip-download", "--soft-fail"])
        .current_dir(repository())
        .output()
        .expect("failed to run checkov");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "checkov gave no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let summary = &report["summary"];
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 100,
        "checkov checked little: {summary}"
    );
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|check| {
            format!(
                "{} {} ({})",
                check["check_id"], check["resource"], check["file_path"]
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "checkov failed checks:\n{}",
        failed.join("\n")
    );
    for skipped in report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let reason = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(
            reason.split_whitespace().count() >= 4,
            "{} on {} is skipped without a reason",
            skipped["check_id"],
            skipped["resource"]
        );
    }
}
