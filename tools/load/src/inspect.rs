//! Reading the stack from outside, for the soak's checks: each service's resident memory from
//! its `/metrics`, its Redis keys that never expire and runs still counted in flight, and its
//! sandbox containers.

use std::collections::BTreeMap;

use bollard::Docker;
use serde::Serialize;

/// What the services' metrics pages say.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Resident memory of each named service, in bytes (`None` when its page did not say).
    pub memory: BTreeMap<String, Option<u64>>,
    /// Containers the executors hold for later runs (warm, and idle reused), summed over
    /// every page; `None` when no page is an executor's.
    pub containers_held: Option<usize>,
}

/// Reads every named metrics endpoint.
pub async fn scrape(http: &reqwest::Client, endpoints: &[(String, String)]) -> Scrape {
    let mut scrape = Scrape::default();
    for (name, url) in endpoints {
        let text = page(http, url).await;
        scrape.memory.insert(name.clone(), resident_bytes(&text));
        if let Some(held) = containers_held(&text) {
            *scrape.containers_held.get_or_insert(0) += held;
        }
    }
    scrape
}

/// A service's `/metrics` page; asked up to three times, because one request that a busy
/// machine answers late is not a service without memory (the last page, or empty).
async fn page(http: &reqwest::Client, url: &str) -> String {
    let mut last = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        if let Ok(response) = http.get(url).send().await {
            if let Ok(text) = response.text().await {
                if resident_bytes(&text).is_some() {
                    return text;
                }
                last = text;
            }
        }
    }
    last
}

/// `process_resident_memory_bytes` of a Prometheus text page.
pub fn resident_bytes(metrics: &str) -> Option<u64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix("process_resident_memory_bytes ")?;
        value.trim().parse::<f64>().ok().map(|bytes| bytes as u64)
    })
}

/// The warm and idle reused containers an executor's page counts.
fn containers_held(metrics: &str) -> Option<usize> {
    let values: Vec<f64> = metrics
        .lines()
        .filter(|line| {
            [
                "coderun_warm_containers_ready",
                "coderun_reused_containers_idle",
            ]
            .iter()
            .any(|name| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() as usize)
}

/// What the stack holds while idle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Holdings {
    /// Redis keys of the prefix without an expiry that do not belong to the deployment's
    /// fixed set (see [`is_deployment_key`]): a run's keys all expire, so one of these is a
    /// leak that grows with the runs served.
    pub keys_without_expiry: Option<usize>,
    /// Keys without an expiry that belong to the deployment: one per pool or tenant at most
    /// (the pools that ever had a fair queue, the releasing hash), made on first use and kept.
    pub deployment_keys: Option<usize>,
    /// Entries of the sets that count runs queued, running or not yet started (0 when idle).
    pub runs_in_flight: Option<usize>,
    /// Containers labelled with the prefix, in any state.
    pub containers: Option<usize>,
    /// Of those, the ones an executor holds for later runs (warm or idle reused).
    pub containers_held: Option<usize>,
}

impl Holdings {
    /// Containers no executor holds: left over once no run is in flight.
    pub fn containers_left_over(&self) -> Option<usize> {
        Some(self.containers?.saturating_sub(self.containers_held?))
    }
}

/// Reads the holdings that `redis_url`, `docker` and the executors' pages make visible.
pub async fn holdings(
    redis_url: Option<&str>,
    docker: Option<&Docker>,
    prefix: &str,
    containers_held: Option<usize>,
) -> Holdings {
    let mut holdings = Holdings {
        containers_held,
        ..Holdings::default()
    };
    if let Some(url) = redis_url {
        if let Ok(keys) = redis_holdings(url, prefix).await {
            holdings.keys_without_expiry = Some(keys.leaked);
            holdings.deployment_keys = Some(keys.deployment);
            holdings.runs_in_flight = Some(keys.in_flight);
        }
    }
    if let Some(docker) = docker {
        holdings.containers = containers(docker, prefix).await;
    }
    holdings
}

/// The `:`-separated parts of `key` after `prefix:`; `None` for a key of another prefix.
fn parts_after<'a>(key: &'a str, prefix: &str) -> Option<Vec<&'a str>> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(':')?;
    Some(rest.split(':').collect())
}

/// Keys that belong to the deployment rather than to a run, bounded by its pools and
/// tenants: the set of pools that ever had a fair queue, the hash of runs being released,
/// and a pool's or tenant's own keys (`pool:<pool>:…`, `tenant:<tenant>:…`, `rate:<tenant>`).
/// Everything else without an expiry (a run's record or events, an idempotency key, a name
/// this list does not know) counts as left over.
fn is_deployment_key(key: &str, prefix: &str) -> bool {
    let Some(parts) = parts_after(key, prefix) else {
        return false;
    };
    matches!(
        parts.as_slice(),
        ["pools"] | ["releasing"] | ["pool", _, ..] | ["tenant", _, _] | ["rate", _]
    )
}

