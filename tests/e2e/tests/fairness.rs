//! Fair share across tenants: one tenant's batch of hundreds of runs does not hold up another
//! tenant's few runs submitted after it.

use std::time::Duration;

use coderun_client::Client;
use coderun_e2e::{StackOptions, TestStack, TENANT_B_KEY};
use coderun_schema::batch::MAX_BATCH_RUNS;
use coderun_schema::run::{RunStatus, Verdict};
use serde_json::json;

/// Submits `count` bash runs in batches; their ids, in order.
async fn submit(client: &Client, count: usize, word: &str) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let size = (count - ids.len()).min(MAX_BATCH_RUNS);
        let runs: Vec<_> = (0..size)
            .map(|_| json!({"language": "bash", "source": format!("echo {word}")}))
            .collect();
        let answer = client.create_batch(&runs, None).await.expect("answered");
        for item in answer.runs {
            ids.push(
                item.id
                    .unwrap_or_else(|| panic!("refused: {:?}", item.problem)),
            );
        }
    }
    ids
}

/// Each run's queue time in milliseconds, once it finished as expected.
async fn queue_times(client: &Client, ids: &[String], stdout: &str) -> Vec<u64> {
    let mut times = Vec::new();
    for id in ids {
        let mut run = client.get_run(id, Some(30_000)).await.expect("read").body;
        for _ in 0..10 {
            if run.status.is_terminal() {
                break;
            }
            run = client.get_run(id, Some(30_000)).await.expect("read").body;
        }
        assert_eq!(
            (run.status, run.verdict),
            (RunStatus::Completed, Some(Verdict::Ok)),
            "{run:?}"
        );
        assert_eq!(run.stdout(), stdout);
        times.push(run.queue_ms.expect("a started run has a queue time"));
    }
    times
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenants_batch_does_not_hold_up_another_tenants_runs() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        isolation: coderun_executor::config::Isolation::Fast,
        ..StackOptions::default()
    })
    .await;
    let (a, b) = (stack.client(), stack.client_with_key(TENANT_B_KEY));
    let a_runs = submit(&a, 500, "a").await;
    let b_runs = submit(&b, 5, "b").await;
    let b_times = queue_times(&b, &b_runs, "b\n").await;
    let a_times = tokio::time::timeout(Duration::from_secs(600), queue_times(&a, &a_runs, "a\n"))
        .await
        .expect("tenant A's runs finish");
    let (a_median, b_median) = (median(a_times), median(b_times.clone()));
    println!(
        "queue time, median: tenant A (500 runs first) {a_median} ms, tenant B (5 runs after) \
         {b_median} ms; B's each: {b_times:?}"
    );
    assert!(
        b_median * 10 < a_median,
        "B's median queue time {b_median} ms is not under a tenth of A's {a_median} ms"
    );
    stack.stop().await;
}
