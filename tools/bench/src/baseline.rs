//! B0: the program as a plain host process, the floor nothing can beat. The python hello
//! world by the host's `/usr/bin/python3 -c`, and the C hello world compiled once with the
//! host's `cc`, each run one after another with its output checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use coderun_schema::catalog::LanguageSpec;

use crate::load::{Operation, Outcome, Tally};
use crate::progress::Phase;

/// The host's python, named in full so a shim or virtual environment is not what is timed.
pub const HOST_PYTHON: &str = "/usr/bin/python3";

/// The pause before each attempt when a host program alternates with another operation.
pub const QUIET: std::time::Duration = std::time::Duration::from_millis(25);

/// A host program and the output it must print.
#[derive(Debug, Clone)]
pub struct HostProgram {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub expected_stdout: String,
}

impl HostProgram {
    /// The catalog's python hello world as `python3 -c`.
    pub fn python(python: &LanguageSpec) -> Self {
        Self {
            program: PathBuf::from(HOST_PYTHON),
            args: vec!["-c".to_owned(), python.hello_world.clone()],
            expected_stdout: python.hello_world_stdout.clone(),
        }
    }

    /// The catalog's C hello world, compiled with `cc -O2` into `dir`.
    pub fn c(c: &LanguageSpec, dir: &Path) -> anyhow::Result<Self> {
        let source = dir.join("hello.c");
        let binary = dir.join("hello");
        std::fs::write(&source, &c.hello_world)?;
        let compiled = Command::new("cc")
            .arg("-O2")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .output()
            .context("failed to run the host's cc")?;
        anyhow::ensure!(
            compiled.status.success(),
            "cc failed: {}",
            String::from_utf8_lossy(&compiled.stderr)
        );
        Ok(Self {
            program: binary,
            args: Vec::new(),
            expected_stdout: c.hello_world_stdout.clone(),
        })
    }

    fn run_once(&self) -> Outcome {
        let output = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .output();
        match output {
            Ok(output)
                if output.status.success() && output.stdout == self.expected_stdout.as_bytes() =>
            {
                Outcome::Succeeded {
                    program_cpu_ms: 0,
                    queue_ms: None,
                }
            }
            Ok(output) => Outcome::Failed(format!(
                "{} exited {}, stdout {:?}",
                self.program.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout)
            )),
            Err(error) => Outcome::Failed(format!("{}: {error}", self.program.display())),
        }
    }

    /// One run on a blocking thread, timed there, so the hop to it is not in the time.
    async fn timed_run(&self) -> (std::time::Duration, Outcome) {
        let program = self.clone();
        let timed = tokio::task::spawn_blocking(move || {
            let attempt = Instant::now();
            let outcome = program.run_once();
            (attempt.elapsed(), outcome)
        })
        .await;
        timed.unwrap_or_else(|error| (Default::default(), Outcome::Failed(error.to_string())))
    }

    /// `count` pairs, after `warm_up` untimed ones: this program, then `operation`, one after
    /// the other. A shared machine's speed drifts over minutes; alternating puts both under
    /// the same drift, so their difference is the operation's own cost. Each starts after a
    /// short pause ([`QUIET`]), so neither pays for what the other left the kernel to finish
    /// (a sandbox's namespaces are torn down after its answer).
    /// Returns (this program's tally, the operation's tally).
    pub async fn alternate_with(
        &self,
        operation: &Operation,
        warm_up: usize,
        count: usize,
        phase: &Phase,
    ) -> (Tally, Tally) {
        for _ in 0..warm_up {
            let _ = self.timed_run().await;
            let _ = operation().await;
        }
        let (mut host, mut other) = (Tally::default(), Tally::default());
        for _ in 0..count {
            tokio::time::sleep(QUIET).await;
            let (latency, outcome) = self.timed_run().await;
            host.record(latency, outcome);
            host.elapsed += latency;
            tokio::time::sleep(QUIET).await;
            let attempt = Instant::now();
            let outcome = operation().await;
            let latency = attempt.elapsed();
            other.record(latency, outcome);
            other.elapsed += latency;
            phase.tick();
        }
        (host, other)
    }

    /// `count` runs one after another (after one untimed run that warms the caches), on a
    /// blocking thread so the timing has no scheduler hop in it.
    pub async fn run_sequentially(&self, count: usize, phase: &Phase) -> Tally {
        let (program, phase) = (self.clone(), phase.clone());
        let measured = tokio::task::spawn_blocking(move || {
            let _ = program.run_once();
            let mut tally = Tally::default();
            let started = Instant::now();
            for _ in 0..count {
                let attempt = Instant::now();
                let outcome = program.run_once();
                tally.record(attempt.elapsed(), outcome);
                phase.tick();
            }
            tally.elapsed = started.elapsed();
            tally
        })
        .await;
        measured.unwrap_or_else(|error| {
            let mut tally = Tally::default();
            tally.record(Default::default(), Outcome::Failed(error.to_string()));
            tally
        })
    }
}
