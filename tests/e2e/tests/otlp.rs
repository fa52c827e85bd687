//! Optional OTLP export: with an endpoint configured (the standard `OTEL_EXPORTER_OTLP_*`
//! variables), each service's span of a run is exported, all in the run's one trace, each hop
//! the child of the one before: the client's span → the gateway's `accept` → the scheduler's
//! `dispatch` → the executor's `run`. The collector is the tests' HTTP receiver, taking
//! OTLP/HTTP JSON.

use std::collections::BTreeMap;

use coderun_e2e::receiver::Receiver;
use coderun_e2e::{StackOptions, TestStack};

/// One exported span: its ids and name.
#[derive(Debug, Clone)]
struct Exported {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

fn exported_spans(receiver: &Receiver) -> BTreeMap<String, Vec<Exported>> {
    let mut spans: BTreeMap<String, Vec<Exported>> = BTreeMap::new();
    for request in receiver.received() {
        assert_eq!(request.path, "/v1/traces");
        let body: serde_json::Value =
            serde_json::from_slice(&request.body).expect("an OTLP/JSON export");
        let resource_spans = body["resourceSpans"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for resource in resource_spans {
            for scope in resource["scopeSpans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                for span in scope["spans"].as_array().cloned().unwrap_or_default() {
                    let text = |key: &str| span[key].as_str().unwrap_or_default().to_lowercase();
                    spans.entry(text("name")).or_default().push(Exported {
                        trace_id: text("traceId"),
                        span_id: text("spanId"),
                        parent_span_id: text("parentSpanId"),
                    });
                }
            }
        }
    }
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_spans_are_exported_as_one_trace_each_hop_the_child_of_the_last() {
    let collector = Receiver::start(&[]).await;
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url(""));
    std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
    let provider = coderun_telemetry::logs::otlp_provider("coderun-test").expect("an exporter");
    assert!(coderun_telemetry::logs::init_exporting_only(&provider));

    let stack = TestStack::start_with(StackOptions {
        languages: vec!["python".to_owned()],
        ..StackOptions::default()
    })
    .await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let client_span = "b7ad6b7169203331";
    coderun_e2e::run_traced(
        &stack.client(),
        "print('exported')",
        &format!("00-{trace_id}-{client_span}-01"),
    )
    .await;
    stack.stop().await;
    let flushing = provider.clone();
    tokio::task::spawn_blocking(move || flushing.force_flush())
        .await
        .expect("joins")
        .expect("the spans are flushed");

    let spans = exported_spans(&collector);
    let one = |name: &str| -> Exported {
        let matching: Vec<_> = spans
            .get(name)
            .into_iter()
            .flatten()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "one `{name}` span in the trace: {spans:#?}"
        );
        matching[0].clone()
    };
    let accept = one("accept");
    let dispatch = one("dispatch");
    let run = one("run");
    assert_eq!(
        accept.parent_span_id, client_span,
        "the client's span is the parent"
    );
    assert_eq!(dispatch.parent_span_id, accept.span_id);
    assert_eq!(run.parent_span_id, dispatch.span_id);
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}
