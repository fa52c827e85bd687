//! The command line, and the plan it makes: how many runs and how long each phase lasts.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// The environment variable naming the agent when `--agent` is not given.
pub const AGENT_VARIABLE: &str = "CODERUN_BENCH_AGENT";

/// coderun-bench: measures baselines (the program as a host process, one container per run)
/// and a coderun stack of its own side by side on this machine, and prints every figure with
/// the ratios behind the performance targets.
///
/// The stack is started from release binaries under a bus prefix of its own, so it never
/// competes with another stack on the same NATS, Redis and Docker. Another isolation mode is
/// benched by giving the executor its configuration, for example
/// `--executor-env CODERUN_EXECUTOR__SANDBOX__RUNTIME=runsc --mode-name gvisor`.
#[derive(Debug, Clone, Parser)]
#[command(name = "coderun-bench", version, about, long_about = None)]
pub struct Args {
    /// The static sandbox agent (scripts/lib/common.sh `build_agent`); default: the
    /// CODERUN_BENCH_AGENT environment variable.
    #[arg(long, value_name = "PATH")]
    pub agent: Option<PathBuf>,
    /// Where the release binaries of the four services are; default: this binary's directory.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// NATS (with JetStream) the stack uses.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// NATS's monitoring endpoint, read for messages per run (`/varz`).
    #[arg(long, default_value = "http://127.0.0.1:8222")]
    pub nats_monitor: String,
    /// Redis the stack uses, read for commands per run (`INFO stats`).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// The executor's slots (runs at once); also the concurrency of the container churn.
    #[arg(long, default_value_t = 4)]
    pub slots: u32,
    /// An extra environment variable for the executor, `KEY=VALUE` (repeatable): how an
    /// isolation mode is benched through its configuration, e.g.
    /// `CODERUN_EXECUTOR__SANDBOX__RUNTIME=runsc`.
    #[arg(long = "executor-env", value_name = "KEY=VALUE", value_parser = parse_assignment)]
    pub executor_env: Vec<(String, String)>,
    /// The highest concurrency the throughput search tries.
    #[arg(long, default_value_t = 64)]
    pub max_concurrency: usize,
    /// A short run for CI: few iterations, phases of 1-3 s with 4 s pauses to settle,
    /// concurrency 1, 2 and 4 only.
    #[arg(long)]
    pub quick: bool,
    /// Exit non-zero when a figure is missing or not positive where it must be, or a run
    /// failed or was lost. The targets are reported, never checked.
    #[arg(long)]
    pub check: bool,
    /// Print every figure and ratio as one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep the stack's configuration files and logs (their directory is printed); they are
    /// always kept when the bench fails.
    #[arg(long)]
    pub keep_logs: bool,
    /// Write the capacity report (Markdown) to this file, e.g. docs/capacity.md.
    #[arg(long, value_name = "PATH")]
    pub capacity: Option<PathBuf>,
    /// Cost model: vCPUs of the instance the cost per million runs is computed for.
    #[arg(long, default_value_t = 2)]
    pub instance_vcpus: u32,
    /// Cost model: the instance's hourly price in USD (an example input, not a claim).
    #[arg(long, default_value_t = 0.0336)]
    pub hourly_price: f64,
    /// Tuning: measure only the idle sequential latencies and the open loops, at this rate
    /// (runs/s) instead of 70 % of a saturation searched for, and skip every other phase. The
    /// targets that need the skipped figures are reported as missing.
    #[arg(long, value_name = "RUNS_PER_S")]
    pub open_loop_at: Option<f64>,
    /// The name of the mode benched, for the report; default: the executor's
    /// `sandbox.isolation` as configured (its committed default, or --executor-env's
    /// CODERUN_EXECUTOR__SANDBOX__ISOLATION), "strict" where it has none.
    #[arg(long)]
    pub mode_name: Option<String>,
}

fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, not `{text}`")),
    }
}

