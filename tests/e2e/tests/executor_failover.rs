//! kill -9 of an executor mid-run on a two-executor stack: each of its runs completes on the
//! other executor (or ends `internal_error` with a reason), none stays running, and the dead
//! executor's containers are removed by the one that is left.

use std::time::Duration;

use coderun_e2e::cleanup::docker_ps;
use coderun_e2e::processes::stack_with_two_executors;
use coderun_e2e::{count_running, create_runs, times_started, wait_all_terminal, wait_until};
use coderun_schema::run::Verdict;

/// Seconds after which a job an executor stopped acknowledging comes back.
const ACK_WAIT_SECS: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executors_runs_finish_on_the_other_and_none_stays_running() {
    let (stack, mut doomed, mut survivor) = stack_with_two_executors(
        "bash",
        "executor-doomed",
        "executor-survivor",
        2,
        ACK_WAIT_SECS,
    )
    .await;
    let doomed_label = doomed.label();

    let client = stack.client();
    let ids = create_runs(
        &client,
        "bash",
        (0..4).map(|_| "sleep 3; echo done".to_owned()),
    )
    .await;
    // Four runs on four slots: two on each executor, all running.
    wait_until(Duration::from_secs(30), || async {
        let running = count_running(&client, &ids).await?;
        let doomed_containers = docker_ps(&doomed_label, false);
        (running == 4 && !doomed_containers.is_empty()).then_some(())
    })
    .await
    .expect("all four runs start, two on the executor to kill");

    doomed.kill();
    let finished = wait_all_terminal(&client, &ids, Duration::from_secs(60))
        .await
        .expect("no run stays queued or running");
    let mut retried = 0;
    for run in &finished {
        let starts = times_started(&client, &run.id).await;
        println!(
            "{}: {:?} {:?} {:?}, started {starts} time(s)",
            run.id, run.status, run.verdict, run.error
        );
        assert_eq!(
            (run.verdict, run.stdout()),
            (Some(Verdict::Ok), "done\n"),
            "{run:?}"
        );
        retried += usize::from(starts == 2);
    }
    // The killed executor's two runs were delivered again and ran on the other one.
    assert_eq!(retried, 2, "runs started twice");

    let swept = wait_until(Duration::from_secs(20), || async {
        docker_ps(&doomed_label, true).is_empty().then_some(())
    })
    .await;
    assert!(swept.is_some(), "the killed executor's containers are left");
    assert_eq!(
        survivor.terminate(),
        Some(0),
        "the survivor drains and exits 0"
    );
    stack.stop().await;
}
