//! redis-server crashed and started again under load: while it is down the gateway answers
//! `503` with `Retry-After` (never a 500, never a 404 for a run it holds) and is not ready;
//! once it is back the gateway is ready again by itself, the runs finished before the crash are
//! all still there, and every run accepted around the outage ends `ok`, started once.
//!
//! The stack gets a Redis of its own with an append-only file, as the local stack's Redis has.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coderun_e2e::private_redis::PrivateRedis;
use coderun_e2e::{times_started, wait_all_terminal, wait_until, StackOptions, TestStack};
use coderun_schema::run::{RunRequest, Verdict};

/// How long Redis stays down.
const OUTAGE: Duration = Duration::from_secs(3);
/// The pause between two submissions of the load.
const EVERY: Duration = Duration::from_millis(50);

/// What the load's submissions got.
#[derive(Debug, Default)]
struct Submitted {
    /// Accepted runs: id and the line the program must print.
    accepted: Vec<(String, String)>,
    /// `503` answers, and how many of them said when to come back.
    unavailable: usize,
    unavailable_with_retry_after: usize,
    /// Any other failure: status (0 for no answer) and why.
    other: Vec<(u16, String)>,
}

fn echo(line: &str) -> RunRequest {
    RunRequest {
        language: "bash".to_owned(),
        source: Some(format!("echo {line}")),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_load_loses_no_run_and_the_gateway_recovers() {
    let mut redis = PrivateRedis::start();
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        redis_url: redis.url(),
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let mut before = Vec::new();
    for index in 0..5 {
        let run = client
            .run_and_wait(&echo(&format!("before-{index}")))
            .await
            .expect("a run before the outage");
        assert_eq!(run.verdict, Some(Verdict::Ok), "{run:?}");
        before.push(run);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut submitted = Submitted::default();
            let mut index = 0;
            while !stop.load(Ordering::SeqCst) {
                let line = format!("load-{index}");
                index += 1;
                match client.create_run(&echo(&line), &Default::default()).await {
                    Ok(reply) => submitted
                        .accepted
                        .push((reply.body.id, format!("{line}\n"))),
                    Err(coderun_client::ClientError::Problem {
                        status: 503,
                        retry_after,
                        ..
                    }) => {
                        submitted.unavailable += 1;
                        submitted.unavailable_with_retry_after +=
                            usize::from(retry_after.is_some());
                    }
                    Err(error) => submitted
                        .other
                        .push((error.status().unwrap_or(0), error.to_string())),
                }
                tokio::time::sleep(EVERY).await;
            }
            submitted
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    redis.crash();
    tokio::time::sleep(OUTAGE / 2).await;
    let ready_while_down = client.ready().await.map_err(|error| error.status());
    let earlier_while_down = client
        .get_run(&before[0].id, None)
        .await
        .map(|reply| reply.status)
        .map_err(|error| error.status());
    tokio::time::sleep(OUTAGE / 2).await;
    redis.restart();
    let ready_again = wait_until(Duration::from_secs(30), || async {
        client.ready().await.ok()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let submitted = load.await.expect("the load");

    let ids: Vec<String> = submitted
        .accepted
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    let finished = wait_all_terminal(&client, &ids, Duration::from_secs(90)).await;
    let mut failed = Vec::new();
    let mut duplicated = 0;
    for (run, (_, line)) in finished.iter().flatten().zip(&submitted.accepted) {
        if (run.verdict, run.stdout()) != (Some(Verdict::Ok), line.as_str()) {
            failed.push(format!("{}: {:?} {:?}", run.id, run.verdict, run.error));
        }
        duplicated += usize::from(times_started(&client, &run.id).await > 1);
    }
    let mut kept = 0;
    for earlier in &before {
        let run = client
            .get_run(&earlier.id, None)
            .await
            .map(|reply| reply.body);
        kept += usize::from(run.is_ok_and(|run| run.stdout() == earlier.stdout()));
    }
    let completed = finished.as_ref().map_or(0, Vec::len);
    println!(
        "redis-server crashed for {:.0} s under load: accepted {}, completed {completed}, \
         failed {}, lost {}, duplicated {duplicated}; refused while down: {} x 503 ({} with \
         Retry-After), other answers {:?}; readiness while down {ready_while_down:?}, an \
         earlier run while down {earlier_while_down:?}; earlier runs kept {kept} of {}",
        OUTAGE.as_secs_f64(),
        ids.len(),
        failed.len(),
        ids.len() - completed,
        submitted.unavailable,
        submitted.unavailable_with_retry_after,
        submitted.other,
        before.len()
    );
    assert_eq!(
        ready_while_down,
        Err(Some(503)),
        "not ready while Redis is down"
    );
    assert_eq!(
        earlier_while_down,
        Err(Some(503)),
        "a run read while Redis is down"
    );
    assert!(ready_again.is_some(), "ready again once Redis is back");
    assert!(submitted.unavailable > 0, "no 503 while Redis was down");
    assert_eq!(
        submitted.unavailable_with_retry_after, submitted.unavailable,
        "a 503 without Retry-After"
    );
    assert!(submitted.other.is_empty(), "{:?}", submitted.other);
    assert_eq!(completed, ids.len(), "runs never finished");
    assert!(failed.is_empty(), "runs failed: {failed:?}");
    assert_eq!(duplicated, 0, "runs started more than once");
    assert_eq!(
        kept,
        before.len(),
        "runs finished before the crash are gone"
    );
    stack.stop().await;
}
