//! Runs through coderun's public API (`POST /v1/runs?wait=true` with the typed client), each
//! answer checked: verdict `ok` and the expected stdout, or it is a failure; a run accepted
//! but not terminal in time is lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use coderun_client::{Client, ClientError, CreateOptions};
use coderun_schema::catalog::LanguageSpec;
use coderun_schema::run::{Run, RunRequest, Verdict};

use crate::load::{Operation, Outcome};

/// The longest one wait on the API lasts, in milliseconds (below the gateway's maximum).
const WAIT_MS: u64 = 60_000;

/// Python that burns about 100-150 ms of CPU (on a 2020s core) and prints its sum.
pub const CPU_BOUND_PYTHON: &str =
    "total = 0\nfor number in range(1_200_000):\n    total += number\nprint(total)\n";
/// What [`CPU_BOUND_PYTHON`] prints: 0 + 1 + … + 1 199 999.
pub const CPU_BOUND_STDOUT: &str = "719999400000\n";

/// One program submitted again and again, its answer checked every time.
pub struct CheckedRun {
    client: Client,
    request: RunRequest,
    expected_stdout: String,
    lost_after: Duration,
}

impl CheckedRun {
    /// `source` in `language`, which must print `expected_stdout`.
    pub fn new(
        client: &Client,
        language: &str,
        source: &str,
        expected_stdout: &str,
        lost_after: Duration,
    ) -> Self {
        Self {
            client: client.clone(),
            request: RunRequest {
                language: language.to_owned(),
                source: Some(source.to_owned()),
                ..Default::default()
            },
            expected_stdout: expected_stdout.to_owned(),
            lost_after,
        }
    }

    /// The catalog's hello world of `language`.
    pub fn hello(client: &Client, language: &LanguageSpec, lost_after: Duration) -> Self {
        Self::new(
            client,
            &language.id,
            &language.hello_world,
            &language.hello_world_stdout,
            lost_after,
        )
    }

    pub fn operation(self) -> Operation {
        let run = Arc::new(self);
        Arc::new(move || {
            let run = run.clone();
            Box::pin(async move { run.once().await })
        })
    }

    async fn once(&self) -> Outcome {
        let started = Instant::now();
        let options = CreateOptions {
            wait: true,
            timeout_ms: Some(WAIT_MS),
            idempotency_key: None,
        };
        let mut run = match self.client.create_run(&self.request, &options).await {
            Ok(reply) => reply.body,
            Err(error) => return Outcome::Failed(describe(&error)),
        };
        while !run.status.is_terminal() {
            let Some(left) = self.lost_after.checked_sub(started.elapsed()) else {
                return Outcome::Lost;
            };
            let wait_ms = (left.as_millis() as u64).clamp(1, WAIT_MS);
            run = match self.client.get_run(&run.id, Some(wait_ms)).await {
                Ok(reply) => reply.body,
                Err(error) => return Outcome::Failed(describe(&error)),
            };
        }
        self.check(&run)
    }

    fn check(&self, run: &Run) -> Outcome {
        if run.verdict == Some(Verdict::Ok) && run.stdout() == self.expected_stdout {
            let stages = run.compile.iter().chain(run.run.iter()).chain(&run.tests);
            Outcome::Succeeded {
                program_cpu_ms: stages.map(|stage| stage.cpu_ms).sum(),
                queue_ms: run.queue_ms,
            }
        } else {
            Outcome::Failed(format!(
                "{} run {}: verdict {:?}, stdout {:?}, error {:?}",
                run.language,
                run.id,
                run.verdict,
                run.stdout(),
                run.error
            ))
        }
    }
}

fn describe(error: &ClientError) -> String {
    match error.problem() {
        Some(problem) => format!(
            "{} {}: {}",
            problem.status,
            problem.title,
            problem.detail.as_deref().unwrap_or("")
        ),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_bound_program_prints_the_sum_it_claims() {
        let expected: u64 = (0..1_200_000u64).sum();
        assert_eq!(CPU_BOUND_STDOUT, format!("{expected}\n"));
        assert!(CPU_BOUND_PYTHON.contains("range(1_200_000)"));
    }
}