/// Keys whose names say they count runs in flight: a tenant's queued and running runs, a
/// pool's queue, waiting and unstarted runs.
fn counts_runs_in_flight(key: &str, prefix: &str) -> bool {
    let Some(parts) = parts_after(key, prefix) else {
        return false;
    };
    matches!(
        parts.as_slice(),
        ["tenant", _, "queued" | "running"]
            | ["pool", _, "queued" | "waiting" | "unstarted"]
            | ["pool", _, "queue", _]
    )
}

/// What the Redis keys of a prefix hold.
#[derive(Debug, Default)]
struct KeyHoldings {
    leaked: usize,
    deployment: usize,
    in_flight: usize,
}

async fn redis_holdings(url: &str, prefix: &str) -> redis::RedisResult<KeyHoldings> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let mut holdings = KeyHoldings::default();
    for key in coderun_bench::leftovers::keys_of(&mut connection, prefix).await? {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut connection)
            .await?;
        if ttl == -1 && is_deployment_key(&key, prefix) {
            holdings.deployment += 1;
        } else if ttl == -1 {
            holdings.leaked += 1;
        }
        if counts_runs_in_flight(&key, prefix) {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut connection)
                .await?;
            let size_command = match kind.as_str() {
                "set" => "SCARD",
                "zset" => "ZCARD",
                "list" => "LLEN",
                "hash" => "HLEN",
                _ => continue,
            };
            let size: usize = redis::cmd(size_command)
                .arg(&key)
                .query_async(&mut connection)
                .await?;
            holdings.in_flight += size;
        }
    }
    Ok(holdings)
}

async fn containers(docker: &Docker, prefix: &str) -> Option<usize> {
    let options = coderun_bench::leftovers::containers_of(prefix);
    docker
        .list_containers(Some(options))
        .await
        .ok()
        .map(|list| list.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_the_process_metric() {
        let page = "# TYPE process_resident_memory_bytes gauge\n\
                    process_resident_memory_bytes 17301504\n\
                    process_cpu_seconds_total 1.5\n# EOF\n";
        assert_eq!(resident_bytes(page), Some(17_301_504));
        assert_eq!(resident_bytes("coderun_build_info 1\n"), None);
    }

    #[test]
    fn the_containers_held_are_the_warm_and_the_idle_reused_ones() {
        let page = "coderun_warm_containers_ready{language=\"python\"} 2\n\
                    coderun_warm_containers_ready{language=\"c\"} 1\n\
                    coderun_warm_containers_missing{language=\"c\"} 1\n\
                    coderun_reused_containers_idle 3\n";
        assert_eq!(containers_held(page), Some(6));
        assert_eq!(containers_held("process_resident_memory_bytes 1\n"), None);
        let holdings = Holdings {
            containers: Some(7),
            containers_held: Some(6),
            ..Holdings::default()
        };
        assert_eq!(holdings.containers_left_over(), Some(1));
    }

    #[test]
    fn only_the_sets_of_runs_in_flight_count() {
        for key in [
            "coderun:tenant:local:queued",
            "coderun:tenant:local:running",
            "coderun:pool:python:unstarted",
            "coderun:pool:python:waiting",
            "coderun:pool:python:queue:local",
        ] {
            assert!(counts_runs_in_flight(key, "coderun"), "{key}");
        }
        for key in [
            "coderun:run:run_01:events",
            "coderun:tenant:local:runs",
            "other:tenant:local:queued",
            "coderun2:tenant:local:queued",
        ] {
            assert!(!counts_runs_in_flight(key, "coderun"), "{key}");
        }
    }

    #[test]
    fn only_the_keys_a_deployment_keeps_by_pool_or_tenant_are_not_leaks() {
        for key in [
            "coderun:pools",
            "coderun:releasing",
            "coderun:pool:python:queued",
            "coderun:pool:python:queue:local",
            "coderun:tenant:local:runs",
            "coderun:rate:local",
        ] {
            assert!(is_deployment_key(key, "coderun"), "{key}");
        }
        for key in [
            "coderun:run:run_01",
            "coderun:run:run_01:events",
            "coderun:idempotency:local:key-1",
            "coderun:something:new",
            "other:pools",
        ] {
            assert!(!is_deployment_key(key, "coderun"), "{key}");
        }
    }
}
