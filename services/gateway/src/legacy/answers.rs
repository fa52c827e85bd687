//! A run as the older runner protocol shows it: `running` or `completed`, stage results as
//! `success`, `failure`, `error` or `timeout`, times in seconds with two decimals (wall time),
//! memory in bytes.

use coderun_schema::legacy::{LegacyDetails, LegacyStatus};
use coderun_schema::run::{Run, StageResult, Verdict};

/// `create` and `get_status`.
pub fn status_of(run: &Run) -> LegacyStatus {
    LegacyStatus {
        id: run.id.clone(),
        status: status_word(run).to_owned(),
        error: run.error.clone(),
    }
}

/// `get_details`.
pub fn details_of(run: &Run) -> LegacyDetails {
    let build = run.compile.as_ref();
    let stage = run.run.as_ref();
    LegacyDetails {
        id: run.id.clone(),
        language: run.language.clone(),
        note: None,
        status: status_word(run).to_owned(),
        build_stdout: build.map(|stage| stage.stdout.clone()),
        build_stderr: build.map(|stage| stage.stderr.clone()),
        build_exit_code: build.and_then(|stage| stage.exit_code),
        build_time: build.map(seconds),
        build_memory: build.map(bytes),
        build_result: build.map(|stage| result_word(stage, Verdict::CompileError).to_owned()),
        stdout: stage.map(|stage| stage.stdout.clone()),
        stderr: stage.map(|stage| stage.stderr.clone()),
        exit_code: stage.and_then(|stage| stage.exit_code),
        time: stage.map(seconds),
        memory: stage.map(bytes),
        connections: stage.map(|_| 0),
        result: stage.map(|stage| result_word(stage, Verdict::RuntimeError).to_owned()),
        error: run.error.clone(),
    }
}

fn status_word(run: &Run) -> &'static str {
    if run.status.is_terminal() {
        "completed"
    } else {
        "running"
    }
}

fn seconds(stage: &StageResult) -> String {
    format!("{:.2}", stage.wall_ms as f64 / 1000.0)
}

fn bytes(stage: &StageResult) -> u64 {
    stage.memory_kb.saturating_mul(1024)
}

/// `failed` is the verdict of a stage that ran and failed on its own terms.
fn result_word(stage: &StageResult, failed: Verdict) -> &'static str {
    match stage.verdict {
        Some(Verdict::Ok) => "success",
        Some(Verdict::TimeLimit) => "timeout",
        Some(verdict) if verdict == failed || verdict == Verdict::WrongAnswer => "failure",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coderun_schema::run::RunStatus;

    fn stage(verdict: Verdict) -> StageResult {
        StageResult {
            exit_code: Some(1),
            stdout: "out".to_owned(),
            wall_ms: 1234,
            memory_kb: 2,
            verdict: Some(verdict),
            ..Default::default()
        }
    }

    #[test]
    fn stages_map_to_the_old_words_and_units() {
        let mut run = Run::queued(
            "run_1".to_owned(),
            "c".to_owned(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(status_of(&run).status, "running");
        assert!(details_of(&run).result.is_none());
        run.status = RunStatus::Completed;
        run.compile = Some(stage(Verdict::Ok));
        run.run = Some(stage(Verdict::TimeLimit));
        let details = details_of(&run);
        assert_eq!(details.status, "completed");
        assert_eq!(details.build_result.as_deref(), Some("success"));
        assert_eq!(details.result.as_deref(), Some("timeout"));
        assert_eq!(details.time.as_deref(), Some("1.23"));
        assert_eq!(details.memory, Some(2048));
        assert_eq!(details.connections, Some(0));
        for (verdict, word) in [
            (Verdict::RuntimeError, "failure"),
            (Verdict::WrongAnswer, "failure"),
            (Verdict::MemoryLimit, "error"),
            (Verdict::OutputLimit, "error"),
            (Verdict::CompileError, "error"),
        ] {
            assert_eq!(
                result_word(&stage(verdict), Verdict::RuntimeError),
                word,
                "{verdict:?}"
            );
        }
        assert_eq!(
            result_word(&stage(Verdict::CompileError), Verdict::CompileError),
            "failure"
        );
    }
}
