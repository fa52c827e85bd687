//! Turning the agent's measurements into the answer a client sees: stage results in the
//! request's encoding, a verdict per stage, and the run's overall verdict.
//!
//! Pure functions, no I/O: everything here is unit-tested.

use coderun_schema::agent::{AgentResult, AgentStage};
use coderun_schema::bytes64;
use coderun_schema::catalog::StageLimits;
use coderun_schema::messages::Job;
use coderun_schema::run::{Encoding, Run, StageResult, Verdict};

/// A SIGKILL with peak memory at least this share of the limit is taken as the OOM killer even
/// when the cgroup's OOM counter cannot be read.
const OOM_SHARE: f64 = 0.9;

/// The conventional name of a signal number.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        other => return format!("SIG{other}"),
    };
    name.to_owned()
}

fn encode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Base64 => bytes64::encode(bytes),
    }
}

/// Output equality as the HTTP contract (docs/api.md) defines it: trailing whitespace of each
/// line and trailing empty lines do not count.
pub fn same_output(actual: &[u8], expected: &[u8]) -> bool {
    fn normalise(bytes: &[u8]) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = bytes
            .split(|byte| *byte == b'\n')
            .map(|line| line.trim_ascii_end())
            .collect();
        while lines.last().is_some_and(|line| line.is_empty()) {
            lines.pop();
        }
        lines
    }
    normalise(actual) == normalise(expected)
}

fn stage_verdict(stage: &AgentStage, limits: &StageLimits, expected: Option<&[u8]>) -> Verdict {
    if stage.wall_timed_out || stage.cpu_timed_out {
        return Verdict::TimeLimit;
    }
    if stage.stdout_truncated || stage.stderr_truncated {
        return Verdict::OutputLimit;
    }
    let near_limit = (stage.memory_kb as f64) >= (limits.memory_mb * 1024) as f64 * OOM_SHARE;
    if stage.oom_killed || (stage.signal == Some(9) && near_limit) {
        return Verdict::MemoryLimit;
    }
    if stage.pids_exceeded
        || stage.spawn_error.is_some()
        || stage.signal.is_some()
        || stage.exit_code != Some(0)
    {
        return Verdict::RuntimeError;
    }
    match expected {
        Some(expected) if !same_output(stage.stdout.as_slice(), expected) => Verdict::WrongAnswer,
        _ => Verdict::Ok,
    }
}

/// One stage as the API shows it.
pub fn stage_result(
    stage: &AgentStage,
    limits: &StageLimits,
    encoding: Encoding,
    expected: Option<&[u8]>,
) -> StageResult {
    let mut stderr = stage.stderr.as_slice().to_vec();
    if stage.pids_exceeded {
        stderr.extend_from_slice(
            format!("coderun: stopped at more than {} processes\n", limits.pids).as_bytes(),
        );
    }
    if let Some(error) = &stage.spawn_error {
        stderr.extend_from_slice(error.as_bytes());
    }
    StageResult {
        exit_code: stage.exit_code,
        signal: stage.signal.map(signal_name),
        stdout: encode(stage.stdout.as_slice(), encoding),
        stderr: encode(&stderr, encoding),
        stdout_truncated: stage.stdout_truncated,
        stderr_truncated: stage.stderr_truncated,
        cpu_ms: stage.cpu_ms,
        wall_ms: stage.wall_ms,
        memory_kb: stage.memory_kb,
        verdict: Some(stage_verdict(stage, limits, expected)),
    }
}

/// The compile stage as the API shows it: a failure is a `compile_error` (or `time_limit`).
pub fn compile_result(compile: &AgentStage, job: &Job) -> StageResult {
    let mut stage = stage_result(compile, &job.limits.compile, job.encoding, None);
    if stage.verdict != Some(Verdict::Ok) {
        stage.verdict = Some(match stage.verdict {
            Some(Verdict::TimeLimit) => Verdict::TimeLimit,
            _ => Verdict::CompileError,
        });
    }
    stage
}

/// The `index`th test as the API shows it, compared with its expected output; `None` for a
/// test the job does not have.
pub fn test_result(stage: &AgentStage, job: &Job, index: usize) -> Option<StageResult> {
    let test = job.tests.get(index)?;
    let expected = test.expected_stdout.as_ref().map(|bytes| bytes.as_slice());
    Some(stage_result(stage, &job.limits.run, job.encoding, expected))
}

