//! kill -9 of an executor mid-run on a two-executor stack: each of its runs completes on the
//! other executor (or ends `internal_error` with a reason), none stays running, and the dead
//! executor's containers are removed by the one that is left.

use std::time::Duration;

use coderun_client::CreateOptions;
use coderun_e2e::cleanup::docker_ps;
use coderun_e2e::processes::ExecutorProcess;
use coderun_e2e::{times_started, wait_until, StackOptions, TestStack};
use coderun_schema::run::{RunRequest, RunStatus, Verdict};

/// Seconds after which a job an executor stopped acknowledging comes back.
const ACK_WAIT_SECS: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_executors_runs_finish_on_the_other_and_none_stays_running() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        in_process_executor: false,
        ..StackOptions::default()
    })
    .await;
    let prefix = stack.names.prefix().to_owned();
    let doomed_id = format!("executor-doomed-{prefix}");
    let mut doomed = ExecutorProcess::start(&stack, &doomed_id, &["bash"], 2, ACK_WAIT_SECS);
    let survivor_id = format!("executor-survivor-{prefix}");
    let mut survivor = ExecutorProcess::start(&stack, &survivor_id, &["bash"], 2, ACK_WAIT_SECS);
    let doomed_label = format!("label=coderun.executor={doomed_id}");
    stack.wait_for_languages().await;

    let client = stack.client();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let request = RunRequest {
            language: "bash".to_owned(),
            source: Some("sleep 3; echo done".to_owned()),
            ..Default::default()
        };
        let created = client
            .create_run(&request, &CreateOptions::default())
            .await
            .expect("accepted");
        ids.push(created.body.id);
    }
    // Four runs on four slots: two on each executor, all running.
    wait_until(Duration::from_secs(30), || async {
        let mut running = 0;
        for id in &ids {
            let run = client.get_run(id, None).await.ok()?.body;
            running += usize::from(run.status == RunStatus::Running);
        }
        let doomed_containers = docker_ps(&doomed_label, false);
        (running == 4 && !doomed_containers.is_empty()).then_some(())
    })
    .await
    .expect("all four runs start, two on the executor to kill");

    doomed.kill();
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
