//! redis-server crashed and started again under load: while it is down the gateway answers
//! `503` with `Retry-After` (never a 500, never a 404 for a run it holds) and is not ready;
//! once it is back the gateway is ready again by itself, the runs finished before the crash are
//! all still there, and every run accepted around the outage ends `ok`, started once.
//!
//! The stack gets a Redis of its own with an append-only file (synced on every write here; the
//! local stack's is synced every second).

use std::time::Duration;

use coderun_e2e::observe::{all_ready_within, services_readiness};
use coderun_e2e::private_redis::PrivateRedis;
use coderun_e2e::steady_load::SteadyLoad;
use coderun_e2e::{StackOptions, TestStack};
use coderun_schema::run::{RunRequest, Verdict};

/// How long Redis stays down.
const OUTAGE: Duration = Duration::from_secs(3);

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
        let request = RunRequest {
            language: "bash".to_owned(),
            source: Some(format!("echo before-{index}")),
            ..Default::default()
        };
        let run = client.run_and_wait(&request).await.expect("a run before");
        assert_eq!(run.verdict, Some(Verdict::Ok), "{run:?}");
        before.push(run);
    }

    let load = SteadyLoad::start(&client, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.crash();
    tokio::time::sleep(OUTAGE / 2).await;
    let ready_while_down = client.ready().await.map_err(|error| error.status());
    let services_while_down = services_readiness(&stack).await;
    let earlier_while_down = client
        .get_run(&before[0].id, None)
        .await
        .map(|reply| reply.status)
        .map_err(|error| error.status());
    tokio::time::sleep(OUTAGE / 2).await;
    redis.restart();
    let ready_again = all_ready_within(&stack, Duration::from_secs(30)).await;
    // Runs are accepted again after the outage, not only before it.
    let accepting_again = load.accepts_more(5, Duration::from_secs(30)).await;
    let submitted = load.stop().await;
    let settled = submitted.settle(&client, Duration::from_secs(90)).await;

    let mut kept = 0;
    for earlier in &before {
        let run = client
            .get_run(&earlier.id, None)
            .await
            .map(|reply| reply.body);
        kept += usize::from(run.is_ok_and(|run| run.stdout() == earlier.stdout()));
    }
    println!(
        "redis-server crashed for {:.0} s under load: {settled}; refused while down: {} x 503 \
         ({} with Retry-After), other answers {:?}; readiness while down: gateway {ready_while_down:?}, scheduler and executor \
         {services_while_down:?}, \
         an earlier run while down {earlier_while_down:?}; earlier runs kept {kept} of {}",
        OUTAGE.as_secs_f64(),
        submitted.unavailable,
        submitted.unavailable_with_retry_after,
        submitted.other,
        before.len()
    );
    assert_eq!(
        ready_while_down,
        Err(Some(503)),
        "ready while Redis is down"
    );
    assert_eq!(
        earlier_while_down,
        Err(Some(503)),
        "a run read while Redis is down"
    );
    assert_eq!(
        services_while_down,
        [Some(503); 2],
        "scheduler, executor while down"
    );
    assert!(ready_again, "a service not ready again once Redis is back");
    assert!(submitted.unavailable > 0, "no 503 while Redis was down");
    assert_eq!(
        kept,
        before.len(),
        "runs finished before the crash are gone"
    );
    assert!(accepting_again, "no run accepted once Redis was back");
    submitted.assert_refusals_say_when();
    settled.assert_every_run_ok_once();
    stack.stop().await;
}
