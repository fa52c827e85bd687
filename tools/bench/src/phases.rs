//! The bench's phases, in order, against one running stack: idle memory, the baselines (B0
//! of C as a host process, B1 and B2 container per run), coderun's sequential latencies (the
//! python ones alternating with B0 of python), the
//! throughput search, the open loop at 70 % of saturation, the CPU phase, each language's
//! capacity and the CPU-bound program, and memory again at the end.

use std::sync::Arc;

use anyhow::Context as _;
use coderun_schema::catalog::{Catalog, LanguageSpec};

use crate::api_runs::{CheckedRun, CPU_BOUND_PYTHON, CPU_BOUND_STDOUT};
use crate::args::{Args, Plan};
use crate::baseline::HostProgram;
use crate::churn::ContainerCycle;
use crate::cost::{self, CostPhase};
use crate::cpu::resident_mib;
use crate::infra::CounterReader;
use crate::load::{self, Arrivals, Operation, Tally};
use crate::progress::Progress;
use crate::saturation::{self, Search};
use crate::stack::Stack;

/// Share of the saturation throughput the open loop offers.
pub const OPEN_LOOP_SHARE: f64 = 0.7;

/// Everything the phases measured.
#[derive(Debug, Clone, Default)]
pub struct Measurements {
    /// Each service's resident memory in MiB, idle before the load and at the end.
    pub memory_idle: Vec<(String, Option<f64>)>,
    pub memory_end: Vec<(String, Option<f64>)>,
    pub host_python: Tally,
    pub host_c: Tally,
    pub container_sequential: Tally,
    pub container_churn: Tally,
    pub churn_concurrency: usize,
    pub python: Tally,
    pub c: Tally,
    pub java: Tally,
    pub search: Search,
    /// Runs per second offered by the open loops.
    pub open_loop_rate: f64,
    /// The open loop with evenly spaced arrivals, then with Poisson arrivals.
    pub open_loop_even: Tally,
    pub open_loop_poisson: Tally,
    pub cost: CostPhase,
    /// Each served language's hello world at the saturating concurrency.
    pub languages: Vec<(String, Tally)>,
    pub cpu_bound: Tally,
}

fn language_spec<'a>(catalog: &'a Catalog, id: &str) -> anyhow::Result<&'a LanguageSpec> {
    catalog
        .find(id)
        .with_context(|| format!("the catalog has no {id}"))
}

fn memory(services: &[(String, u32)]) -> Vec<(String, Option<f64>)> {
    services
        .iter()
        .map(|(name, pid)| (name.clone(), resident_mib(*pid)))
        .collect()
}

/// A sequential phase of `count` attempts after `warm_up` untimed ones.
async fn sequential(
    progress: &Progress,
    name: &str,
    operation: &Operation,
    warm_up: usize,
    count: usize,
) -> Tally {
    let _ = load::sequential(operation, warm_up, &crate::progress::Phase::silent()).await;
    let phase = progress.phase(name, Some(count as u64));
    let tally = load::sequential(operation, count, &phase).await;
    phase.finish(&summary(&tally));
    tally
}

async fn closed(
    progress: &Progress,
    name: &str,
    operation: &Operation,
    clients: usize,
    duration: std::time::Duration,
) -> Tally {
    let phase = progress.phase(&format!("{name} at c={clients}"), None);
    let tally = load::closed_loop(operation, clients, duration, &phase).await;
    phase.finish(&summary(&tally));
    tally
}

fn summary(tally: &Tally) -> String {
    let latency = tally
        .percentiles()
        .map(|p| format!(", p50 {:.1} ms, p99 {:.1} ms", p.p50_ms, p.p99_ms))
        .unwrap_or_default();
    format!(
        "{} ok, {} failed, {} lost, {:.1} runs/s{latency}",
        tally.succeeded(),
        tally.failed,
        tally.lost,
        tally.throughput().unwrap_or(0.0)
    )
}

/// What every phase needs.
struct Bench<'a> {
    stack: &'a Stack,
    args: &'a Args,
    plan: &'a Plan,
    progress: &'a Progress,
    catalog: Catalog,
    client: coderun_client::Client,
}

