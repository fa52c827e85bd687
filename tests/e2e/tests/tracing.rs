//! One run is one trace: the trace context travels gateway → scheduler → executor in NATS
//! headers, and the run's log lines in all three services carry its `run_id` and `trace_id`.
//! The services' JSON logs (production mode) are captured in this test process.

use std::io::Write;
use std::sync::{Arc, Mutex};

use coderun_e2e::{StackOptions, TestStack};
use tracing_subscriber::fmt::MakeWriter;

/// Every log line written in this process, as JSON.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// The services whose lines carry `field == value` in their current span.
fn services_logging(lines: &[serde_json::Value], field: &str, value: &str) -> Vec<String> {
    let mut services: Vec<String> = lines
        .iter()
        .filter(|line| line["span"][field] == value)
        .filter_map(|line| line["target"].as_str())
        .map(|target| target.split("::").next().unwrap_or(target).to_owned())
        .collect();
    services.sort();
    services.dedup();
    services
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_trace_id_is_in_the_logs_of_gateway_scheduler_and_executor() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .with_writer(captured.clone())
        .init();
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["python".to_owned()],
        ..StackOptions::default()
    })
    .await;
    let client = stack.client();

    // A client that sends its own trace context: the run joins that trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let run_id = coderun_e2e::run_traced(&client, "print('traced')", &traceparent).await;

    // A client that sends none: the gateway starts a trace, and every service uses it.
    let untraced = client
        .run_and_wait(&coderun_schema::run::RunRequest {
            language: "python".to_owned(),
            source: Some("print('untraced')".to_owned()),
            ..Default::default()
        })
        .await
        .expect("runs");

    // A cancel, a later request about the run, is logged under the run's trace too (its
    // `cancel` span joins the trace kept in the run's record).
    let long = client
        .create_run(
            &coderun_e2e::long_running("python", "import time\ntime.sleep(60)"),
            &coderun_client::CreateOptions::default(),
        )
        .await
        .expect("accepted")
        .body;
    let running = coderun_e2e::wait_until(std::time::Duration::from_secs(30), || async {
        let run = client.get_run(&long.id, None).await.ok()?.body;
        (run.status == coderun_schema::run::RunStatus::Running).then_some(())
    })
    .await;
    assert!(running.is_some(), "the run started");
    client.cancel_run(&long.id).await.expect("cancelled");
    stack.stop().await;

    let lines = captured.lines();
    let expected = ["coderun_executor", "coderun_gateway", "coderun_scheduler"];
    assert_eq!(
        services_logging(&lines, "trace_id", trace_id),
        expected,
        "the client's trace id is in every service's lines"
    );
    assert_eq!(services_logging(&lines, "run_id", &run_id), expected);
    for line in lines
        .iter()
        .filter(|line| line["span"]["run_id"] == run_id.as_str())
    {
        assert_eq!(line["span"]["trace_id"], trace_id, "{line}");
    }

    let untraced_ids: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|line| line["span"]["run_id"] == untraced.id.as_str())
        .filter_map(|line| line["span"]["trace_id"].as_str())
        .collect();
    assert_eq!(
        untraced_ids.len(),
        1,
        "one trace for the run: {untraced_ids:?}"
    );
    assert_ne!(untraced_ids.first(), Some(&trace_id));
    assert_eq!(services_logging(&lines, "run_id", &untraced.id), expected);

    let cancelled_traces: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|line| line["span"]["run_id"] == long.id.as_str())
        .filter_map(|line| line["span"]["trace_id"].as_str())
        .collect();
    assert_eq!(
        cancelled_traces.len(),
        1,
        "accepting, running and cancelling the run share one trace: {cancelled_traces:?}"
    );
    assert!(
        lines.iter().any(|line| line["span"]["name"] == "cancel"
            && line["span"]["run_id"] == long.id.as_str()
            && line["span"]["trace_id"].is_string()),
        "the cancel is logged with the run's trace: {:#?}",
        lines
            .iter()
            .filter(|line| line["fields"]["message"] == "run cancelled")
            .collect::<Vec<_>>()
    );
}
