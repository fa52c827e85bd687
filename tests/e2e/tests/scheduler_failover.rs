//! kill -9 of the active scheduler while 200 runs are queued, on a stack with two scheduler
//! processes: every run completes, and each is executed once (one `running` event each, and
//! the executor finished 200 runs).

use std::time::{Duration, Instant};

use coderun_e2e::observe::samples;
use coderun_e2e::processes::{active_scheduler_pid, two_schedulers};
use coderun_e2e::{times_started, wait_until, StackOptions, TestStack};
use coderun_schema::run::{RunStatus, Verdict};

const LEASE_MS: u64 = 3000;
const RUNS: usize = 200;

async fn executor_finished(stack: &TestStack) -> f64 {
    let page = reqwest::get(format!("{}/metrics", stack.executor_ops_url))
        .await
        .expect("the executor's metrics")
        .text()
        .await
        .expect("a page");
    samples(&page)
        .iter()
        .filter(|sample| sample.name == "coderun_runs_completed_total")
        .map(|sample| sample.value)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_scheduler_loses_no_run_and_runs_none_twice() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        isolation: coderun_executor::config::Isolation::Fast,
        in_process_scheduler: false,
        ..StackOptions::default()
    })
    .await;
    let (bus, mut first, second) = two_schedulers(&stack, LEASE_MS).await;

    let client = stack.client();
    let mut ids = Vec::new();
    for _ in 0..RUNS / 100 {
        let runs: Vec<_> = (0..100)
            .map(|_| serde_json::json!({"language": "bash", "source": "echo once"}))
            .collect();
        let answer = client.create_batch(&runs, None).await.expect("answered");
        ids.extend(
            answer
                .runs
                .into_iter()
                .map(|item| item.id.expect("accepted")),
        );
    }
    let mut queued = 0;
    for id in &ids {
        let run = client.get_run(id, None).await.expect("read").body;
        queued += usize::from(run.status == RunStatus::Queued);
    }
    first.kill();
    let killed = Instant::now();
    let took_over = wait_until(Duration::from_secs(30), || async {
        (active_scheduler_pid(&bus).await? == second.pid()).then_some(())
    })
    .await;
    assert!(took_over.is_some(), "the standby never took the lease");
    let takeover = killed.elapsed();

    let mut twice = Vec::new();
    for id in &ids {
        let run = client.get_run(id, Some(60_000)).await.expect("read").body;
        assert_eq!(
            (run.status, run.verdict, run.stdout()),
            (RunStatus::Completed, Some(Verdict::Ok), "once\n"),
            "{run:?}"
        );
        let starts = times_started(&client, id).await;
        if starts != 1 {
            twice.push((id.clone(), starts));
        }
    }
    let finished = executor_finished(&stack).await;
    println!(
        "{RUNS} runs, {queued} still queued when the active scheduler was killed; the standby \
         took over after {takeover:?}; all completed; the executor finished {finished} runs; \
         started other than once: {twice:?}"
    );
    assert!(twice.is_empty(), "runs started more than once: {twice:?}");
    assert_eq!(finished, RUNS as f64, "executions");
    assert!(queued > 0, "the kill came after every run had started");
    drop(second);
    stack.stop().await;
}
