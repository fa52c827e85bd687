//! Run records written while Redis may be away: a store operation is retried with backoff
//! until it succeeds, so a finished run's result is never dropped because Redis blinked.
//!
//! The wait between attempts doubles from [`FIRST_WAIT`] up to [`LONGEST_WAIT`], each with a
//! random part of up to its own length added (backon's exponential backoff with jitter), so
//! executors that lost Redis together do not all ask again in the same instant. Retrying
//! stops only when the executor abandons its jobs (the drain at shutdown timed out); the job is
//! then handed back to NATS by its caller.
//!
//! Architecture invariant: this module knows nothing of runs, only of store errors and time.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use coderun_store::StoreError;
use tokio_util::sync::CancellationToken;

/// The wait after the first failure.
pub const FIRST_WAIT: Duration = Duration::from_millis(100);
/// The longest wait between two attempts, before its random part (up to as much again).
pub const LONGEST_WAIT: Duration = Duration::from_secs(2);
/// An attempt that has not answered by then counts as failed (a connection being re-made
/// must not hold a result back for ever).
pub const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);

/// The waits after each failed attempt, for ever: 100 ms doubling up to 2 s, each plus up to
/// as much again at random.
pub fn waits() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(FIRST_WAIT)
        .with_max_delay(LONGEST_WAIT)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Runs `operation` until it succeeds or `abandon` is cancelled. An error that may pass
/// ([`StoreError::is_transient`]) is waited out; any other (a record that cannot be decoded, a command
/// Redis refuses) fails at once.
pub async fn retrying<T, F, Fut>(
    what: &str,
    abandon: &CancellationToken,
    operation: F,
) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut failures = 0u32;
    let mut waits = waits();
    loop {
        let attempt = tokio::select! {
            _ = abandon.cancelled() => {
                anyhow::bail!("gave up trying to {what}: the executor is abandoning its jobs");
            }
            attempt = tokio::time::timeout(ATTEMPT_LIMIT, operation()) => attempt,
        };
        let error = match attempt {
            Err(_) => format!("no answer within {} s", ATTEMPT_LIMIT.as_secs()),
            Ok(Ok(value)) => {
                if failures > 0 {
                    tracing::info!(failures, "Redis answered again: {what} done");
                }
                return Ok(value);
            }
            Ok(Err(error)) if !error.is_transient() => {
                return Err(anyhow::Error::new(error).context(format!("failed to {what}")))
            }
            Ok(Err(error)) => error.to_string(),
        };
        failures += 1;
        let wait = waits.next().unwrap_or(LONGEST_WAIT);
        tracing::warn!(
            failures,
            wait_ms = wait.as_millis() as u64,
            error = %error,
            "failed to {what}; trying again"
        );
        tokio::select! {
            _ = abandon.cancelled() => {
                anyhow::bail!("failed to {what} before the executor gave up its jobs: {error}");
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn redis_down() -> StoreError {
        StoreError::Redis(redis::RedisError::from(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )))
    }

    #[test]
    fn waits_double_up_to_the_longest_wait_with_a_random_part_on_top() {
        let first: Vec<Duration> = waits().take(12).collect();
        assert_eq!(first.len(), 12, "the waits never run out");
        for (index, wait) in first.iter().enumerate() {
            let base = FIRST_WAIT
                .saturating_mul(1 << index.min(16))
                .min(LONGEST_WAIT);
            assert!(
                *wait >= base && *wait <= base * 2,
                "wait {index}: {wait:?}, base {base:?}"
            );
        }
        // Two executors that failed together do not wait alike.
        let (one, other): (Vec<_>, Vec<_>) = (waits().take(6).collect(), waits().take(6).collect());
        assert_ne!(one, other);
    }

    #[tokio::test(start_paused = true)]
    async fn an_operation_is_tried_until_redis_answers() {
        let attempts = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let value = retrying("store the result", &CancellationToken::new(), || async {
            if attempts.fetch_add(1, Ordering::SeqCst) < 7 {
                Err(redis_down())
            } else {
                Ok(42)
            }
        })
        .await
        .expect("succeeds once Redis answers");
        assert_eq!(value, 42);
        assert_eq!(attempts.load(Ordering::SeqCst), 8);
        // 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 2 + 2 seconds of waiting (the clock is paused), each
        // wait with up to as much again at random.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(7100) && waited <= Duration::from_millis(14200),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn abandoning_ends_the_retries_with_the_cause() {
        let abandon = CancellationToken::new();
        let attempts = AtomicU32::new(0);
        let stop = abandon.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            stop.cancel();
        });
        let error = retrying("store the result", &abandon, || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(redis_down())
        })
        .await
        .expect_err("gives up when abandoned");
        assert!(attempts.load(Ordering::SeqCst) > 10);
        let chain = format!("{error:#}");
        assert!(chain.contains("failed to store the result"), "{chain}");
        assert!(chain.contains("refused"), "{chain}");
    }

    #[tokio::test]
    async fn a_command_redis_refuses_is_not_retried() {
        let attempts = AtomicU32::new(0);
        let error = retrying("store the result", &CancellationToken::new(), || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            let refused = redis::RedisError::from((
                redis::ErrorKind::TypeError,
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ));
            Err::<(), _>(StoreError::Redis(refused))
        })
        .await
        .expect_err("fails at once");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert!(format!("{error:#}").contains("WRONGTYPE"), "{error:#}");
        let loading = redis::RedisError::from((redis::ErrorKind::BusyLoadingError, "LOADING"));
        assert!(StoreError::Redis(loading).is_transient());
        assert!(redis_down().is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_in_flight_is_dropped_when_the_jobs_are_abandoned() {
        let abandon = CancellationToken::new();
        let stop = abandon.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stop.cancel();
        });
        let started = tokio::time::Instant::now();
        let error = retrying("store the result", &abandon, || async {
            // Redis that never answers: the attempt would last ATTEMPT_LIMIT.
            std::future::pending::<Result<(), StoreError>>().await
        })
        .await
        .expect_err("abandoned");
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(format!("{error:#}").contains("abandoning"));
    }

    #[tokio::test]
    async fn a_corrupt_record_is_not_retried() {
        let attempts = AtomicU32::new(0);
        let error = retrying("read the run", &CancellationToken::new(), || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            let corrupt = serde_json::from_str::<u32>("not json").expect_err("invalid");
            Err::<(), _>(StoreError::Corrupt(corrupt))
        })
        .await
        .expect_err("fails at once");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert!(format!("{error:#}").contains("not valid"));
    }
}
