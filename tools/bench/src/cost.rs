//! What one run costs the machine: CPU (the whole machine's and each process group's), NATS
//! messages and Redis commands, measured over a closed loop at the saturating concurrency,
//! less the bench's own CPU and less the background: the mean rate of two idle windows, one
//! just before the load and one after it has settled (other work runs on this machine and on
//! its NATS and Redis; two windows halve the error of a background that drifts).

use std::collections::BTreeMap;

use crate::args::Plan;
use crate::cpu::{self, CpuWindow};
use crate::infra::{CounterReader, CountersDelta};
use crate::load::{self, Operation, Tally};
use crate::progress::Progress;

/// A window of time and what the servers counted during it.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub cpu: CpuWindow,
    pub counters: CountersDelta,
}

impl Window {
    fn seconds(&self) -> f64 {
        self.cpu.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The machine's busy CPU less the bench's own, per second, in ms.
    pub fn busy_ms_per_second(&self) -> f64 {
        self.cpu.machine_less_own_ms() / self.seconds()
    }
}

/// The CPU phase's readings.
#[derive(Debug, Clone, Default)]
pub struct CostPhase {
    pub runs: Tally,
    pub concurrency: usize,
    pub idle_before: Window,
    pub loaded: Window,
    pub idle_after: Window,
}

async fn window<F: std::future::Future>(
    services: &[(String, u32)],
    reader: &CounterReader,
    work: F,
) -> (F::Output, Window) {
    let start = reader.read().await;
    let (output, cpu) = cpu::measure(services, work).await;
    let end = reader.read().await;
    let counters = start.until(&end);
    (output, Window { cpu, counters })
}

/// A pause (`settle`) so the work before it has ended, an idle window of `idle`, `operation`
/// in a closed loop of `concurrency` clients for `duration` followed by `settle` again (the
/// loaded window includes the cleanup its runs leave: teardowns, removals, refills), and
/// another idle window.
/// (`idle`, `duration` and `settle` are the plan's `idle_window`, `cpu_phase` and `settle`.)
pub async fn measure(
    services: &[(String, u32)],
    operation: &Operation,
    concurrency: usize,
    plan: &Plan,
    reader: &CounterReader,
    progress: &Progress,
) -> CostPhase {
    let (idle, duration, settle) = (plan.idle_window, plan.cpu_phase, plan.settle);
    let idle_window = || window(services, reader, tokio::time::sleep(idle));
    let phase = progress.phase("CPU per run: idle window before", None);
    tokio::time::sleep(settle).await;
    let ((), idle_before) = idle_window().await;
    phase.finish(&format!(
        "busy {:.0} ms/s",
        idle_before.busy_ms_per_second()
    ));
    let name = format!("CPU per run: python hello at c={concurrency}");
    let phase = progress.phase(&name, None);
    let load = async {
        let runs = load::closed_loop(operation, concurrency, duration, &phase).await;
        tokio::time::sleep(settle).await;
        runs
    };
    let (runs, loaded) = window(services, reader, load).await;
    phase.finish(&format!("{} runs", runs.succeeded()));
    let phase = progress.phase("CPU per run: idle window after", None);
    let ((), idle_after) = idle_window().await;
    phase.finish(&format!("busy {:.0} ms/s", idle_after.busy_ms_per_second()));
    CostPhase {
        runs,
        concurrency,
        idle_before,
        loaded,
        idle_after,
    }
}

impl CostPhase {
    /// The background over the loaded window: the idle windows' mean rate of `amount`
    /// times the loaded window's length.
    fn background(&self, amount: impl Fn(&Window) -> f64) -> f64 {
        let rate = |window: &Window| amount(window) / window.seconds();
        (rate(&self.idle_before) + rate(&self.idle_after)) / 2.0 * self.loaded.seconds()
    }

    fn per_run(&self, total: f64) -> Option<f64> {
        let runs = self.runs.succeeded();
        (runs > 0).then(|| total / runs as f64)
    }

    /// The machine's busy CPU per run, less the bench's own and the background, in ms.
    pub fn machine_per_run_ms(&self) -> Option<f64> {
        let busy = |window: &Window| window.cpu.machine_less_own_ms();
        self.per_run(busy(&self.loaded) - self.background(busy))
    }

    /// The CPU the runs' programs reported (compile and run), per run, in ms.
    pub fn program_per_run_ms(&self) -> Option<f64> {
        self.runs.program_cpu_per_run_ms()
    }

    /// Everything that is not the program: the machine per run less the program per run.
    pub fn overhead_per_run_ms(&self) -> Option<f64> {
        Some(self.machine_per_run_ms()? - self.program_per_run_ms()?)
    }

    /// Each process group's CPU per run, less its background, in ms.
    pub fn groups_per_run_ms(&self) -> BTreeMap<String, f64> {
        self.loaded
            .cpu
            .groups
            .iter()
            .filter_map(|(group, loaded)| {
                let background =
                    self.background(|window| window.cpu.groups.get(group).copied().unwrap_or(0.0));
                Some((group.clone(), self.per_run(loaded - background)?))
            })
            .collect()
    }

    /// NATS messages in and out and Redis commands per run, less the background.
    pub fn counters_per_run(&self) -> CountersDelta {
        let rate = |window: &Window| window.counters.map(|total| total / window.seconds());
        let background = rate(&self.idle_before)
            .with(&rate(&self.idle_after), |before, after| {
                (before + after) / 2.0
            })
            .map(|rate| rate * self.loaded.seconds());
        let runs = self.runs.succeeded() as f64;
        self.loaded
            .counters
            .with(&background, |loaded, background| loaded - background)
            .map(|net| if runs > 0.0 { net / runs } else { f64::NAN })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn window(seconds: u64, machine_ms: f64, own_ms: f64, dockerd_ms: f64, redis: f64) -> Window {
        Window {
            cpu: CpuWindow {
                elapsed: Duration::from_secs(seconds),
                machine_ms,
                own_ms,
                groups: [("dockerd".to_owned(), dockerd_ms)].into(),
            },
            counters: CountersDelta {
                redis_commands: Some(redis),
                ..Default::default()
            },
        }
    }

    #[test]
    fn per_run_cost_is_the_load_less_the_bench_and_the_mean_idle_rate() {
        let mut runs = Tally::default();
        for _ in 0..10 {
            let ran = load::Outcome::Succeeded {
                program_cpu_ms: 20,
                queue_ms: None,
            };
            runs.record(Duration::from_millis(50), ran);
        }
        let phase = CostPhase {
            runs,
            concurrency: 4,
            // Idle: 100 then 300 ms/s busy (the bench's own taken off), a mean of 200.
            idle_before: window(1, 110.0, 10.0, 5.0, 10.0),
            loaded: window(2, 1500.0, 100.0, 210.0, 120.0),
            idle_after: window(1, 310.0, 10.0, 5.0, 30.0),
        };
        // (1500 − 100) − 200 × 2 = 1000 ms over 10 runs.
        assert_eq!(phase.machine_per_run_ms(), Some(100.0));
        assert_eq!(phase.program_per_run_ms(), Some(20.0));
        assert_eq!(phase.overhead_per_run_ms(), Some(80.0));
        assert_eq!(phase.groups_per_run_ms()["dockerd"], 20.0);
        // 120 − 20 × 2 = 80 commands over 10 runs.
        assert_eq!(phase.counters_per_run().redis_commands, Some(8.0));
    }
}
