//! SIGTERM to an executor under load on a two-executor stack: it stops taking jobs, finishes
//! the runs it has, removes its containers and exits 0; the rest of the load runs on the other
//! executor. No run fails, none is lost, none runs twice.

use std::time::{Duration, Instant};

use coderun_client::CreateOptions;
use coderun_e2e::cleanup::docker_ps;
use coderun_e2e::processes::ExecutorProcess;
use coderun_e2e::{times_started, wait_until, StackOptions, TestStack};
use coderun_schema::run::{RunRequest, RunStatus, Verdict};

/// Seconds after which a job an executor stopped acknowledging comes back.
const ACK_WAIT_SECS: u64 = 3;
/// Runs in the load: three rounds of the two executors' four slots.
const RUNS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_executor_finishes_its_runs_and_the_rest_run_elsewhere() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        in_process_executor: false,
        ..StackOptions::default()
    })
    .await;
    let prefix = stack.names.prefix().to_owned();
    let draining_id = format!("executor-draining-{prefix}");
    let mut draining = ExecutorProcess::start(&stack, &draining_id, &["bash"], 2, ACK_WAIT_SECS);
    let staying_id = format!("executor-staying-{prefix}");
    let mut staying = ExecutorProcess::start(&stack, &staying_id, &["bash"], 2, ACK_WAIT_SECS);
    let draining_label = format!("label=coderun.executor={draining_id}");
    stack.wait_for_languages().await;

    let client = stack.client();
    let mut ids = Vec::new();
    for index in 0..RUNS {
        let request = RunRequest {
            language: "bash".to_owned(),
            source: Some(format!("sleep 1; echo done {index}")),
            ..Default::default()
        };
        let created = client
            .create_run(&request, &CreateOptions::default())
            .await
            .expect("accepted");
        ids.push(created.body.id);
    }
    // The executor to stop has runs in flight, and more runs wait for slots.
    wait_until(Duration::from_secs(30), || async {
        let mut running = 0;
        for id in &ids {
            let run = client.get_run(id, None).await.ok()?.body;
            running += usize::from(run.status == RunStatus::Running);
        }
        let running_there = docker_ps(&draining_label, false).len();
        (running >= 2 && running_there >= 1).then_some(())
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

    let finished = wait_until(Duration::from_secs(60), || async {
        let mut runs = Vec::new();
        for id in &ids {
            let run = client.get_run(id, Some(1_000)).await.ok()?.body;
            if !run.status.is_terminal() {
                return None;
            }
            runs.push(run);
        }
        Some(runs)
    })
    .await;
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
        "SIGTERM to an executor under load: accepted {RUNS}, completed {completed}, failed \
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
