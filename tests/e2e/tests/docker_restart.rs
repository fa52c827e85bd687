//! The Docker Engine restarted under load (as `systemctl restart docker` does: it stops every
//! container, exits, starts again): the executor says it is not ready while its engine is
//! away, makes its warm containers again once it is back, and carries on by itself; no
//! accepted run is lost or started twice.
//!
//! The executor runs as a process of its own against a dockerd of the test's own
//! ([`PrivateDocker`]), so the engine every other test uses is never touched.

use std::time::Duration;

use coderun_e2e::private_docker::PrivateDocker;
use coderun_e2e::processes::ExecutorProcess;
use coderun_e2e::steady_load::SteadyLoad;
use coderun_e2e::{wait_until, StackOptions, TestStack};

async fn executor_ready(executor: &ExecutorProcess) -> Option<u16> {
    let response = reqwest::get(format!("{}/readyz", executor.ops_url))
        .await
        .ok()?;
    Some(response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_restart_under_load_loses_no_run_and_the_executor_recovers() {
    let engine = tokio::task::spawn_blocking(|| {
        let engine = PrivateDocker::start();
        engine.load_image("coderun/lang-bash:latest");
        engine
    })
    .await
    .expect("the private engine");
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        in_process_executor: false,
        ..Default::default()
    })
    .await;
    let id = format!("engine-{}", stack.names.prefix());
    let executor = ExecutorProcess::start_with_env(
        &stack,
        &id,
        &["bash"],
        2,
        30,
        &[("DOCKER_HOST", engine.host())],
    );
    stack.wait_for_languages().await;
    let client = stack.client();

    let load = SteadyLoad::start(&client, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = {
        let mut engine = engine;
        let started = std::time::Instant::now();
        let engine = tokio::task::spawn_blocking(move || {
            engine.restart();
            engine
        });
        // While the engine is away, the executor says so.
        let not_ready = wait_until(Duration::from_secs(20), || async {
            executor_ready(&executor)
                .await
                .filter(|status| *status == 503)
        })
        .await;
        let engine = engine.await.expect("the restart");
        (engine, started.elapsed(), not_ready)
    };
    let (engine, took, not_ready) = restarted;
    let ready_again = wait_until(Duration::from_secs(30), || async {
        executor_ready(&executor)
            .await
            .filter(|status| *status == 200)
    })
    .await;
    let accepting_again = load.accepts_more(10, Duration::from_secs(60)).await;
    let submitted = load.stop().await;
    let settled = submitted.settle(&client, Duration::from_secs(120)).await;
    // Containers the restart stopped (warm ones, and any the engine made as it went away)
    // are removed once it is back: none is left exited or never started.
    let stopped = |status: &'static str| {
        engine
            .docker()
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=coderun.executor={id}"),
            ])
            .args(["--filter", &format!("status={status}")])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).lines().count())
            .unwrap_or(usize::MAX)
    };
    let none_stopped = wait_until(Duration::from_secs(30), || async {
        (stopped("exited") + stopped("created") == 0).then_some(())
    })
    .await;
    let warm_again = engine
        .docker()
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=coderun.executor={id}"),
        ])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).lines().count())
        .unwrap_or(0);
    println!(
        "dockerd restarted under load ({:.1} s): {settled}; executor not ready while it was away: {}, \
         ready again: {}; refused {} x 503 ({} with Retry-After), other {:?}; {warm_again} container(s) \
         of the executor running after; stopped ones all removed: {}",
        took.as_secs_f64(),
        not_ready.is_some(),
        ready_again.is_some(),
        submitted.unavailable,
        submitted.unavailable_with_retry_after,
        submitted.other,
        none_stopped.is_some()
    );
    for why in &settled.failed {
        println!("  not ok: {why}");
    }
    assert!(
        not_ready.is_some(),
        "the executor never said its engine was away"
    );
    assert!(
        ready_again.is_some(),
        "the executor did not become ready again"
    );
    assert!(
        accepting_again,
        "runs were not accepted again after the restart"
    );
    submitted.assert_refusals_say_when();
    settled.assert_every_run_ok_once();
    assert!(warm_again > 0, "the executor made no container again");
    assert!(
        none_stopped.is_some(),
        "containers left stopped: {} exited, {} created",
        stopped("exited"),
        stopped("created")
    );
    drop(executor);
    drop(engine);
    stack.stop().await;
}
