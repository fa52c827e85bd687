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

use crate::checks::Check;
use crate::inspect::{self, Holdings};
use crate::windows::{summarize, Recorder};

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

    /// What the stack holds, and each service's memory from the same scrape.
    async fn holdings(&self) -> (Holdings, BTreeMap<String, Option<u64>>) {
        let scrape = inspect::scrape(&self.http, &self.metrics).await;
        let docker = self.docker.as_ref();
        let held = scrape.containers_held;
        let holdings =
            inspect::holdings(self.redis_url.as_deref(), docker, &self.prefix, held).await;
        (holdings, scrape.memory)
    }

    /// The holdings once no run is counted in flight, every container is one an executor
    /// holds, and no more keys lack an expiry than in `baseline` (or [`IDLE_WITHIN`] has
    /// passed): a container being removed or a warm one being made is gone or held a moment
    /// later, and a key written in two steps has its expiry a moment later; a leak stays.
    /// Each service's memory is read with the last look.
    pub async fn idle_holdings(
        &self,
        baseline: Option<&Holdings>,
    ) -> (Holdings, BTreeMap<String, Option<u64>>) {
        let deadline = tokio::time::Instant::now() + IDLE_WITHIN;
        let keys_before = baseline.and_then(|baseline| baseline.keys_without_expiry);
        loop {
            let (holdings, memory) = self.holdings().await;
            let runs_idle = holdings.runs_in_flight.is_none_or(|count| count == 0);
            let none_left = holdings
                .containers_left_over()
                .is_none_or(|count| count == 0);
            let keys_back = match (keys_before, holdings.keys_without_expiry) {
                (Some(before), Some(now)) => now <= before,
                _ => true,
            };
            if (runs_idle && none_left && keys_back) || tokio::time::Instant::now() >= deadline {
                return (holdings, memory);
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

/// What the soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct SoakFigures {
    pub rate: f64,
    pub windows: Vec<Window>,
    pub memory_before: BTreeMap<String, Option<u64>>,
    pub memory_after: BTreeMap<String, Option<u64>>,
    pub before: Holdings,
    pub after: Holdings,
    /// What the soak was told to watch: a source asked for that gave nothing fails its check.
    pub watched: Watched,
    pub checks: Vec<Check>,
}

/// The sources a soak was given.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Watched {
    pub redis: bool,
    pub docker: bool,
}

/// One open loop at `rate` for `windows` windows of `window`, never paused between them;
/// each service's memory read at the end of every window. Returns the loop's tally and the
/// figures (checked later, once the runs are settled, by [`crate::checks::checks`]).
pub async fn soak(
    operation: &Operation,
    rate: f64,
    window: Duration,
    windows: usize,
    watch: &Watch,
    progress: &Progress,
) -> (Tally, SoakFigures) {
    let (before, memory_before) = watch.idle_holdings(None).await;
    let recorder = Recorder::default();
    let origin = tokio::time::Instant::now();
    let recorded = recorder.wrap(operation, origin);
    let duration = window.saturating_mul(windows as u32);
    let expected = (rate * duration.as_secs_f64()).round() as u64;
    let phase = progress.phase(
        &format!("soak at {rate:.1} runs/s, {windows} windows of {window:?}"),
        Some(expected.max(1)),
    );
    let memory_readings = async {
        let mut readings = Vec::new();
        for number in 1..=windows {
            tokio::time::sleep_until(origin + window.saturating_mul(number as u32)).await;
            readings.push(watch.memory().await);
            // The window's runs may still be in flight: this line is a first look.
            let so_far = summarize(&recorder.samples(), window, number);
            progress.note(&format!(
                "window {number}/{windows}: {:.1} runs/s ended as expected so far, p50 {:.1} ms, p99 {:.1} ms, {} failed",
                so_far.throughput.unwrap_or(0.0),
                so_far.latency.map_or(0.0, |l| l.p50_ms),
                so_far.latency.map_or(0.0, |l| l.p99_ms),
                so_far.failed
            ));
        }
        readings
    };
    let (tally, readings) = tokio::join!(
        load::open_loop(&recorded, rate, Arrivals::Poisson, duration, &phase),
        memory_readings
    );
    phase.finish(&format!(
        "{} as expected, {} not, {} lost",
        tally.succeeded(),
        tally.failed,
        tally.lost
    ));
    let samples = recorder.samples();
    let figures = readings
        .into_iter()
        .enumerate()
        .map(|(index, memory)| {
            let summary = summarize(&samples, window, index + 1);
            Window {
                number: index + 1,
                throughput: summary.throughput,
                latency: summary.latency,
                failed: summary.failed,
                lost: summary.lost,
                memory,
            }
        })
        .collect();
    let (after, memory_after) = watch.idle_holdings(Some(&before)).await;
    let figures = SoakFigures {
        rate,
        windows: figures,
        memory_before,
        memory_after,
        before,
        after,
        watched: Watched {
            redis: watch.redis_url.is_some(),
            docker: watch.docker.is_some(),
        },
        checks: Vec::new(),
    };
    (tally, figures)
}
