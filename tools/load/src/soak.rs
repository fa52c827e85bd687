//! The soak: an open loop held for a long time in windows, each window's latency and each
//! service's resident memory read at its end; before and after, once the stack is idle, what
//! it holds (keys that never expire, runs counted in flight, containers). Then the checks: the
//! memory stays flat, the latency does not drift, nothing is left over.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use coderun_bench::load::{self, Arrivals, Operation, Tally};
use coderun_bench::progress::Progress;
use coderun_bench::stats::Percentiles;
use serde::Serialize;

use crate::inspect::{self, Holdings};

/// A service's memory may grow by this share of its first window's reading, plus
/// [`MEMORY_SLACK_BYTES`], over the soak: more is a leak.
pub const MEMORY_GROWTH_ALLOWED: f64 = 0.20;
pub const MEMORY_SLACK_BYTES: u64 = 2 * 1024 * 1024;
/// The last third of the windows' median p50 may be at most this many times the first
/// third's: more is a drift.
pub const LATENCY_DRIFT_ALLOWED: f64 = 1.5;
/// How long the stack is given to become idle before the holdings are read.
const IDLE_WITHIN: Duration = Duration::from_secs(90);

/// Where the soak looks besides the API.
pub struct Watch {
    pub http: reqwest::Client,
    pub metrics: Vec<(String, String)>,
    pub redis_url: Option<String>,
    pub docker: Option<Docker>,
    pub prefix: String,
}

impl Watch {
    async fn memory(&self) -> BTreeMap<String, Option<u64>> {
        inspect::scrape(&self.http, &self.metrics).await.memory
    }

    async fn holdings(&self) -> Holdings {
        let held = inspect::scrape(&self.http, &self.metrics)
            .await
            .containers_held;
        let docker = self.docker.as_ref();
        inspect::holdings(self.redis_url.as_deref(), docker, &self.prefix, held).await
    }

