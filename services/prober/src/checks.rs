//! The prober's checks, each a request through the public API with its own timeout and
//! latency objective:
//!
//! - `hello_world.<language>` for every language the deployment is *expected* to serve (the
//!   `probe.languages` setting, default the whole catalog): a language no live executor serves
//!   is a failed check, never a skipped one;
//! - verdict checks, each a program whose verdict is known: `verdict.compile_error`,
//!   `verdict.runtime_error`, `verdict.time_limit`, `verdict.memory_limit`,
//!   `verdict.wrong_answer`, and `stdin.unicode_echo` (stdin comes back byte for byte).

use std::time::{Duration, Instant};

use coderun_client::Client;
use coderun_schema::catalog::Catalog;
use coderun_schema::run::{LimitsRequest, Run, RunRequest, StageLimitsRequest, TestCase, Verdict};

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// `hello_world.<language>`, `verdict.…`, `stdin.…` or `api.…`.
    pub name: String,
    /// The catalog id of the language the check's program is written in.
    pub language: String,
    pub passed: bool,
    pub detail: String,
    pub millis: u128,
    /// How long the check should take.
    pub objective: Duration,
    /// Whether it answered within its latency objective (a passing check can still be slow).
    pub within_objective: bool,
}

impl CheckResult {
    /// The `check` and `language` of the check's metrics: a hello-world is `hello_world`
    /// with its language; every other check keeps its name.
    pub fn labels(&self) -> (&str, &str) {
        match self.name.split_once('.') {
            Some(("hello_world", _)) => ("hello_world", &self.language),
            _ => (&self.name, &self.language),
        }
    }

    /// `pass`, `slow` (passed outside its objective) or `fail`.
    pub fn outcome(&self) -> &'static str {
        match (self.passed, self.within_objective) {
            (false, _) => "fail",
            (true, false) => "slow",
            (true, true) => "pass",
        }
    }
}

/// What a check's run must show: `Err` says what it showed instead.
type Expectation = Box<dyn Fn(&Run) -> Result<(), String> + Send + Sync>;

/// One check: a request and what its run must show.
struct Check {
    name: String,
    request: RunRequest,
    expect: Expectation,
    timeout: Duration,
    objective: Duration,
}

/// How long a check may take, and how long it should.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub timeout: Duration,
    pub objective: Duration,
}

fn verdict_is(expected: Verdict) -> Expectation {
    Box::new(move |run: &Run| {
        if run.verdict == Some(expected) {
            Ok(())
        } else {
            Err(format!("verdict {:?}, expected {expected:?}", run.verdict))
        }
    })
}

fn program(language: &str, source: &str) -> RunRequest {
    RunRequest {
        language: language.to_owned(),
        source: Some(source.to_owned()),
        ..Default::default()
    }
}

