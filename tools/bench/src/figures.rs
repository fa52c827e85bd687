//! Every measurement of a bench as a figure, section by section.

use crate::figure::{Figures, Rule};
use crate::load::Tally;
use crate::phases::Measurements;

/// Every figure of `measured`; `cores` divides the capacities.
pub fn figures(measured: &Measurements, cores: usize) -> Figures {
    let mut figures = Figures::default();
    let section = "baselines";
    figures.latency(
        section,
        "b0.python",
        "B0 python3 -c hello, host process",
        &measured.host_python,
    );
    figures.latency(
        section,
        "b0.c",
        "B0 C hello, host process",
        &measured.host_c,
    );
    figures.latency(
        section,
        "b1.python",
        "B1 container per run (create..remove), sequential",
        &measured.container_sequential,
    );
    let churn = format!("B2 container churn at c={}", measured.churn_concurrency);
    figures.throughput(section, "b2.python", &churn, &measured.container_churn);

    let section = "coderun, sequential on an idle stack";
    figures.latency(section, "coderun.python", "python hello", &measured.python);
    figures.queueing(section, "coderun.python", "python hello", &measured.python);
    figures.latency(section, "coderun.c", "C hello (compile + run)", &measured.c);
    figures.latency(
        section,
        "coderun.java",
        "Java hello (compile + run)",
        &measured.java,
    );

    let section = "coderun, throughput (python hello, closed loop)";
    for step in &measured.search.steps {
        let label = format!("c={}", step.concurrency);
        figures.throughput(
            section,
            &format!("throughput.c{}", step.concurrency),
            &label,
            &step.tally,
        );
    }
    if let Some(again) = &measured.search.confirmation {
        let label = format!(
            "c={} again (the saturating level read twice)",
            again.concurrency
        );
        figures.throughput(section, "throughput.again", &label, &again.tally);
    }
    let best = measured.search.saturation();
    figures.push(
        section,
        "saturation.runs_per_s".into(),
        "saturation throughput (the lower reading)".into(),
        best.map(|(_, t)| t),
        "runs/s",
        Rule::Positive,
    );
    figures.push(
        section,
        "saturation.concurrency".into(),
        "saturating concurrency".into(),
        best.map(|(c, _)| c as f64),
        "clients",
        Rule::Positive,
    );

    let section = "coderun, open loop at 70 % of saturation (python hello)";
    figures.push(
        section,
        "open_loop.offered_runs_per_s".into(),
        "offered rate".into(),
        Some(measured.open_loop_rate),
        "runs/s",
        Rule::Positive,
    );
    let loops = [
        ("open_loop.even", "evenly spaced", &measured.open_loop_even),
        ("open_loop.poisson", "Poisson", &measured.open_loop_poisson),
    ];
    for (key, label, tally) in loops {
        figures.latency(section, key, label, tally);
        figures.queueing(section, key, label, tally);
    }

    cost_figures(&mut figures, measured);

    let section = "capacity (hello world at the saturating concurrency)";
    let per_core = |tally: &Tally| tally.throughput().map(|t| t / cores as f64);
    for (language, tally) in &measured.languages {
        let key = format!("capacity.{language}");
        figures.throughput(section, &key, language, tally);
        figures.push(
            section,
            format!("{key}.runs_per_s_per_core"),
            format!("{language} per core"),
            per_core(tally),
            "runs/s/core",
            Rule::Positive,
        );
    }
    let cpu_bound = &measured.cpu_bound;
    figures.throughput(section, "capacity.cpu_bound", "CPU-bound python", cpu_bound);
    figures.push(
        section,
        "capacity.cpu_bound.runs_per_s_per_core".into(),
        "CPU-bound python per core".into(),
        per_core(cpu_bound),
        "runs/s/core",
        Rule::Positive,
    );
    figures.push(
        section,
        "capacity.cpu_bound.program_cpu_ms".into(),
        "CPU-bound python: its own CPU per run".into(),
        cpu_bound.program_cpu_per_run_ms(),
        "ms",
        Rule::Positive,
    );

    let section = "resident memory (VmRSS)";
    for (moment, readings) in [
        ("idle", &measured.memory_idle),
        ("end", &measured.memory_end),
    ] {
        for (service, mib) in readings {
            figures.push(
                section,
                format!("memory.{moment}.{service}"),
                format!("{service}, {moment}"),
                *mib,
                "MiB",
                Rule::Positive,
            );
        }
    }
    figures
}

