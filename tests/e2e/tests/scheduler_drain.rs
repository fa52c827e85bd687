//! SIGTERM to the active scheduler under load, on a stack with two scheduler processes: it
//! exits 0, the standby takes the lease, and every run accepted before, during and after ends
//! `ok`, started once.

use std::time::{Duration, Instant};

use coderun_e2e::processes::{active_scheduler_pid, two_schedulers};
use coderun_e2e::steady_load::SteadyLoad;
use coderun_e2e::{wait_until, StackOptions, TestStack};

const LEASE_MS: u64 = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_scheduler_exits_cleanly_and_the_standby_carries_on() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        in_process_scheduler: false,
        ..StackOptions::default()
    })
    .await;
    let (bus, mut first, second) = two_schedulers(&stack, LEASE_MS).await;

    let client = stack.client();
    let load = SteadyLoad::start(&client, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = Instant::now();
    let exit = tokio::task::spawn_blocking(move || first.terminate())
        .await
        .expect("the wait for the scheduler");
    let exited_in = asked.elapsed();
    let took_over = wait_until(Duration::from_secs(30), || async {
        (active_scheduler_pid(&bus).await? == second.pid()).then(|| asked.elapsed())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let submitted = load.stop().await;
    let settled = submitted.settle(&client, Duration::from_secs(90)).await;
    println!(
        "SIGTERM to the active scheduler under load: {settled}; it exited {exit:?} after \
         {:.1} s; the standby took over {took_over:?} after the signal; refused {} x 503, \
         other answers {:?}",
        exited_in.as_secs_f64(),
        submitted.unavailable,
        submitted.other
    );
    assert_eq!(exit, Some(0), "the terminated scheduler exits 0");
    assert!(took_over.is_some(), "the standby never took the lease");
    assert_eq!(submitted.unavailable, 0, "submissions refused");
    submitted.assert_refusals_say_when();
    settled.assert_every_run_ok_once();
    drop(second);
    stack.stop().await;
}
