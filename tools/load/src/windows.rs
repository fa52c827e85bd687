//! One long open loop seen window by window: every attempt is recorded with the moment it was
//! sent, and the attempts are grouped by the window they were sent in afterwards. The loop
//! itself never pauses between windows, so a backlog the stack cannot clear carries over and
//! shows as drift.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coderun_bench::load::{Operation, Outcome};
use coderun_bench::stats::{per_second, Percentiles};
use tokio::time::Instant;

/// One attempt: when it was sent (since the loop began), how long it took, how it ended.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub sent: Duration,
    pub latency: Duration,
    pub ended: Ended,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    AsExpected,
    Failed,
    Lost,
}

/// The attempts recorded so far.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl Recorder {
    /// `operation`, each attempt recorded against `origin`.
    pub fn wrap(&self, operation: &Operation, origin: Instant) -> Operation {
        let (operation, samples) = (operation.clone(), self.samples.clone());
        Arc::new(move || {
            let (operation, samples) = (operation.clone(), samples.clone());
            Box::pin(async move {
                let sent = Instant::now();
                let outcome = operation().await;
                let ended = match outcome {
                    Outcome::Succeeded { .. } => Ended::AsExpected,
                    Outcome::Failed(_) => Ended::Failed,
                    Outcome::Lost => Ended::Lost,
                };
                let sample = Sample {
                    sent: sent.saturating_duration_since(origin),
                    latency: sent.elapsed(),
                    ended,
                };
                samples
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(sample);
                outcome
            })
        })
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// What the attempts sent in one window gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSummary {
    /// Attempts sent in the window that ended as expected, per second of the window.
    pub throughput: Option<f64>,
    /// Their latencies.
    pub latency: Option<Percentiles>,
    pub failed: usize,
    pub lost: usize,
}

/// The attempts sent in window `number` (1 for the first) of length `window`.
pub fn summarize(samples: &[Sample], window: Duration, number: usize) -> WindowSummary {
    let from = window.saturating_mul(number.saturating_sub(1) as u32);
    let to = from + window;
    let sent: Vec<&Sample> = samples
        .iter()
        .filter(|sample| sample.sent >= from && sample.sent < to)
        .collect();
    let latencies: Vec<Duration> = sent
        .iter()
        .filter(|sample| sample.ended == Ended::AsExpected)
        .map(|sample| sample.latency)
        .collect();
    let count = |ended| sent.iter().filter(|sample| sample.ended == ended).count();
    WindowSummary {
        throughput: per_second(latencies.len(), window),
        latency: Percentiles::of(&latencies),
        failed: count(Ended::Failed),
        lost: count(Ended::Lost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(sent_ms: u64, latency_ms: u64, ended: Ended) -> Sample {
        Sample {
            sent: Duration::from_millis(sent_ms),
            latency: Duration::from_millis(latency_ms),
            ended,
        }
    }

    #[test]
    fn attempts_count_in_the_window_they_were_sent_in() {
        let samples = [
            sample(100, 10, Ended::AsExpected),
            sample(900, 400, Ended::AsExpected),
            sample(950, 10, Ended::Failed),
            sample(1_000, 20, Ended::AsExpected),
            sample(1_500, 0, Ended::Lost),
        ];
        let first = summarize(&samples, Duration::from_secs(1), 1);
        assert_eq!((first.failed, first.lost), (1, 0));
        assert_eq!(first.throughput, Some(2.0));
        assert_eq!(first.latency.map(|latency| latency.p99_ms), Some(400.0));
        let second = summarize(&samples, Duration::from_secs(1), 2);
        assert_eq!(
            (second.failed, second.lost, second.throughput),
            (0, 1, Some(1.0))
        );
        assert_eq!(summarize(&samples, Duration::from_secs(1), 3).latency, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wrapped_operation_is_recorded_as_it_ends() {
        let operation: Operation = Arc::new(|| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Outcome::Lost
            })
        });
        let recorder = Recorder::default();
        let origin = Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let outcome = recorder.wrap(&operation, origin)().await;
        assert_eq!(outcome, Outcome::Lost);
        let samples = recorder.samples();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].sent, Duration::from_millis(5));
        assert_eq!(samples[0].latency, Duration::from_millis(30));
        assert_eq!(samples[0].ended, Ended::Lost);
    }
}