/// The process groups of the CPU breakdown, in the order they are printed.
pub const CPU_GROUPS: &[&str] = &[
    "gateway",
    "scheduler",
    "executor",
    "prober",
    "nats-server",
    "redis-server",
    "dockerd",
    "containerd",
    "containerd-shim",
];

fn cost_figures(figures: &mut Figures, measured: &Measurements) {
    let cost = &measured.cost;
    let section = format!(
        "cost per run (python hello, closed loop at c={})",
        cost.concurrency
    );
    let section = section.as_str();
    figures.throughput(section, "cost", "runs/s during the CPU phase", &cost.runs);
    for (moment, window) in [("before", &cost.idle_before), ("after", &cost.idle_after)] {
        figures.push(
            section,
            format!("cost.idle_{moment}.busy_ms_per_s"),
            format!("machine busy while idle, {moment} (subtracted)"),
            Some(window.busy_ms_per_second()),
            "ms/s",
            Rule::Finite,
        );
    }
    figures.push(
        section,
        "cost.machine_cpu_ms".into(),
        "machine CPU per run".into(),
        cost.machine_per_run_ms(),
        "ms",
        Rule::Finite,
    );
    figures.push(
        section,
        "cost.program_cpu_ms".into(),
        "program's own CPU per run".into(),
        cost.program_per_run_ms(),
        "ms",
        Rule::Positive,
    );
    figures.push(
        section,
        "cost.overhead_cpu_ms".into(),
        "overhead CPU per run (machine - program)".into(),
        cost.overhead_per_run_ms(),
        "ms",
        Rule::Finite,
    );
    let groups = cost.groups_per_run_ms();
    figures.push(
        section,
        "cost.listed_cpu_ms".into(),
        "  in these processes (a floor of the overhead)".into(),
        Some(groups.values().sum()),
        "ms",
        Rule::Finite,
    );
    for group in CPU_GROUPS {
        let label = format!("    {group}");
        figures.push(
            section,
            format!("cost.cpu.{group}_ms"),
            label,
            // Missing when no process of the group was seen (not 0: nothing was measured).
            groups.get(*group).copied(),
            "ms",
            Rule::Finite,
        );
    }
    let unattributed = cost
        .overhead_per_run_ms()
        .map(|overhead| overhead - groups.values().sum::<f64>());
    figures.push(
        section,
        "cost.cpu.unattributed_ms".into(),
        "  in the rest (runc, agents, kernel: machine-wide only)".into(),
        unattributed,
        "ms",
        Rule::Finite,
    );
    let counters = cost.counters_per_run();
    figures.push(
        section,
        "cost.nats_in_msgs".into(),
        "NATS messages in per run".into(),
        counters.nats_in,
        "msgs",
        Rule::Finite,
    );
    figures.push(
        section,
        "cost.nats_out_msgs".into(),
        "NATS messages out per run".into(),
        counters.nats_out,
        "msgs",
        Rule::Finite,
    );
    figures.push(
        section,
        "cost.redis_commands".into(),
        "Redis commands per run".into(),
        counters.redis_commands,
        "cmds",
        Rule::Finite,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_bench_fails_its_check() {
        let figures = figures(&Measurements::default(), 2);
        assert!(figures.0.iter().any(|figure| figure.problem().is_some()));
        assert_eq!(figures.get("b0.python.p50_ms"), None);
    }
}
