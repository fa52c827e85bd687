//! Driving an operation (one run through coderun, one container cycle) in the three shapes the
//! bench needs: one after another, a closed loop of a fixed number of clients for a duration,
//! and an open loop of arrivals at a fixed rate. Every attempt is tallied: its latency when it
//! succeeded, or a failure or a lost run.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::progress::Phase;
use crate::stats::{per_second, Percentiles};

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It did what it should; `program_cpu_ms` is the CPU the program itself reported using
    /// (compile and run), 0 where nothing reports it; `queue_ms` how long the run waited
    /// between being accepted and its sandbox starting, where the run says.
    Succeeded {
        program_cpu_ms: u64,
        queue_ms: Option<u64>,
    },
    /// It answered wrongly or failed; the reason.
    Failed(String),
    /// It was accepted but never finished in time.
    Lost,
}

/// One attempt of the operation under load, started afresh at every call.
pub type Operation = Arc<dyn Fn() -> BoxFuture<'static, Outcome> + Send + Sync>;

/// Failures kept for the report, at most.
const KEPT_FAILURES: usize = 5;

/// What the attempts of one phase gave.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Latencies of the attempts that succeeded.
    pub latencies: Vec<Duration>,
    /// Of those, the part spent waiting for a sandbox (where the run reported it): which part
    /// of a latency tail is queueing and which is the run itself.
    pub queue_times: Vec<Duration>,
    pub failed: usize,
    pub lost: usize,
    /// The program's own CPU summed over the successful attempts, in milliseconds.
    pub program_cpu_ms: u64,
    /// The first few failures' reasons.
    pub failures: Vec<String>,
    /// From the first start to the last end.
    pub elapsed: Duration,
    /// A closed loop's steady part: successes that ended within its duration.
    pub steady: Option<Steady>,
}

/// The successes of a closed loop that ended within its duration, before the attempts still
/// in flight drained (while fewer clients than its concurrency were left).
#[derive(Debug, Clone, Copy, Default)]
pub struct Steady {
    pub succeeded: usize,
    pub duration: Duration,
    pub clients: usize,
}

impl Tally {
    pub fn record(&mut self, latency: Duration, outcome: Outcome) {
        match outcome {
            Outcome::Succeeded {
                program_cpu_ms,
                queue_ms,
            } => {
                self.latencies.push(latency);
                self.queue_times.extend(queue_ms.map(Duration::from_millis));
                self.program_cpu_ms += program_cpu_ms;
            }
            Outcome::Failed(reason) => {
                self.failed += 1;
                if self.failures.len() < KEPT_FAILURES {
                    self.failures.push(reason);
                }
            }
            Outcome::Lost => self.lost += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.queue_times.extend(other.queue_times);
        self.failed += other.failed;
        self.lost += other.lost;
        self.program_cpu_ms += other.program_cpu_ms;
        let room = KEPT_FAILURES.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
    }

    pub fn succeeded(&self) -> usize {
        self.latencies.len()
    }

    /// Every attempt, whatever its end.
    pub fn attempts(&self) -> usize {
        self.succeeded() + self.failed + self.lost
    }

    /// Successful attempts per second: over a closed loop's steady part when every client
    /// finished at least two attempts in it, else over the whole phase, drain included (runs
    /// so long that the steady part saw few of them).
    pub fn throughput(&self) -> Option<f64> {
        match self.steady {
            Some(steady) if steady.succeeded >= 2 * steady.clients.max(1) => {
                per_second(steady.succeeded, steady.duration)
            }
            _ => per_second(self.succeeded(), self.elapsed),
        }
    }

    pub fn percentiles(&self) -> Option<Percentiles> {
        Percentiles::of(&self.latencies)
    }

    /// Percentiles of the time the successful runs waited for a sandbox.
    pub fn queue_percentiles(&self) -> Option<Percentiles> {
        Percentiles::of(&self.queue_times)
    }

    /// The program's own CPU per successful attempt, in milliseconds.
    pub fn program_cpu_per_run_ms(&self) -> Option<f64> {
        (self.succeeded() > 0).then(|| self.program_cpu_ms as f64 / self.succeeded() as f64)
    }
}

/// `count` attempts, one after another.
pub async fn sequential(operation: &Operation, count: usize, phase: &Phase) -> Tally {
    let mut tally = Tally::default();
    let started = Instant::now();
    for _ in 0..count {
        let attempt = Instant::now();
        let outcome = operation().await;
        tally.record(attempt.elapsed(), outcome);
        phase.tick();
    }
    tally.elapsed = started.elapsed();
    tally
}

/// `clients` clients, each starting its next attempt when its last one ends, until
/// `duration` has passed; attempts in flight then are awaited and counted.
pub async fn closed_loop(
    operation: &Operation,
    clients: usize,
    duration: Duration,
    phase: &Phase,
) -> Tally {
    let started = Instant::now();
    let deadline = started + duration;
    // A JoinSet: dropped (the bench interrupted), it stops its workers.
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients.max(1) {
        let (operation, phase) = (operation.clone(), phase.clone());
        workers.spawn(async move {
            let (mut tally, mut in_time) = (Tally::default(), 0);
            while Instant::now() < deadline {
                let attempt = Instant::now();
                let outcome = operation().await;
                if matches!(outcome, Outcome::Succeeded { .. }) && Instant::now() <= deadline {
                    in_time += 1;
                }
                tally.record(attempt.elapsed(), outcome);
                phase.tick();
            }
            (tally, in_time)
        });
    }
    let mut total = Tally::default();
    let mut steady = Steady {
        duration,
        clients: clients.max(1),
        ..Steady::default()
    };
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok((tally, in_time)) => {
                total.merge(tally);
                steady.succeeded += in_time;
            }
            Err(error) => total.record(Duration::ZERO, Outcome::Failed(error.to_string())),
        }
    }
    total.elapsed = started.elapsed();
    total.steady = Some(steady);
    total
}

