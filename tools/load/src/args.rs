//! The command line: where the stack is, the mix, and one of four shapes of load.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// The mix used when `--mix` is not given: mostly runs that succeed, in an interpreted and a
/// compiled language, and a few of each verdict a client's mistakes produce.
pub const DEFAULT_MIX: &str =
    "python:ok=6,c:ok=2,bash:ok=1,python:wrong_answer=1,python:runtime_error=1,c:compile_error=1";

/// Load for a running coderun stack, through its public API.
#[derive(Debug, Clone, Parser)]
#[command(name = "coderun-load", version, about)]
pub struct Args {
    /// The gateway's base URL.
    #[arg(long, env = "CODERUN_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The API key runs are created with (scripts/up.sh keeps the local one in
    /// ~/.cache/coderun/state/api-key).
    #[arg(long, env = "CODERUN_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// What is sent: comma-separated `language:verdict=weight` entries, the verdict being what
    /// the program must get: ok (an echo of a line unique to the run, checked), wrong_answer,
    /// runtime_error, compile_error (compiled languages), time_limit (a busy loop under a
    /// 300 ms CPU limit; python, c, cpp, bash, javascript, ruby, perl, php, lua, go, rust).
    #[arg(long, default_value = DEFAULT_MIX)]
    pub mix: String,
    /// A run accepted and not finished this long after it was sent counts as lost
    /// (`90s`, `2m`).
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    pub lost_after: Duration,
    /// Print the report as one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a run was lost, duplicated, answered wrongly or refused, or a soak check
    /// failed.
    #[arg(long)]
    pub check: bool,
    #[command(subcommand)]
    pub mode: Mode,
}

/// The shape of the load.
#[derive(Debug, Clone, Subcommand)]
pub enum Mode {
    /// An open loop: runs arrive at a fixed rate whatever the stack does with them, as
    /// independent clients send them; latency counts from when each was due.
    Open {
        /// Runs per second.
        #[arg(long)]
        rate: f64,
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        duration: Duration,
        #[arg(long, value_enum, default_value_t = Spacing::Poisson)]
        arrivals: Spacing,
    },
    /// A closed loop: a fixed number of clients, each sending its next run when its last one
    /// ends.
    Closed {
        #[arg(long)]
        concurrency: usize,
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        duration: Duration,
    },
    /// The limit-load test: closed loops at rising concurrency until throughput stops growing
    /// by 5 % (the saturation), the saturating level once more (the lower reading counts),
    /// then an open loop at `--fraction` of it.
    Step {
        #[command(flatten)]
        search: SearchArgs,
        /// How long the open loop at the fraction lasts.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        duration: Duration,
    },
    /// The soak test: an open loop for a long time, in windows, watching each service's
    /// resident memory and the latency of each window, then what the stack kept once idle.
    Soak {
        /// Runs per second; without it, `--fraction` of a saturation searched for first.
        #[arg(long)]
        rate: Option<f64>,
        #[command(flatten)]
        search: SearchArgs,
        #[arg(long, value_parser = parse_duration, default_value = "30m")]
        duration: Duration,
        /// One window's length: latency and memory are read once per window.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        window: Duration,
        /// A service's metrics endpoint, `name=url` (repeatable), read for
        /// `process_resident_memory_bytes`.
        #[arg(long = "metrics", value_parser = parse_named_url)]
        metrics: Vec<(String, String)>,
        /// The stack's Redis, read for keys that never expire and runs still counted in flight.
        #[arg(long)]
        redis_url: Option<String>,
        /// The stack's Docker Engine (the default socket), read for its sandbox containers.
        #[arg(long)]
        docker: bool,
        /// The stack's prefix of Redis keys and container labels.
        #[arg(long, default_value = "coderun")]
        prefix: String,
    },
}

/// How the saturation is searched for.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// Concurrencies tried, in order, until throughput stops growing.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
    pub levels: Vec<usize>,
    /// How long each level lasts.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub step_duration: Duration,
    /// The share of the saturation the open loop runs at.
    #[arg(long, default_value_t = 0.7)]
    pub fraction: f64,
}

/// How an open loop spaces its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Spacing {
    /// Exponential gaps: a Poisson process, as independent clients arrive.
    Poisson,
    /// One every 1/rate seconds.
    Even,
}

impl From<Spacing> for coderun_bench::load::Arrivals {
    fn from(spacing: Spacing) -> Self {
        match spacing {
            Spacing::Poisson => Self::Poisson,
            Spacing::Even => Self::Even,
        }
    }
}

/// `500ms`, `90s`, `30m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 30m or 500ms"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("`{text}`: the unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

fn parse_named_url(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, url)) if !name.is_empty() && url.starts_with("http") => {
            Ok((name.to_owned(), url.to_owned()))
        }
        _ => Err(format!("`{text}` is not `name=http://host:port/metrics`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_units_people_write() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10d").is_err());
    }

    #[test]
    fn a_metrics_endpoint_is_named() {
        assert_eq!(
            parse_named_url("gateway=http://127.0.0.1:8080/metrics"),
            Ok((
                "gateway".to_owned(),
                "http://127.0.0.1:8080/metrics".to_owned()
            ))
        );
        assert!(parse_named_url("http://127.0.0.1:8080/metrics").is_err());
    }

    #[test]
    fn the_command_line_parses_each_mode() {
        let args = Args::try_parse_from([
            "coderun-load",
            "--api-key",
            "k",
            "open",
            "--rate",
            "5",
            "--duration",
            "10s",
        ])
        .expect("parses");
        assert!(matches!(args.mode, Mode::Open { rate, .. } if rate == 5.0));
        let args = Args::try_parse_from([
            "coderun-load",
            "--api-key",
            "k",
            "soak",
            "--duration",
            "30m",
            "--metrics",
            "gateway=http://127.0.0.1:8080/metrics",
            "--docker",
        ])
        .expect("parses");
        assert!(matches!(
            args.mode,
            Mode::Soak {
                rate: None,
                docker: true,
                ..
            }
        ));
    }
}