impl Args {
    /// The agent's path: `--agent`, else the environment; it must be a file.
    pub fn agent_path(&self) -> anyhow::Result<PathBuf> {
        let path = self
            .agent
            .clone()
            .or_else(|| std::env::var_os(AGENT_VARIABLE).map(PathBuf::from))
            .ok_or_else(|| {
                anyhow::anyhow!("no agent: pass --agent PATH or set {AGENT_VARIABLE}")
            })?;
        anyhow::ensure!(path.is_file(), "the agent {} is not a file", path.display());
        Ok(path)
    }

    /// The services' directory: `--bin-dir`, else the directory of this executable.
    pub fn services_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.bin_dir {
            return Ok(dir.clone());
        }
        let me = std::env::current_exe()?;
        me.parent()
            .map(PathBuf::from)
            .ok_or_else(|| anyhow::anyhow!("{} has no directory", me.display()))
    }
}

/// How much of each phase to do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Runs of the C host program (B0 of C).
    pub host_runs: usize,
    /// Sequential container-per-run cycles (B1).
    pub container_runs: usize,
    /// How long the container churn (B2) lasts.
    pub churn: Duration,
    /// Sequential runs through coderun: python (each after a run of B0 of python), C, Java
    /// hello worlds.
    pub sequential_python: usize,
    pub sequential_c: usize,
    pub sequential_java: usize,
    /// The concurrency levels of the throughput search, in order.
    pub levels: Vec<usize>,
    /// How long each level of the search lasts.
    pub step: Duration,
    /// How long the open loop at 70 % of saturation lasts.
    pub open_loop: Duration,
    /// How long each language's capacity is measured (and the CPU-bound program's).
    pub per_language: Duration,
    /// The idle window whose CPU, message and command rates are subtracted.
    pub idle_window: Duration,
    /// How long the CPU-per-run phase lasts.
    pub cpu_phase: Duration,
    /// How long the stack idles before its RSS is read.
    pub settle: Duration,
    /// A run accepted but not terminal this long after it was sent is lost.
    pub lost_after: Duration,
}

impl Plan {
    pub fn new(args: &Args) -> Self {
        let doubling = |max: usize| {
            std::iter::successors(Some(1usize), |level| level.checked_mul(2))
                .take_while(move |level| *level <= max.max(1))
                .collect()
        };
        let seconds = Duration::from_secs;
        if args.quick {
            Self {
                host_runs: 20,
                container_runs: 5,
                churn: seconds(2),
                sequential_python: 20,
                sequential_c: 3,
                sequential_java: 2,
                levels: doubling(args.max_concurrency.min(4)),
                step: seconds(2),
                open_loop: seconds(2),
                per_language: seconds(1),
                idle_window: seconds(2),
                cpu_phase: seconds(3),
                settle: seconds(4),
                lost_after: seconds(120),
            }
        } else {
            Self {
                host_runs: 200,
                container_runs: 40,
                churn: seconds(20),
                sequential_python: 200,
                sequential_c: 30,
                sequential_java: 15,
                levels: doubling(args.max_concurrency),
                step: seconds(15),
                open_loop: seconds(30),
                per_language: seconds(10),
                idle_window: seconds(5),
                cpu_phase: seconds(20),
                settle: seconds(8),
                lost_after: seconds(120),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_runs_try_one_two_and_four_at_once() {
        let args = Args::parse_from(["coderun-bench", "--quick"]);
        assert_eq!(Plan::new(&args).levels, vec![1, 2, 4]);
        let args = Args::parse_from(["coderun-bench", "--max-concurrency", "40"]);
        assert_eq!(Plan::new(&args).levels, vec![1, 2, 4, 8, 16, 32]);
    }

    #[test]
    fn executor_environment_is_key_equals_value() {
        let args = Args::parse_from([
            "coderun-bench",
            "--executor-env",
            "CODERUN_EXECUTOR__SANDBOX__RUNTIME=runsc",
        ]);
        assert_eq!(
            args.executor_env,
            vec![(
                "CODERUN_EXECUTOR__SANDBOX__RUNTIME".to_owned(),
                "runsc".to_owned()
            )]
        );
        assert!(Args::try_parse_from(["coderun-bench", "--executor-env", "=x"]).is_err());
    }
}
