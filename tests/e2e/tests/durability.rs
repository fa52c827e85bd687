//! No run is lost or stranded when Redis goes away under the executor: a finished run's result
//! is written once Redis is back, even on the job's last delivery.
//!
//! The stack gets a Redis of its own, which the test crashes while a program runs and starts
//! again (with its data) after the program has finished.

use std::time::Duration;

use coderun_e2e::private_redis::PrivateRedis;
use coderun_e2e::{exec_in, wait_until, StackOptions, TestStack};
use coderun_schema::run::{RunRequest, RunStatus, Verdict};

/// How long Redis stays down after the sandbox is gone: the executor tries to write the
/// result within it. It only decides whether the old behaviour is caught, never whether the
/// test passes: however long the outage, the result must arrive once Redis is back.
const OUTAGE_AFTER_THE_RUN: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_written_while_redis_is_down_arrives_once_it_is_back() {
    let mut redis = PrivateRedis::start();
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        redis_url: redis.url(),
        // The only delivery is the last: a job handed back to NATS would never come again.
        max_deliver: 1,
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let request = RunRequest {
        language: "bash".to_owned(),
        // Ends only once the test has crashed Redis and says so with /tmp/go.
        source: Some(
            "read -r name\nwhile [ ! -e /tmp/go ]; do sleep 0.05; done\necho \"hello $name\"\n"
                .to_owned(),
        ),
        stdin: "redis\n".to_owned(),
        ..Default::default()
    };
    let created = client
        .create_run(&request, &Default::default())
        .await
        .expect("the run is accepted");
    let id = created.body.id.clone();

    // Crash Redis while the program runs, let it finish, and keep Redis down until its
    // sandbox is gone.
    let sandbox = wait_until(Duration::from_secs(60), || async {
        stack.containers_of_run(&id).into_iter().next()
    })
    .await
    .expect("the run takes a sandbox");
    redis.crash();
    assert!(
        exec_in(&sandbox, &["touch", "/tmp/go"]),
        "the program is told to finish"
    );
    wait_until(Duration::from_secs(60), || async {
        stack.containers_of_run(&id).is_empty().then_some(())
    })
    .await
    .expect("the sandbox finishes");
    tokio::time::sleep(OUTAGE_AFTER_THE_RUN).await;
    redis.restart();

    let run = wait_until(Duration::from_secs(60), || async {
        let run = client.get_run(&id, Some(5_000)).await.ok()?.body;
        run.status.is_terminal().then_some(run)
    })
    .await
    .expect("the run is final once Redis is back, not left running");
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.verdict, Some(Verdict::Ok), "{run:?}");
    assert_eq!(run.run.as_ref().expect("run stage").stdout, "hello redis\n");
    stack.stop().await;
}
