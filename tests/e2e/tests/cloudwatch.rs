//! The prober's CloudWatch metrics, against a real emulator (moto's server, from the Python
//! tools `scripts/test.sh` installs): a round's results are read back with the documented
//! namespace, metric names, units and dimensions, and a CloudWatch that cannot be reached is
//! counted and logged while the round still completes.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, StandardUnit, Statistic};
use coderun_e2e::observe::{free_port, value_of};
use coderun_e2e::{python_tools, wait_until, StackOptions, TestStack, TENANT_A_KEY};

/// A moto server on a loopback port of its own, killed when dropped.
struct Moto {
    url: String,
    process: Child,
}

impl Moto {
    async fn start(tools: &std::path::Path) -> Self {
        let port = free_port();
        let process = Command::new(tools.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (scripts/test.sh installs moto[server])");
        let url = format!("http://127.0.0.1:{port}");
        let up = wait_until(Duration::from_secs(30), || async {
            reqwest::get(&url).await.ok().map(|_| ())
        })
        .await;
        assert!(up.is_some(), "moto_server answers on {url}");
        Self { url, process }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn prober_config(stack: &TestStack, endpoint: &str) -> coderun_prober::Config {
    let mut config: coderun_prober::Config =
        toml::from_str(coderun_prober::DEFAULTS).expect("defaults parse");
    config.target.base_url = stack.base_url.clone();
    config.target.api_key = TENANT_A_KEY.to_owned();
    config.probe.languages = vec!["python".to_owned()];
    config.probe.timeout_secs = 60;
    config.probe.objective_ms = 30_000;
    config.ops.port = 0;
    config.webhook.port = 0;
    config.cloudwatch.enabled = true;
    config.cloudwatch.environment = "ci".to_owned();
    config.cloudwatch.region = "eu-west-1".to_owned();
    config.cloudwatch.endpoint = endpoint.to_owned();
    config
}

/// The prober's own errors (a failed publish says why) on the test's output.
fn show_errors() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("coderun_prober=error")
        .with_test_writer()
        .try_init();
}

async fn metrics_page(prober: &coderun_prober::Prober) -> String {
    let port = prober.ops_port().expect("the ops listener listens");
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("answers")
        .text()
        .await
        .expect("text")
}

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rounds_results_are_read_back_from_cloudwatch_with_the_documented_names() {
    show_errors();
    let Some(tools) = python_tools("cloudwatch") else {
        return;
    };
    // The emulator accepts any credentials; the SDK's default chain reads them from here.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let moto = Moto::start(&tools).await;
    let stack = TestStack::start_with(StackOptions {
        // The verdict checks use python and c.
        languages: vec!["python".to_owned(), "c".to_owned()],
        ..StackOptions::default()
    })
    .await;
    let config = prober_config(&stack, &moto.url);
    let prober = coderun_prober::Prober::start(config.clone(), coderun_prober::WithOps)
        .await
        .expect("the prober starts");
    let round = prober.round().await;
    assert_eq!(round.failed(), 0, "{}", round.table());
    let page = metrics_page(&prober).await;
    assert_eq!(
        value_of(
            &page,
            "coderun_cloudwatch_publishes_total",
            &[("outcome", "ok")]
        ),
        Some(1.0),
        "{page}"
    );
    prober.stop().await;

    let cloudwatch = coderun_prober::cloudwatch::client(&config.cloudwatch).await;
    let listed = cloudwatch
        .list_metrics()
        .namespace("Coderun/Prober")
        .send()
        .await
        .expect("moto lists metrics");
    let mut names: Vec<String> = listed
        .metrics()
        .iter()
        .filter_map(|metric| metric.metric_name().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names,
        [
            "CheckLatency",
            "CheckSuccess",
            "CheckWithinObjective",
            "RoundFailures"
        ]
    );
    for metric in listed.metrics() {
        // Printed, so the suite's log shows what CloudWatch holds.
        println!(
            "CloudWatch Coderun/Prober {} {:?}",
            metric.metric_name().unwrap_or_default(),
            metric
                .dimensions()
                .iter()
                .map(|dimension| format!(
                    "{}={}",
                    dimension.name().unwrap_or_default(),
                    dimension.value().unwrap_or_default()
                ))
                .collect::<Vec<_>>()
        );
        let mut dimensions: Vec<&str> = metric
            .dimensions()
            .iter()
            .filter_map(|dimension| dimension.name())
            .collect();
        dimensions.sort();
        let expected: &[&str] = if metric.metric_name() == Some("RoundFailures") {
            &["Environment"]
        } else {
            &["Check", "Environment", "Language"]
        };
        assert_eq!(dimensions, expected, "{metric:?}");
    }
    let hello = [
        dimension("Check", "hello_world"),
        dimension("Language", "python"),
        dimension("Environment", "ci"),
    ];
    let now = std::time::SystemTime::now();
    let statistics = |name: &str, unit: StandardUnit| {
        cloudwatch
            .get_metric_statistics()
            .namespace("Coderun/Prober")
            .metric_name(name)
            .set_dimensions(Some(hello.to_vec()))
            .start_time((now - Duration::from_secs(600)).into())
            .end_time((now + Duration::from_secs(60)).into())
            .period(60)
            .statistics(Statistic::Maximum)
            .unit(unit)
            .send()
    };
    let success = statistics("CheckSuccess", StandardUnit::Count)
        .await
        .expect("statistics");
    let points = success.datapoints();
    assert_eq!(points.len(), 1, "{success:?}");
    assert_eq!(points[0].maximum(), Some(1.0));
    assert_eq!(points[0].unit(), Some(&StandardUnit::Count));
    let latency = statistics("CheckLatency", StandardUnit::Milliseconds)
        .await
        .expect("statistics");
    let latency_ms = latency.datapoints()[0].maximum().unwrap_or(0.0);
    assert!(latency_ms > 0.0 && latency_ms < 60_000.0, "{latency:?}");
    assert_eq!(
        latency.datapoints()[0].unit(),
        Some(&StandardUnit::Milliseconds)
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudwatch_that_cannot_be_reached_is_counted_and_the_round_completes() {
    show_errors();
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let stack = TestStack::start_with(StackOptions {
        // The verdict checks use python and c.
        languages: vec!["python".to_owned(), "c".to_owned()],
        ..StackOptions::default()
    })
    .await;
    // Nothing listens there.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let config = prober_config(&stack, &endpoint);
    let prober = coderun_prober::Prober::start(config, coderun_prober::WithOps)
        .await
        .expect("the prober starts");
    let round = prober.round().await;
    assert_eq!(round.failed(), 0, "{}", round.table());
    let page = metrics_page(&prober).await;
    assert_eq!(
        value_of(
            &page,
            "coderun_cloudwatch_publishes_total",
            &[("outcome", "failed")]
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        value_of(&page, "coderun_probe_rounds_total", &[]),
        Some(1.0)
    );
    prober.stop().await;
    stack.stop().await;
}
