//! B0: the program as a plain host process, the floor nothing can beat. The python hello
//! world by the host's `/usr/bin/python3 -c`, and the C hello world compiled once with the
//! host's `cc`, each run one after another with its output checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use coderun_schema::catalog::LanguageSpec;

use crate::load::{Outcome, Tally};
use crate::progress::Phase;

/// The host's python, named in full so a shim or virtual environment is not what is timed.
pub const HOST_PYTHON: &str = "/usr/bin/python3";

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