/// How an open loop spaces its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// One every `1 / rate` seconds: a constant arrival rate, as wrk2, k6's
    /// `constant-arrival-rate` and vegeta's default pacer send.
    Even,
    /// A Poisson process: exponential gaps, as independent clients arrive.
    Poisson,
}

impl Arrivals {
    fn gap(self, rate: f64) -> Duration {
        match self {
            Self::Even => Duration::from_secs_f64(1.0 / rate),
            Self::Poisson => {
                // Inverse transform: -ln(U) / rate, U uniform in (0, 1].
                let uniform: f64 = 1.0 - rand::random::<f64>();
                Duration::from_secs_f64(-uniform.ln() / rate)
            }
        }
    }
}

/// Attempts arriving at `rate` per second, spaced as `arrivals` says, for `duration`,
/// whatever the earlier ones are doing; each latency runs from the moment the attempt was due,
/// so a late start counts.
pub async fn open_loop(
    operation: &Operation,
    rate: f64,
    arrivals: Arrivals,
    duration: Duration,
    phase: &Phase,
) -> Tally {
    let mut total = Tally::default();
    if !rate.is_finite() || rate <= 0.0 {
        return total;
    }
    let started = Instant::now();
    let mut attempts = tokio::task::JoinSet::new();
    let mut due = started;
    while due < started + duration {
        tokio::time::sleep_until(due).await;
        let (operation, phase) = (operation.clone(), phase.clone());
        attempts.spawn(async move {
            let outcome = operation().await;
            phase.tick();
            (due.elapsed(), outcome)
        });
        due += arrivals.gap(rate);
    }
    while let Some(joined) = attempts.join_next().await {
        match joined {
            Ok((latency, outcome)) => total.record(latency, outcome),
            Err(error) => total.record(Duration::ZERO, Outcome::Failed(error.to_string())),
        }
    }
    total.elapsed = started.elapsed();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn succeeding_after(pause: Duration) -> Operation {
        Arc::new(move || {
            Box::pin(async move {
                tokio::time::sleep(pause).await;
                Outcome::Succeeded {
                    program_cpu_ms: 2,
                    queue_ms: None,
                }
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_loop_of_four_clients_runs_four_at_a_time() {
        let operation = succeeding_after(Duration::from_millis(100));
        let tally = closed_loop(&operation, 4, Duration::from_secs(1), &Phase::silent()).await;
        assert_eq!(tally.succeeded(), 40);
        assert_eq!(tally.program_cpu_per_run_ms(), Some(2.0));
        let throughput = tally.throughput().expect("time passed");
        assert!((throughput - 40.0).abs() < 1.0, "{throughput}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_sends_at_its_rate_whatever_the_latency() {
        let operation = succeeding_after(Duration::from_millis(500));
        let phase = Phase::silent();
        let run = |arrivals| open_loop(&operation, 50.0, arrivals, Duration::from_secs(20), &phase);
        // Poisson arrivals: 50 per second for 20 s is 1000 ± 32 (one standard deviation).
        let poisson = run(Arrivals::Poisson).await;
        let attempts = poisson.attempts();
        assert!((850..=1150).contains(&attempts), "{attempts} attempts");
        let percentiles = poisson.percentiles().expect("samples");
        assert!((percentiles.p99_ms - 500.0).abs() < 5.0, "{percentiles:?}");
        assert_eq!(run(Arrivals::Even).await.attempts(), 1000);
    }

    #[test]
    fn failures_and_lost_runs_are_counted_apart() {
        let mut tally = Tally::default();
        tally.record(Duration::from_millis(5), Outcome::Lost);
        tally.record(
            Duration::from_millis(5),
            Outcome::Failed("wrong".to_owned()),
        );
        tally.record(
            Duration::from_millis(5),
            Outcome::Succeeded {
                program_cpu_ms: 1,
                queue_ms: Some(3),
            },
        );
        assert_eq!((tally.succeeded(), tally.failed, tally.lost), (1, 1, 1));
        assert_eq!(tally.failures, vec!["wrong".to_owned()]);
        // Only a success's wait for a sandbox is kept, beside its latency.
        assert_eq!(tally.queue_times, vec![Duration::from_millis(3)]);
    }
}
