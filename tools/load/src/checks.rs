//! The soak's checks, made from its figures once its runs are settled: each service's memory
//! stays flat, the latency does not drift, and nothing is left over once the stack is idle (no
//! Redis key without an expiry more than before, no run counted in flight, no container the
//! executors do not hold). A source the soak was told to read that gave nothing fails its check.

use serde::Serialize;

use crate::soak::{SoakFigures, Window};

/// A service's memory may grow by this share of its first window's reading, plus
/// [`MEMORY_SLACK_BYTES`], over the soak: more is a leak.
pub const MEMORY_GROWTH_ALLOWED: f64 = 0.20;
pub const MEMORY_SLACK_BYTES: u64 = 2 * 1024 * 1024;
/// The last third of the windows' median p50 may be at most this many times the first
/// third's: more is a drift.
pub const LATENCY_DRIFT_ALLOWED: f64 = 1.5;
/// One of the soak's checks.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
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
    let unread = |name: &str, detail: &str| Check {
        name: name.to_owned(),
        passed: false,
        detail: detail.to_owned(),
    };
    let keys_read = before.keys_without_expiry.is_some() && after.keys_without_expiry.is_some();
    if figures.watched.redis && !keys_read {
        checks.push(unread(
            "no Redis key left without an expiry",
            "Redis could not be read",
        ));
    }
    if figures.watched.docker && after.containers_left_over().is_none() {
        checks.push(unread(
            "no container left over",
            "the containers, or the ones the executors hold (their /metrics), could not be read",
        ));
    }
    if let (Some(before), Some(after)) = (before.keys_without_expiry, after.keys_without_expiry) {
        checks.push(Check {
            name: "no Redis key left without an expiry".to_owned(),
            passed: after <= before,
            detail: format!(
                "{before} before, {after} after (besides {} key(s) the deployment keeps per pool or tenant)",
                figures.after.deployment_keys.unwrap_or(0)
            ),
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
    use crate::inspect::Holdings;
    use crate::soak::Watched;
    use coderun_bench::stats::Percentiles;
    use std::collections::BTreeMap;

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
                deployment_keys: Some(1),
                runs_in_flight: Some(0),
                containers: Some(34),
                containers_held: Some(34),
            },
            after,
            watched: Watched {
                redis: true,
                docker: true,
            },
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
            deployment_keys: Some(2),
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
            deployment_keys: Some(1),
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

    #[test]
    fn a_source_asked_for_that_gave_nothing_fails_its_check() {
        let windows = vec![window(1, 30.0, 20), window(2, 30.0, 20)];
        let checks = checks(&figures(windows, Holdings::default()));
        let failed: Vec<&str> = checks
            .iter()
            .filter(|check| !check.passed)
            .map(|check| check.name.as_str())
            .collect();
        assert_eq!(
            failed,
            vec![
                "no Redis key left without an expiry",
                "no container left over"
            ]
        );
    }
}
