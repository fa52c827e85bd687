//! SIGTERM to a gateway (one of two replicas) while clients wait on it for their runs
//! (`wait=true`): it stops taking connections, answers every request it holds with the
//! finished run, and exits 0; every run accepted through it ends `ok`, started once.

use std::time::{Duration, Instant};

use coderun_client::CreateOptions;
use coderun_e2e::front_processes::GatewayProcess;
use coderun_e2e::{wait_until, StackOptions, TestStack};
use coderun_schema::run::{RunRequest, RunStatus, Verdict};

/// Clients waiting on the gateway when it gets SIGTERM.
const WAITING: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_stopped_under_load_answers_every_request_it_holds_and_exits_0() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        slots: 3,
        ..Default::default()
    })
    .await;
    let mut gateway = GatewayProcess::start(&stack).await;
    let client = gateway.client();
    let mut waiting = tokio::task::JoinSet::new();
    for index in 0..WAITING {
        let client = client.clone();
        waiting.spawn(async move {
            let request = RunRequest {
                language: "bash".to_owned(),
                source: Some(format!("sleep 1; echo waited-{index}")),
                ..Default::default()
            };
            let options = CreateOptions {
                wait: true,
                ..Default::default()
            };
            (index, client.create_run(&request, &options).await)
        });
    }
    // Every request has reached the gateway: its run exists (listed through the other one).
    let other = stack.client();
    let all_accepted = wait_until(Duration::from_secs(20), || async {
        let list = other.list_runs(None, Some(100)).await.ok()?;
        (list.runs.len() >= WAITING).then_some(())
    })
    .await;
    assert!(all_accepted.is_some(), "the runs never showed up");
    let signalled = Instant::now();
    gateway.signal_terminate();
    let exit = gateway.exited_within(Duration::from_secs(40)).await;
    let took = signalled.elapsed();
    let mut answers = Vec::new();
    while let Some(joined) = waiting.join_next().await {
        answers.push(joined.expect("a waiting client"));
    }
    answers.sort_by_key(|(index, _)| *index);
    let refused_after = client.health().await.err().map(|error| error.to_string());
    let runs = other
        .list_runs(None, Some(100))
        .await
        .expect("the runs")
        .runs;
    let mut duplicated = 0;
    for run in &runs {
        duplicated += usize::from(coderun_e2e::times_started(&other, &run.id).await > 1);
    }
    let ok_answers = answers
        .iter()
        .filter(|(index, answer)| {
            answer.as_ref().is_ok_and(|reply| {
                reply.status == 200
                    && reply.body.verdict == Some(Verdict::Ok)
                    && reply.body.stdout() == format!("waited-{index}\n")
            })
        })
        .count();
    println!(
        "SIGTERM to a gateway holding {WAITING} waiting requests: it exited {:?} after {:.1} s; \
         {ok_answers} of {WAITING} answered 200 with their finished run; {} run(s) in the stack, \
         {} completed, {duplicated} started more than once; a new request afterwards: {refused_after:?}",
        exit.and_then(|status| status.code()),
        took.as_secs_f64(),
        runs.len(),
        runs.iter().filter(|run| run.status == RunStatus::Completed).count()
    );
    for (index, answer) in &answers {
        if let Err(error) = answer {
            println!("  request {index}: {error}");
        }
    }
    assert_eq!(
        exit.and_then(|status| status.code()),
        Some(0),
        "the gateway's exit"
    );
    assert_eq!(
        ok_answers, WAITING,
        "a request it held was not answered with its run"
    );
    assert_eq!(runs.len(), WAITING);
    assert!(runs.iter().all(|run| run.status == RunStatus::Completed));
    assert_eq!(duplicated, 0);
    assert!(
        refused_after.is_some(),
        "the stopped gateway still answered"
    );
    stack.stop().await;
}