/// Fills a run's results and verdict from the agent's answer. The run's status and times are
/// the caller's business.
pub fn apply(run: &mut Run, job: &Job, result: &AgentResult) {
    if let Some(error) = &result.error {
        tracing::error!(run_id = %run.id, %error, "the agent could not run the job");
        run.verdict = Some(Verdict::InternalError);
        run.error = Some("the sandbox could not run the job".to_owned());
        return;
    }
    if let Some(compile) = &result.compile {
        let stage = compile_result(compile, job);
        let failed = stage.verdict != Some(Verdict::Ok);
        run.compile = Some(stage);
        if failed {
            run.verdict = Some(Verdict::CompileError);
            return;
        }
    }
    let tests: Vec<StageResult> = result
        .runs
        .iter()
        .enumerate()
        .filter_map(|(index, stage)| test_result(stage, job, index))
        .collect();
    if tests.len() != job.tests.len() {
        run.verdict = Some(Verdict::InternalError);
        run.error = Some("the sandbox returned fewer results than tests".to_owned());
        return;
    }
    run.verdict = Some(
        tests
            .iter()
            .filter_map(|test| test.verdict)
            .find(|verdict| *verdict != Verdict::Ok)
            .unwrap_or(Verdict::Ok),
    );
    run.run = tests.first().cloned();
    if job.explicit_tests {
        run.tests = tests;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coderun_schema::bytes64::Bytes64;
    use coderun_schema::catalog::Catalog;
    use coderun_schema::messages::JobTest;

    fn job(tests: Vec<JobTest>, explicit_tests: bool) -> Job {
        Job {
            language: "python".to_owned(),
            files: Vec::new(),
            args: Vec::new(),
            tests,
            explicit_tests,
            limits: Catalog::builtin().limits.default,
            encoding: Encoding::Utf8,
            callback_url: None,
            isolation: None,
        }
    }

    fn exited(code: i32, stdout: &str) -> AgentStage {
        AgentStage {
            exit_code: Some(code),
            stdout: Bytes64::from(stdout),
            ..Default::default()
        }
    }

    fn new_run() -> Run {
        Run::queued(
            "run_1".to_owned(),
            "python".to_owned(),
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn output_comparison_ignores_trailing_whitespace_only() {
        assert!(same_output(b"a  \nb\n\n\n", b"a\nb"));
        assert!(!same_output(b"a\n b\n", b"a\nb\n"));
        assert!(!same_output(b"ab\n", b"a\nb\n"));
    }

    #[test]
    fn first_failing_test_decides_the_verdict() {
        let tests = vec![
            JobTest {
                stdin: Bytes64::default(),
                expected_stdout: Some(Bytes64::from("1\n")),
            },
            JobTest {
                stdin: Bytes64::default(),
                expected_stdout: Some(Bytes64::from("2\n")),
            },
            JobTest {
                stdin: Bytes64::default(),
                expected_stdout: None,
            },
        ];
        let result = AgentResult {
            v: coderun_schema::agent::AGENT_PROTOCOL_VERSION,
            compile: None,
            runs: vec![exited(0, "1\n"), exited(0, "3\n"), exited(1, "")],
            error: None,
        };
        let mut run = new_run();
        apply(&mut run, &job(tests, true), &result);
        assert_eq!(run.verdict, Some(Verdict::WrongAnswer));
        assert_eq!(run.tests.len(), 3);
        assert_eq!(run.tests[2].verdict, Some(Verdict::RuntimeError));
        assert_eq!(
            run.run.as_ref().and_then(|stage| stage.verdict),
            Some(Verdict::Ok)
        );
    }

    #[test]
    fn failed_compilation_is_a_compile_error_without_runs() {
        let result = AgentResult {
            v: coderun_schema::agent::AGENT_PROTOCOL_VERSION,
            compile: Some(exited(1, "")),
            runs: Vec::new(),
            error: None,
        };
        let mut run = new_run();
        apply(&mut run, &job(vec![JobTest::default()], false), &result);
        assert_eq!(run.verdict, Some(Verdict::CompileError));
        assert!(run.run.is_none());
    }

    #[test]
    fn signals_timeouts_and_output_caps_have_their_verdicts() {
        let limits = Catalog::builtin().limits.default.run;
        let segfault = AgentStage {
            signal: Some(11),
            ..Default::default()
        };
        let result = stage_result(&segfault, &limits, Encoding::Utf8, None);
        assert_eq!(result.verdict, Some(Verdict::RuntimeError));
        assert_eq!(result.signal.as_deref(), Some("SIGSEGV"));
        let slow = AgentStage {
            signal: Some(9),
            wall_timed_out: true,
            ..Default::default()
        };
        assert_eq!(
            stage_result(&slow, &limits, Encoding::Utf8, None).verdict,
            Some(Verdict::TimeLimit)
        );
        let loud = AgentStage {
            exit_code: Some(0),
            stdout_truncated: true,
            ..Default::default()
        };
        assert_eq!(
            stage_result(&loud, &limits, Encoding::Utf8, None).verdict,
            Some(Verdict::OutputLimit)
        );
        let hungry = AgentStage {
            signal: Some(9),
            memory_kb: limits.memory_mb * 1024,
            ..Default::default()
        };
        assert_eq!(
            stage_result(&hungry, &limits, Encoding::Utf8, None).verdict,
            Some(Verdict::MemoryLimit)
        );
    }

    #[test]
    fn base64_encoding_keeps_binary_output() {
        let limits = Catalog::builtin().limits.default.run;
        let binary = AgentStage {
            exit_code: Some(0),
            stdout: Bytes64(vec![0xff, 0x00]),
            ..Default::default()
        };
        assert_eq!(
            stage_result(&binary, &limits, Encoding::Base64, None).stdout,
            "/wA="
        );
        assert_eq!(
            stage_result(&binary, &limits, Encoding::Utf8, None).stdout,
            "\u{fffd}\u{0}"
        );
    }
}
