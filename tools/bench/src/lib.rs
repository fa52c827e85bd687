//! coderun-bench: the performance benchmark. In one run on one machine it measures the
//! baselines and a coderun stack of its own side by side and prints every figure, with the
//! ratios behind the targets (a benchmark measures ratios against a baseline taken in the
//! same run; they are not timed tests).
//!
//! - [`args`]: the command line and the plan it makes (`--quick` or full).
//! - [`stack`]: the four services started from release binaries, stopped at the end, what
//!   they leave removed ([`leftovers`]); [`stack_config`]: their configuration files.
//! - [`baseline`]: B0, the program as a host process; [`churn`]: B1 and B2, one container per
//!   run through the Docker API with coderun's own sandbox settings.
//! - [`api_runs`]: runs through the public API, every answer checked; [`load`]: sequential,
//!   closed-loop and open-loop drivers; [`saturation`]: the throughput search; [`stats`]:
//!   percentiles.
//! - [`cpu`]: CPU time and memory from /proc; [`infra`]: NATS and Redis counters; [`cost`]:
//!   what one run costs the machine.
//! - [`phases`]: every phase in order; [`figure`], [`figures`], [`targets`], [`report`]: the
//!   answer; [`capacity`]: the Markdown capacity report; [`machine`]: where it was measured;
//!   [`progress`]: what the bench is doing, on stderr.

pub mod api_runs;
pub mod args;
pub mod baseline;
pub mod capacity;
pub mod churn;
pub mod cost;
pub mod cpu;
pub mod figure;
pub mod figures;
pub mod infra;
pub mod leftovers;
pub mod load;
pub mod machine;
pub mod phases;
pub mod progress;
pub mod report;
pub mod saturation;
pub mod stack;
pub mod stack_config;
pub mod stats;
pub mod targets;

use anyhow::Context as _;

use crate::args::{Args, Plan};
use crate::capacity::CostModel;
use crate::machine::Machine;
use crate::phases::Measurements;
use crate::progress::Progress;
use crate::report::{Report, Settings};
use crate::stack::Stack;

/// Runs the whole bench; `Ok(false)` when `--check` found a problem.
pub async fn run(args: Args) -> anyhow::Result<bool> {
    let plan = Plan::new(&args);
    let progress = Progress::for_stderr();
    let mut stack = Stack::prepare(&args)?;
    let measured = {
        let work = async {
            let phase = progress.phase("starting the stack (every language warmed)", None);
            stack.start().await?;
            phase.finish(&format!("prefix {}", stack.settings.prefix));
            phases::measure(&stack, &args, &plan, &progress).await
        };
        tokio::select! {
            measured = work => measured,
            signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
        }
    };
    let machine = Machine::describe(&stack.docker).await;
    let phase = progress.phase("stopping the stack", None);
    // The logs explain a failed run: they are kept whenever one failed.
    let failed = measured
        .as_ref()
        .map_or(true, |measured| !failures(measured).is_empty());
    let removed = stack.stop(failed || args.keep_logs).await;
    phase.finish(if removed {
        "stopped, its containers, streams and keys removed"
    } else {
        "stopped; some of its containers, streams or keys were left (above)"
    });
    let measured = measured?;

    let figures = figures::figures(&measured, machine.cores);
    let busy = report::notes(&figures, machine.cores);
    let machine_busy = !busy.is_empty();
    let notes: Vec<String> = busy
        .into_iter()
        .chain(report::unsteady_note(&figures))
        .collect();
    let executor_env: Vec<String> = args
        .executor_env
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let report = Report {
        targets: targets::targets(&figures, machine_busy),
        notes,
        figures,
        failures: failures(&measured),
        settings: Settings {
            mode: capacity::mode_name(
                args.mode_name.as_deref(),
                &capacity::executor_settings(args.slots, &executor_env),
            ),
            slots: args.slots,
            quick: args.quick,
            executor_env,
            command: command_line(),
        },
        machine,
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    let problems = report.problems();
    if let Some(path) = args.capacity.as_ref().filter(|_| problems.is_empty()) {
        let model = CostModel {
            instance_vcpus: args.instance_vcpus,
            hourly_price: args.hourly_price,
        };
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(path, capacity::merged(&existing, &report, model))
            .with_context(|| format!("failed to write {}", path.display()))?;
        eprintln!("capacity report written to {}", path.display());
    }
    if args.capacity.is_some() && !problems.is_empty() {
        eprintln!("the capacity report was not written: a figure is missing or a run failed");
    }
    if !args.check {
        return Ok(true);
    }
    for problem in &problems {
        eprintln!("check: {problem}");
    }
    Ok(problems.is_empty())
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM and names it, so the stack is stopped either way.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// The first failure of every phase that had one.
fn failures(measured: &Measurements) -> Vec<(String, String)> {
    let mut phases = vec![
        ("B0 python".to_owned(), &measured.host_python),
        ("B0 C".to_owned(), &measured.host_c),
        ("B1".to_owned(), &measured.container_sequential),
        ("B2".to_owned(), &measured.container_churn),
        ("python sequential".to_owned(), &measured.python),
        ("C sequential".to_owned(), &measured.c),
        ("Java sequential".to_owned(), &measured.java),
        (
            "open loop, evenly spaced".to_owned(),
            &measured.open_loop_even,
        ),
        ("open loop, Poisson".to_owned(), &measured.open_loop_poisson),
        ("CPU phase".to_owned(), &measured.cost.runs),
        ("CPU-bound python".to_owned(), &measured.cpu_bound),
    ];
    for step in &measured.search.steps {
        phases.push((format!("throughput c={}", step.concurrency), &step.tally));
    }
    if let Some(again) = &measured.search.confirmation {
        let phase = format!("throughput c={} again", again.concurrency);
        phases.push((phase, &again.tally));
    }
    for (language, tally) in &measured.languages {
        phases.push((format!("capacity {language}"), tally));
    }
    phases
        .into_iter()
        .filter_map(|(phase, tally)| {
            let first = tally.failures.first().cloned();
            let lost = (tally.lost > 0).then(|| format!("{} runs lost", tally.lost));
            Some((phase, first.or(lost)?))
        })
        .collect()
}

/// How the bench was invoked, without the agent's path (which says nothing of the figures).
fn command_line() -> String {
    let mut words = vec!["coderun-bench".to_owned()];
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        if argument == "--agent" {
            arguments.next();
        } else if !argument.starts_with("--agent=") {
            words.push(argument);
        }
    }
    words.join(" ")
}
