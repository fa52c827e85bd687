//! SIGTERM to an executor under load on a two-executor stack: it stops taking jobs, finishes
//! the runs it has, removes its containers and exits 0; the rest of the load runs on the other
//! executor. No run fails, none is lost, none runs twice.

use std::time::{Duration, Instant};

use coderun_e2e::cleanup::docker_ps;
use coderun_e2e::processes::stack_with_two_executors;
use coderun_e2e::{count_running, create_runs, times_started, wait_all_terminal, wait_until};
use coderun_schema::run::Verdict;

/// Seconds after which a job an executor stopped acknowledging comes back.
const ACK_WAIT_SECS: u64 = 3;
/// Runs in the load: three rounds of the two executors' four slots.
const RUNS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_executor_finishes_its_runs_and_the_rest_run_elsewhere() {
    let (stack, mut draining, mut staying) = stack_with_two_executors(
        "bash",
        "executor-draining",
        "executor-staying",
        2,
        ACK_WAIT_SECS,
    )
    .await;
    let draining_label = draining.label();

    let client = stack.client();
    let ids = create_runs(
        &client,
        "bash",
        (0..RUNS).map(|index| format!("sleep 1; echo done {index}")),
    )
    .await;
    // The executor to stop has runs in flight (containers of runs, not its warm one), and
    // more runs wait for slots.
    let in_flight_there = wait_until(Duration::from_secs(30), || async {
        let running = count_running(&client, &ids).await?;
        let labelled = docker_ps(&draining_label, false);
        let there = ids
            .iter()
            .filter(|id| {
                let containers = stack.containers_of_run(id);
                containers
                    .iter()
                    .any(|container| labelled.contains(container))
            })
            .count();
        (running >= 2 && there >= 1).then_some(there)
    })
    .await
    .expect("runs start, some on the executor to stop");

    let asked = Instant::now();
    let exit = tokio::task::spawn_blocking(move || draining.terminate())
        .await
        .expect("the wait for the executor");
    let drained_in = asked.elapsed();
    // It removed its own containers before exiting: nobody else had to.
    let left = docker_ps(&draining_label, true);

    let finished = wait_all_terminal(&client, &ids, Duration::from_secs(60)).await;
    let completed = finished.as_ref().map_or(0, Vec::len);
    let mut failed = 0;
    let mut duplicated = 0;
    for (index, run) in finished.iter().flatten().enumerate() {
        let starts = times_started(&client, &run.id).await;
        let expected = format!("done {index}\n");
        if (run.verdict, run.stdout()) != (Some(Verdict::Ok), expected.as_str()) {
            failed += 1;
            println!(
                "{}: {:?} {:?} {:?}",
                run.id, run.status, run.verdict, run.error
            );
        }
        duplicated += usize::from(starts > 1);
    }
    println!(
        "SIGTERM to an executor running {in_flight_there} run(s) under load: accepted {RUNS}, completed {completed}, failed \
         {failed}, lost {}, duplicated {duplicated}; it exited {exit:?} after {:.1} s, \
         leaving {} container(s)",
        RUNS - completed,
        drained_in.as_secs_f64(),
        left.len()
    );
    assert_eq!(exit, Some(0), "the terminated executor drains and exits 0");
    assert!(left.is_empty(), "its containers are left: {left:?}");
    assert_eq!(completed, RUNS, "runs never finished");
    assert_eq!(failed, 0, "runs failed");
    assert_eq!(duplicated, 0, "runs started more than once");
    assert_eq!(staying.terminate(), Some(0), "the other executor exits 0");
    stack.stop().await;
}
