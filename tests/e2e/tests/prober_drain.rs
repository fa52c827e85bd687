//! SIGTERM to the prober in the middle of a round of checks: the round finishes and is
//! recorded within the prober's grace, it exits 0, and every run its checks created ends.

use std::time::{Duration, Instant};

use coderun_e2e::front_processes::ProberProcess;
use coderun_e2e::{wait_until, TestStack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prober_stopped_mid_round_finishes_the_round_and_exits_0() {
    let stack = TestStack::start().await;
    let mut prober = ProberProcess::start(&stack, &["bash", "python"], 20);
    let client = stack.client();
    // A round is under way once its first run exists.
    let started = wait_until(Duration::from_secs(30), || async {
        let list = client.list_runs(None, Some(10)).await.ok()?;
        (!list.runs.is_empty()).then_some(())
    })
    .await;
    assert!(started.is_some(), "the prober never created a run");
    let signalled = Instant::now();
    let exit = prober.terminate_within(Duration::from_secs(40)).await;
    let took = signalled.elapsed();
    let log = prober.log_text();
    let results = log.matches("check passed").count() + log.matches("check slow").count();
    let failed = log.matches("check failed").count();
    let abandoned = log.contains("abandoned at shutdown");
    let mid_round = log.contains("finishing the round in progress first");
    let runs = client
        .list_runs(None, Some(100))
        .await
        .expect("the runs")
        .runs;
    let ended = wait_until(Duration::from_secs(30), || async {
        for run in &runs {
            let run = client.get_run(&run.id, Some(1_000)).await.ok()?.body;
            if !run.status.is_terminal() {
                return None;
            }
        }
        Some(())
    })
    .await;
    println!(
        "SIGTERM to the prober mid-round: it exited {:?} after {:.1} s; the round logged {results} \
         check(s) passed and {failed} failed{}; {} run(s) of its checks, all ended: {}",
        exit.and_then(|status| status.code()),
        took.as_secs_f64(),
        if abandoned { ", then was abandoned" } else { "" },
        runs.len(),
        ended.is_some()
    );
    assert_eq!(
        exit.and_then(|status| status.code()),
        Some(0),
        "the prober's exit\n{log}"
    );
    assert!(
        mid_round,
        "the signal did not come in the middle of a round\n{log}"
    );
    assert!(
        !abandoned,
        "the round was abandoned within the grace\n{log}"
    );
    assert!(results > 0 && failed == 0, "the round's checks\n{log}");
    assert!(ended.is_some(), "a run of the prober's was left unfinished");
    stack.stop().await;
}
