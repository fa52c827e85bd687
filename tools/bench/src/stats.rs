//! Latency percentiles (nearest rank) and throughput.

use std::time::Duration;

use serde::Serialize;

/// The percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// The `quantile` (0 < q ≤ 1) of ascending `sorted` values by the nearest-rank method: the
/// smallest value with at least that share of the values at or below it.
pub fn nearest_rank(sorted: &[f64], quantile: f64) -> Option<f64> {
    if sorted.is_empty() || !(quantile > 0.0 && quantile <= 1.0) {
        return None;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

impl Percentiles {
    /// The percentiles of `latencies`; `None` when there are none.
    pub fn of(latencies: &[Duration]) -> Option<Self> {
        let mut millis: Vec<f64> = latencies
            .iter()
            .map(|latency| latency.as_secs_f64() * 1000.0)
            .collect();
        millis.sort_by(f64::total_cmp);
        Some(Self {
            count: millis.len(),
            p50_ms: nearest_rank(&millis, 0.50)?,
            p95_ms: nearest_rank(&millis, 0.95)?,
            p99_ms: nearest_rank(&millis, 0.99)?,
        })
    }
}

/// Events per second, `None` over no time.
pub fn per_second(count: usize, elapsed: Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    (seconds > 0.0).then(|| count as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_takes_the_value_at_the_rounded_up_rank() {
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(nearest_rank(&hundred, 0.50), Some(50.0));
        assert_eq!(nearest_rank(&hundred, 0.95), Some(95.0));
        assert_eq!(nearest_rank(&hundred, 0.99), Some(99.0));
        assert_eq!(nearest_rank(&hundred, 1.0), Some(100.0));
        let three = [10.0, 20.0, 30.0];
        assert_eq!(nearest_rank(&three, 0.50), Some(20.0));
        assert_eq!(nearest_rank(&three, 0.99), Some(30.0));
        assert_eq!(nearest_rank(&[7.0], 0.01), Some(7.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
        assert_eq!(nearest_rank(&three, 0.0), None);
    }

    #[test]
    fn percentiles_sort_their_samples_first() {
        let latencies: Vec<Duration> = [30, 10, 20, 40]
            .into_iter()
            .map(Duration::from_millis)
            .collect();
        let percentiles = Percentiles::of(&latencies).expect("four samples");
        assert_eq!(percentiles.count, 4);
        assert_eq!(percentiles.p50_ms, 20.0);
        assert_eq!(percentiles.p99_ms, 40.0);
        assert_eq!(Percentiles::of(&[]), None);
    }

    #[test]
    fn a_rate_needs_time() {
        assert_eq!(per_second(10, Duration::from_secs(2)), Some(5.0));
        assert_eq!(per_second(10, Duration::ZERO), None);
    }
}