/// Runs every phase against `stack`.
pub async fn measure(
    stack: &Stack,
    args: &Args,
    plan: &Plan,
    progress: &Progress,
) -> anyhow::Result<Measurements> {
    let bench = Bench {
        stack,
        args,
        plan,
        progress,
        catalog: Catalog::builtin(),
        client: stack.client()?,
    };
    let services = stack.pids();
    let reader = CounterReader::connect(&args.nats_monitor, &args.redis_url).await?;
    if !reader.nats_monitored().await {
        progress.note(&format!(
            "NATS monitoring does not answer at {}: messages per run will be missing",
            args.nats_monitor
        ));
    }
    let mut measured = Measurements::default();
    let phase = progress.phase("idle stack, before any load", None);
    tokio::time::sleep(plan.settle).await;
    measured.memory_idle = memory(&services);
    phase.finish("resident memory read");

    let tuning = args.open_loop_at;
    if tuning.is_none() {
        bench.baselines(&mut measured).await?;
        // The churn leaves work behind (containers removed, their namespaces torn down by
        // the kernel): the sequential latencies are an idle stack's.
        let phase = progress.phase("settling after the container churn", None);
        tokio::time::sleep(plan.settle).await;
        phase.finish("settled");
    }
    bench.latencies(&mut measured).await?;
    let python_hello = bench.hello("python")?;
    let saturating = match tuning {
        Some(rate) => {
            measured.open_loop_rate = rate;
            None
        }
        None => {
            measured.search = saturation::search(
                &python_hello,
                "python hello",
                &plan.levels,
                plan.step,
                progress,
            )
            .await;
            let (saturating, throughput) = measured.search.saturation().unwrap_or((1, 0.0));
            progress.note(&format!(
                "saturation: {throughput:.1} runs/s at c={saturating}"
            ));
            measured.open_loop_rate = throughput * OPEN_LOOP_SHARE;
            Some(saturating)
        }
    };
    let rate = measured.open_loop_rate;
    for (arrivals, spacing) in [
        (Arrivals::Even, "evenly spaced"),
        (Arrivals::Poisson, "Poisson"),
    ] {
        let phase = progress.phase(&format!("open loop at {rate:.1} runs/s, {spacing}"), None);
        let tally = load::open_loop(&python_hello, rate, arrivals, plan.open_loop, &phase).await;
        phase.finish(&summary(&tally));
        match arrivals {
            Arrivals::Even => measured.open_loop_even = tally,
            Arrivals::Poisson => measured.open_loop_poisson = tally,
        }
    }
    if let Some(saturating) = saturating {
        measured.cost = cost::measure(
            &services,
            &python_hello,
            saturating,
            plan,
            &reader,
            progress,
        )
        .await;
        bench.capacity(&mut measured, saturating).await?;
    }
    measured.memory_end = memory(&services);
    Ok(measured)
}

impl Bench<'_> {
    /// The hello world of `language` through the API, checked.
    fn hello(&self, language: &str) -> anyhow::Result<Operation> {
        let spec = language_spec(&self.catalog, language)?;
        Ok(CheckedRun::hello(&self.client, spec, self.plan.lost_after).operation())
    }

    /// B0 of C (a host process), B1 and B2 (one container per run). B0 of python is measured
    /// with coderun's sequential python runs, alternating with them.
    async fn baselines(&self, measured: &mut Measurements) -> anyhow::Result<()> {
        let (plan, progress) = (self.plan, self.progress);
        let runs = Some(plan.host_runs as u64);
        let c = HostProgram::c(language_spec(&self.catalog, "c")?, &self.stack.dir)?;
        let phase = progress.phase("B0: C hello, host process", runs);
        measured.host_c = c.run_sequentially(plan.host_runs, &phase).await;
        phase.finish(&summary(&measured.host_c));

        let settings = &self.stack.settings;
        let cycle =
            ContainerCycle::python(self.stack.docker.clone(), &settings.prefix, &settings.agent)?;
        let cycle = Arc::new(cycle).operation();
        let name = "B1: container per run, sequential";
        measured.container_sequential =
            sequential(progress, name, &cycle, 1, plan.container_runs).await;
        measured.churn_concurrency = self.args.slots as usize;
        let clients = measured.churn_concurrency;
        measured.container_churn =
            closed(progress, "B2: container churn", &cycle, clients, plan.churn).await;
        Ok(())
    }

    /// coderun's sequential latencies on an idle stack: python (alternating with B0, the
    /// same program as a host process), C and Java hello worlds.
    async fn latencies(&self, measured: &mut Measurements) -> anyhow::Result<()> {
        let (plan, progress) = (self.plan, self.progress);
        let count = plan.sequential_python;
        let name = "B0 and coderun: python hello, alternating";
        let phase = progress.phase(name, Some(count as u64));
        let host = HostProgram::python(language_spec(&self.catalog, "python")?);
        let python = self.hello("python")?;
        (measured.host_python, measured.python) =
            host.alternate_with(&python, 2, count, &phase).await;
        phase.finish(&format!(
            "host: {}; coderun: {}",
            summary(&measured.host_python),
            summary(&measured.python)
        ));
        let name = "coderun: C hello, sequential";
        measured.c = sequential(progress, name, &self.hello("c")?, 1, plan.sequential_c).await;
        let name = "coderun: Java hello, sequential";
        let java = self.hello("java")?;
        measured.java = sequential(progress, name, &java, 1, plan.sequential_java).await;
        Ok(())
    }

    /// Every served language's hello world, and the CPU-bound program, at `clients`.
    async fn capacity(&self, measured: &mut Measurements, clients: usize) -> anyhow::Result<()> {
        let (plan, progress) = (self.plan, self.progress);
        for served in self.client.languages().await?.languages {
            let name = format!("capacity: {} hello", served.id);
            let hello = self.hello(&served.id)?;
            let tally = closed(progress, &name, &hello, clients, plan.per_language).await;
            measured.languages.push((served.id, tally));
        }
        let cpu_bound = CheckedRun::new(
            &self.client,
            "python",
            CPU_BOUND_PYTHON,
            CPU_BOUND_STDOUT,
            plan.lost_after,
        )
        .operation();
        let name = "capacity: CPU-bound python";
        measured.cpu_bound = closed(progress, name, &cpu_bound, clients, plan.per_language).await;
        Ok(())
    }
}