    /// The holdings once no run is counted in flight and every container is one an
    /// executor holds (or [`IDLE_WITHIN`] has passed: a container being removed or a warm
    /// one being made is gone or held a moment later).
    pub async fn idle_holdings(&self) -> Holdings {
        let deadline = tokio::time::Instant::now() + IDLE_WITHIN;
        loop {
            let holdings = self.holdings().await;
            let runs_idle = holdings.runs_in_flight.is_none_or(|count| count == 0);
            let none_left = holdings
                .containers_left_over()
                .is_none_or(|count| count == 0);
            if (runs_idle && none_left) || tokio::time::Instant::now() >= deadline {
                return holdings;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// One window of the soak.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub number: usize,
    pub throughput: Option<f64>,
    pub latency: Option<Percentiles>,
    pub failed: usize,
    pub lost: usize,
    /// Each service's resident memory at the window's end, in bytes.
    pub memory: BTreeMap<String, Option<u64>>,
}

/// One of the soak's checks.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// What the soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct SoakFigures {
    pub rate: f64,
    pub windows: Vec<Window>,
    pub memory_before: BTreeMap<String, Option<u64>>,
    pub memory_after: BTreeMap<String, Option<u64>>,
    pub before: Holdings,
    pub after: Holdings,
    pub checks: Vec<Check>,
}

/// Runs `windows` windows of `window` at `rate`; returns every window's tally merged, and the
/// figures (checked later, once the runs are settled, by [`checks`]).
pub async fn soak(
    operation: &Operation,
    rate: f64,
    window: Duration,
    windows: usize,
    watch: &Watch,
    progress: &Progress,
) -> (Tally, SoakFigures) {
    let before = watch.idle_holdings().await;
    let memory_before = watch.memory().await;
    let mut total = Tally::default();
    let mut figures = Vec::new();
    for number in 1..=windows {
        let phase = progress.phase(
            &format!("soak window {number}/{windows} at {rate:.1} runs/s"),
            None,
        );
        let tally = load::open_loop(operation, rate, Arrivals::Poisson, window, &phase).await;
        let latency = tally.percentiles();
        phase.finish(&format!(
            "{:.1} runs/s, p50 {:.1} ms, p99 {:.1} ms, {} failed, {} lost",
            tally.throughput().unwrap_or(0.0),
            latency.map_or(0.0, |l| l.p50_ms),
            latency.map_or(0.0, |l| l.p99_ms),
            tally.failed,
            tally.lost
        ));
        figures.push(Window {
            number,
            throughput: tally.throughput(),
            latency,
            failed: tally.failed,
            lost: tally.lost,
            memory: watch.memory().await,
        });
        total.latencies.extend(tally.latencies);
        total.queue_times.extend(tally.queue_times);
        total.failed += tally.failed;
        total.lost += tally.lost;
        total.program_cpu_ms += tally.program_cpu_ms;
        total.elapsed += tally.elapsed;
        let room = 5usize.saturating_sub(total.failures.len());
        total.failures.extend(tally.failures.into_iter().take(room));
    }
    let after = watch.idle_holdings().await;
    let memory_after = watch.memory().await;
    let figures = SoakFigures {
        rate,
        windows: figures,
        memory_before,
        memory_after,
        before,
        after,
        checks: Vec::new(),
    };
    (total, figures)
}

/// The checks of a soak's figures.
pub fn checks(figures: &SoakFigures) -> Vec<Check> {
    let mut checks = Vec::new();
    let (first, last) = (figures.windows.first(), figures.windows.last());
    if let (Some(first), Some(last)) = (first, last) {
        for (service, start) in &first.memory {
            let end = last.memory.get(service).copied().flatten();
            let (passed, detail) = match (start, end) {
                (Some(start), Some(end)) => {
                    let allowed =
                        (*start as f64 * (1.0 + MEMORY_GROWTH_ALLOWED)) as u64 + MEMORY_SLACK_BYTES;
                    (
                        end <= allowed,
                        format!(
                            "{:.1} MiB after the first window, {:.1} MiB after the last (at most {:.1})",
                            mib(*start),
                            mib(end),
                            mib(allowed)
                        ),
                    )
                }
                _ => (false, "its metrics gave no resident memory".to_owned()),
            };
            checks.push(Check {
                name: format!("memory of {service} stays flat"),
                passed,
                detail,
            });
        }
    }
    if let Some(check) = drift(&figures.windows) {
        checks.push(check);
    }
    let (before, after) = (figures.before, figures.after);
    if let (Some(before), Some(after)) = (before.keys_without_expiry, after.keys_without_expiry) {
        checks.push(Check {
            name: "no Redis key left without an expiry".to_owned(),
            passed: after <= before,
            detail: format!("{before} before, {after} after"),
        });
    }
    if let Some(in_flight) = after.runs_in_flight {
        checks.push(Check {
            name: "no run left counted in flight".to_owned(),
            passed: in_flight == 0,
            detail: format!("{in_flight} once idle"),
        });
    }
    if let Some(left_over) = after.containers_left_over() {
        checks.push(Check {
            name: "no container left over".to_owned(),
            passed: left_over == 0,
            detail: format!(
                "{left_over} once idle: {} containers, {} held by the executors for later runs ({} and {} before)",
                after.containers.unwrap_or(0),
                after.containers_held.unwrap_or(0),
                before.containers.unwrap_or(0),
                before.containers_held.unwrap_or(0)
            ),
        });
    }
    checks
}

/// The latency drift check: the last third of the windows against the first third.
fn drift(windows: &[Window]) -> Option<Check> {
    let p50s: Vec<f64> = windows
        .iter()
        .filter_map(|window| window.latency.map(|latency| latency.p50_ms))
        .collect();
    let third = (p50s.len() / 3).max(1);
    if p50s.len() < 2 {
        return None;
    }
    let (early, late) = (median(&p50s[..third]), median(&p50s[p50s.len() - third..]));
    Some(Check {
        name: "latency does not drift".to_owned(),
        passed: late <= early * LATENCY_DRIFT_ALLOWED,
        detail: format!(
            "median p50 {early:.1} ms in the first third of the windows, {late:.1} ms in the last (at most {:.1})",
            early * LATENCY_DRIFT_ALLOWED
        ),
    })
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(number: usize, p50_ms: f64, gateway_mib: u64) -> Window {
        Window {
            number,
            throughput: Some(10.0),
            latency: Some(Percentiles {
                count: 100,
                p50_ms,
                p95_ms: p50_ms * 2.0,
                p99_ms: p50_ms * 3.0,
            }),
            failed: 0,
            lost: 0,
            memory: BTreeMap::from([("gateway".to_owned(), Some(gateway_mib << 20))]),
        }
    }

    fn figures(windows: Vec<Window>, after: Holdings) -> SoakFigures {
        SoakFigures {
            rate: 10.0,
            windows,
            memory_before: BTreeMap::new(),
            memory_after: BTreeMap::new(),
            before: Holdings {
                keys_without_expiry: Some(3),
                runs_in_flight: Some(0),
                containers: Some(34),
                containers_held: Some(34),
            },
            after,
            checks: Vec::new(),
        }
    }

    fn passed(checks: &[Check]) -> Vec<(String, bool)> {
        checks
            .iter()
            .map(|check| (check.name.clone(), check.passed))
            .collect()
    }

    #[test]
    fn a_steady_soak_passes_every_check() {
        let windows = (1..=6).map(|n| window(n, 30.0 + n as f64, 20)).collect();
        let after = Holdings {
            keys_without_expiry: Some(3),
            runs_in_flight: Some(0),
            containers: Some(36),
            containers_held: Some(36),
        };
        let checks = checks(&figures(windows, after));
        assert_eq!(checks.len(), 5);
        assert!(checks.iter().all(|check| check.passed), "{checks:?}");
    }

    #[test]
    fn growth_drift_and_leftovers_each_fail_their_check() {
        let windows = vec![
            window(1, 30.0, 20),
            window(2, 31.0, 22),
            window(3, 60.0, 40),
        ];
        let after = Holdings {
            keys_without_expiry: Some(4),
            runs_in_flight: Some(1),
            containers: Some(37),
            containers_held: Some(36),
        };
        let checks = checks(&figures(windows, after));
        assert!(
            passed(&checks).iter().all(|(_, passed)| !passed),
            "{checks:?}"
        );
    }
}