/// The verdict checks: fixed programs in python and c whose verdicts are known.
fn verdict_checks(timing: Timing) -> Vec<Check> {
    let check = |name: &str, request: RunRequest, expect| Check {
        name: name.to_owned(),
        request,
        expect,
        timeout: timing.timeout,
        objective: timing.objective,
    };
    let mut time_limit = program("python", "while True:\n    pass\n");
    time_limit.limits = LimitsRequest {
        run: Some(StageLimitsRequest {
            cpu_ms: Some(500),
            wall_ms: Some(1000),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut memory_limit = program(
        "python",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n",
    );
    memory_limit.limits = LimitsRequest {
        run: Some(StageLimitsRequest {
            memory_mb: Some(64),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut wrong_answer = program("python", "print(int(input()) + 1)");
    wrong_answer.tests = vec![
        TestCase {
            stdin: "1\n".to_owned(),
            expected_stdout: Some("2\n".to_owned()),
        },
        TestCase {
            stdin: "2\n".to_owned(),
            expected_stdout: Some("4\n".to_owned()),
        },
    ];
    let unicode = "héllo, wörld — 你好 👋\n";
    let mut echo = program("python", "import sys\nsys.stdout.write(sys.stdin.read())");
    echo.stdin = unicode.to_owned();
    vec![
        check(
            "verdict.compile_error",
            program("c", "int main(void) { return missing; }\n"),
            verdict_is(Verdict::CompileError),
        ),
        check(
            "verdict.runtime_error",
            program("python", "raise SystemExit(3)"),
            Box::new(|run: &Run| {
                match (
                    run.verdict,
                    run.run.as_ref().and_then(|stage| stage.exit_code),
                ) {
                    (Some(Verdict::RuntimeError), Some(3)) => Ok(()),
                    (verdict, code) => Err(format!(
                        "verdict {verdict:?}, exit code {code:?}; expected runtime_error, 3"
                    )),
                }
            }),
        ),
        check(
            "verdict.time_limit",
            time_limit,
            verdict_is(Verdict::TimeLimit),
        ),
        check(
            "verdict.memory_limit",
            memory_limit,
            verdict_is(Verdict::MemoryLimit),
        ),
        check(
            "verdict.wrong_answer",
            wrong_answer,
            Box::new(|run: &Run| {
                let verdicts: Vec<_> = run.tests.iter().map(|test| test.verdict).collect();
                match (run.verdict, verdicts.as_slice()) {
                    (
                        Some(Verdict::WrongAnswer),
                        [Some(Verdict::Ok), Some(Verdict::WrongAnswer)],
                    ) => Ok(()),
                    (verdict, tests) => Err(format!("verdict {verdict:?}, tests {tests:?}")),
                }
            }),
        ),
        check(
            "stdin.unicode_echo",
            echo,
            Box::new(move |run: &Run| match (run.verdict, run.stdout()) {
                (Some(Verdict::Ok), stdout) if stdout == unicode => Ok(()),
                (verdict, stdout) => Err(format!("verdict {verdict:?}, stdout {stdout:?}")),
            }),
        ),
    ]
}

/// Every check of one round: the expected languages' hello-worlds (all of the catalog when
/// `languages` is empty), then the verdict checks.
fn all_checks(languages: &[String], timing: Timing) -> Vec<Check> {
    let catalog = Catalog::builtin();
    let expected: Vec<_> = if languages.is_empty() {
        catalog.languages.iter().collect()
    } else {
        catalog
            .languages
            .iter()
            .filter(|spec| languages.iter().any(|name| name == &spec.id))
            .collect()
    };
    let mut checks: Vec<Check> = expected
        .into_iter()
        .map(|spec| {
            let stdout = spec.hello_world_stdout.clone();
            Check {
                name: format!("hello_world.{}", spec.id),
                request: program(&spec.id, &spec.hello_world),
                expect: Box::new(move |run: &Run| match (run.verdict, run.stdout()) {
                    (Some(Verdict::Ok), actual) if actual == stdout => Ok(()),
                    (verdict, actual) => Err(format!("verdict {verdict:?}, stdout {actual:?}")),
                }),
                timeout: timing.timeout,
                objective: timing.objective,
            }
        })
        .collect();
    checks.extend(verdict_checks(timing));
    checks
}

/// Runs one round of checks, one after another (a prober must not load what it watches): the
/// languages', the verdict checks, then the API paths'.
pub async fn run_round(
    client: &Client,
    api_key: &str,
    languages: &[String],
    timing: Timing,
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for check in all_checks(languages, timing) {
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(check.timeout, client.run_and_wait(&check.request)).await;
        let elapsed = started.elapsed();
        let (passed, detail) = match outcome {
            Err(_) => (false, format!("no answer within {:?}", check.timeout)),
            Ok(Err(error)) if error.status() == Some(503) => (
                false,
                format!(
                    "no live executor serves {} ({error})",
                    check.request.language
                ),
            ),
            Ok(Err(error)) => (false, error.to_string()),
            Ok(Ok(run)) => match (check.expect)(&run) {
                Ok(()) => (
                    true,
                    format!("{:?}", run.verdict.unwrap_or(Verdict::InternalError)),
                ),
                Err(why) => (false, why),
            },
        };
        results.push(CheckResult {
            name: check.name,
            language: check.request.language.clone(),
            objective: check.objective,
            passed,
            detail,
            millis: elapsed.as_millis(),
            within_objective: elapsed <= check.objective,
        });
    }
    results.extend(crate::api_checks::run(client, api_key, timing).await);
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, language: &str, passed: bool, within_objective: bool) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            language: language.to_owned(),
            passed,
            detail: String::new(),
            millis: 1,
            objective: Duration::from_secs(1),
            within_objective,
        }
    }

    #[test]
    fn a_hello_world_is_labelled_by_its_language_and_other_checks_by_name() {
        assert_eq!(
            result("hello_world.rust", "rust", true, true).labels(),
            ("hello_world", "rust")
        );
        assert_eq!(
            result("verdict.compile_error", "c", true, true).labels(),
            ("verdict.compile_error", "c")
        );
        assert_eq!(
            result("api.cancel", "python", false, true).outcome(),
            "fail"
        );
        assert_eq!(
            result("api.cancel", "python", true, false).outcome(),
            "slow"
        );
    }
}
