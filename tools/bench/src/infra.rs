//! The shared infrastructure's own counters: messages NATS took in and sent out (its
//! monitoring endpoint's `/varz`), and commands Redis processed (`INFO stats`).

use std::time::Duration;

use serde::Deserialize;

/// One reading of both servers' counters; a server that did not answer is `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub nats: Option<NatsCounters>,
    /// `total_commands_processed`, not counting the `INFO` that read it.
    pub redis_commands: Option<u64>,
}

/// NATS's `in_msgs` and `out_msgs`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct NatsCounters {
    pub in_msgs: u64,
    pub out_msgs: u64,
}

/// What happened between two readings.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountersDelta {
    pub nats_in: Option<f64>,
    pub nats_out: Option<f64>,
    pub redis_commands: Option<f64>,
}

impl CountersDelta {
    /// Each known part changed by `change`.
    pub fn map(&self, change: impl Fn(f64) -> f64) -> Self {
        Self {
            nats_in: self.nats_in.map(&change),
            nats_out: self.nats_out.map(&change),
            redis_commands: self.redis_commands.map(&change),
        }
    }

    /// Each part of this and `other` combined by `combine`, where both are known.
    pub fn with(&self, other: &Self, combine: impl Fn(f64, f64) -> f64) -> Self {
        let both = |a: Option<f64>, b: Option<f64>| Some(combine(a?, b?));
        Self {
            nats_in: both(self.nats_in, other.nats_in),
            nats_out: both(self.nats_out, other.nats_out),
            redis_commands: both(self.redis_commands, other.redis_commands),
        }
    }
}

impl Counters {
    /// `later − self`, each server's part where it answered both times. Every reading's own
    /// `INFO` is counted by the next one, so one command is taken off.
    pub fn until(&self, later: &Counters) -> CountersDelta {
        let difference =
            |start: Option<u64>, end: Option<u64>| Some(end?.saturating_sub(start?) as f64);
        let nats = |pick: fn(&NatsCounters) -> u64| {
            difference(self.nats.as_ref().map(pick), later.nats.as_ref().map(pick))
        };
        CountersDelta {
            nats_in: nats(|counters| counters.in_msgs),
            nats_out: nats(|counters| counters.out_msgs),
            redis_commands: difference(self.redis_commands, later.redis_commands)
                .map(|commands| commands - 1.0),
        }
    }
}

/// Reads both servers' counters.
pub struct CounterReader {
    http: reqwest::Client,
    varz: String,
    redis: Option<redis::aio::MultiplexedConnection>,
}

impl CounterReader {
    /// A reader of NATS's monitoring endpoint `monitor` and of Redis at `redis_url`; a Redis
    /// that cannot be reached now is reported missing in every reading.
    pub async fn connect(monitor: &str, redis_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()?;
        let redis = match redis::Client::open(redis_url) {
            Ok(client) => client.get_multiplexed_async_connection().await.ok(),
            Err(_) => None,
        };
        Ok(Self {
            http,
            varz: format!("{}/varz", monitor.trim_end_matches('/')),
            redis,
        })
    }

    /// Whether NATS's monitoring endpoint answers.
    pub async fn nats_monitored(&self) -> bool {
        self.nats().await.is_some()
    }

    async fn nats(&self) -> Option<NatsCounters> {
        let response = self.http.get(&self.varz).send().await.ok()?;
        response.error_for_status().ok()?.json().await.ok()
    }

    async fn redis_commands(&self) -> Option<u64> {
        let mut connection = self.redis.clone()?;
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut connection)
            .await
            .ok()?;
        commands_processed(&info)
    }

    pub async fn read(&self) -> Counters {
        let (nats, redis_commands) = tokio::join!(self.nats(), self.redis_commands());
        Counters {
            nats,
            redis_commands,
        }
    }
}

/// `total_commands_processed` from an `INFO stats` answer.
pub fn commands_processed(info: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_info_gives_its_command_count() {
        let info = "# Stats\r\ntotal_connections_received:3\r\ntotal_commands_processed:1234\r\n";
        assert_eq!(commands_processed(info), Some(1234));
        assert_eq!(commands_processed("# Stats\r\n"), None);
    }

    #[test]
    fn a_delta_takes_the_readers_own_info_off_and_background_can_be_subtracted() {
        let start = Counters {
            nats: Some(NatsCounters {
                in_msgs: 100,
                out_msgs: 200,
            }),
            redis_commands: Some(1000),
        };
        let end = Counters {
            nats: Some(NatsCounters {
                in_msgs: 150,
                out_msgs: 300,
            }),
            redis_commands: Some(1101),
        };
        let delta = start.until(&end);
        assert_eq!(delta.redis_commands, Some(100.0));
        let background = CountersDelta {
            nats_in: Some(1.0),
            nats_out: Some(2.0),
            redis_commands: None,
        };
        let net = delta.with(&background.map(|rate| rate * 10.0), |a, b| a - b);
        assert_eq!(net.nats_in, Some(40.0));
        assert_eq!(net.nats_out, Some(80.0));
        assert_eq!(net.redis_commands, None);
        let without_nats = Counters {
            nats: None,
            ..start
        }
        .until(&end);
        assert_eq!(without_nats.nats_in, None);
        assert_eq!(without_nats.redis_commands, Some(100.0));
    }
}
