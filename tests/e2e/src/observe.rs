//! Helpers of the observability tests: reading a `/metrics` page, a free port, a prober
//! configured against a stack, a Prometheus of the test's own, and the services' readiness.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port free right now (bound and released), for a listener that must be known before it
/// starts (a webhook target the stack must allow).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// One sample of a metrics page: its name, labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of an OpenMetrics/Prometheus text page.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    Some((key.to_owned(), value.trim_matches('"').to_owned()))
                })
                .collect();
            Some(Sample {
                name: name.to_owned(),
                labels,
                value,
            })
        })
        .collect()
}

/// The value of the first sample named `name` whose labels include `labels`.
pub fn value_of(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text)
        .into_iter()
        .find(|sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|sample| sample.value)
}

/// Every series name a page can show, from its `# TYPE` lines: a counter `x` shows
/// `x_total`, a histogram `x_bucket`, `x_sum` and `x_count`, a gauge `x` — whether or not a
/// sample was recorded yet.
pub fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// Every `coderun_…` metric name a file mentions.
pub fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("coderun_") {
        let preceded_by_word = rest[..start]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        if !preceded_by_word {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// The files under `monitoring/` that name metrics: alert rules, their tests' expressions
/// excepted (tests invent series on purpose), dashboards and Grafana alert provisioning.
pub fn monitoring_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../monitoring");
    let mut files = Vec::new();
    for folder in [
        "prometheus/rules",
        "grafana/dashboards",
        "grafana/provisioning/alerting",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            panic!("monitoring/{folder} is missing");
        };
        files.extend(entries.filter_map(Result::ok).map(|entry| entry.path()));
    }
    files.sort();
    files
}

/// A Prometheus server of the test's own on a free port, with its data in a temporary folder.
pub struct PrivatePrometheus {
    pub url: String,
    dir: PathBuf,
    process: Child,
}

impl PrivatePrometheus {
    /// Starts `prometheus` scraping `targets` (job name → `host:port`) every second. Fails
    /// the test with a clear message if Debian's `prometheus` package is not installed.
    pub fn start(targets: &[(&str, String)]) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("coderun-prometheus-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data folder");
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, target) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write the config");
        let process = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (scripts/test.sh installs Debian's prometheus package)");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            process,
        }
    }

    /// The scrape health of every target, by job, once Prometheus answers.
    pub async fn target_health(&self) -> BTreeMap<String, String> {
        let answer: serde_json::Value =
            match reqwest::get(format!("{}/api/v1/targets", self.url)).await {
                Ok(response) => response.json().await.unwrap_or_default(),
                Err(_) => return BTreeMap::new(),
            };
        answer["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|target| {
                (
                    target["labels"]["job"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    target["health"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The result of an instant query.
    pub async fn query(&self, expression: &str) -> serde_json::Value {
        let url = format!("{}/api/v1/query", self.url);
        reqwest::Client::new()
            .get(url)
            .query(&[("query", expression)])
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("prometheus answers")
            .json()
            .await
            .expect("json")
    }
}

impl Drop for PrivatePrometheus {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The status the scheduler's and the executor's `/readyz` of `stack` answer (`None`: no
/// answer).
pub async fn services_readiness(stack: &crate::TestStack) -> [Option<u16>; 2] {
    let status = |ops_url: String| async move {
        let response = reqwest::get(format!("{ops_url}/readyz")).await.ok()?;
        Some(response.status().as_u16())
    };
    [
        status(stack.scheduler_ops_url.clone()).await,
        status(stack.executor_ops_url.clone()).await,
    ]
}

/// Whether the gateway, the scheduler and the executor of `stack` all say they are ready
/// within `within`.
pub async fn all_ready_within(stack: &crate::TestStack, within: Duration) -> bool {
    let client = stack.client();
    crate::wait_until(within, || async {
        client.ready().await.ok()?;
        (services_readiness(stack).await == [Some(200); 2]).then_some(())
    })
    .await
    .is_some()
}
