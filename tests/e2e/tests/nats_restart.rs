//! nats-server stopped and started again under load: no accepted run is lost (the streams are
//! JetStream file storage), none runs twice, every one ends `ok`; while NATS is down the gateway
//! is not ready and a submission it cannot pass on is refused with `503` and `Retry-After`,
//! never a 500; once NATS is back every service goes on by itself.
//!
//! The stack gets a NATS of its own, so stopping it touches no other test.

use std::time::Duration;

use coderun_e2e::observe::{all_ready_within, services_readiness};
use coderun_e2e::private_nats::PrivateNats;
use coderun_e2e::steady_load::SteadyLoad;
use coderun_e2e::{StackOptions, TestStack};

/// How long NATS stays down.
const OUTAGE: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_under_load_loses_no_accepted_run() {
    let mut nats = PrivateNats::start();
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        nats_url: nats.url(),
        ..Default::default()
    })
    .await;
    let client = stack.client();

    let load = SteadyLoad::start(&client, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.stop();
    tokio::time::sleep(OUTAGE / 2).await;
    let ready_while_down = client.ready().await.map_err(|error| error.status());
    let services_while_down = services_readiness(&stack).await;
    tokio::time::sleep(OUTAGE / 2).await;
    nats.start_again();
    let ready_again = all_ready_within(&stack, Duration::from_secs(30)).await;
    // Runs are accepted again after the outage, not only before it.
    let accepting_again = load.accepts_more(5, Duration::from_secs(30)).await;
    let submitted = load.stop().await;
    let settled = submitted.settle(&client, Duration::from_secs(120)).await;
    println!(
        "nats-server stopped for {:.0} s under load: {settled}; refused: {} x 503 ({} with \
         Retry-After), other answers {:?}; readiness while down: gateway {ready_while_down:?}, scheduler and executor \
         {services_while_down:?}",
        OUTAGE.as_secs_f64(),
        submitted.unavailable,
        submitted.unavailable_with_retry_after,
        submitted.other,
    );
    assert_eq!(ready_while_down, Err(Some(503)), "ready while NATS is down");
    assert_eq!(
        services_while_down,
        [Some(503); 2],
        "scheduler, executor while down"
    );
    assert!(ready_again, "a service not ready again once NATS is back");
    assert!(accepting_again, "no run accepted once NATS was back");
    submitted.assert_refusals_say_when();
    settled.assert_every_run_ok_once();
    stack.stop().await;
}
