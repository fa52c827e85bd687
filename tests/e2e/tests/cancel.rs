//! `POST /v1/runs/{id}/cancel`: a running run's sandbox is killed and the run ends
//! `cancelled`; a queued run never starts; cancelling again answers the same; a finished run
//! is a 409; another tenant's run is a 404.

use std::time::{Duration, Instant};

use coderun_e2e::{problem_of, wait_until, StackOptions, TestStack, TENANT_B_KEY};
use coderun_schema::messages::RunEventKind;
use coderun_schema::run::{RunRequest, RunStatus, Verdict};

fn bash(source: &str) -> RunRequest {
    RunRequest {
        language: "bash".to_owned(),
        source: Some(source.to_owned()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_run_is_stopped_and_its_sandbox_removed() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let sleeper = coderun_e2e::long_running("bash", "sleep 60; echo never");
    let id = client
        .create_run(&sleeper, &Default::default())
        .await
        .expect("accepted")
        .body
        .id;
    wait_until(Duration::from_secs(30), || async {
        (!stack.containers_of_run(&id).is_empty()).then_some(())
    })
    .await
    .expect("the run takes a sandbox");

    let asked = Instant::now();
    let cancelled = client.cancel_run(&id).await.expect("cancelled");
    assert_eq!(cancelled.status, 200);
    assert_eq!(cancelled.body.status, RunStatus::Cancelled);
    assert_eq!(cancelled.body.verdict, Some(Verdict::Cancelled));
    wait_until(Duration::from_secs(10), || async {
        stack.containers_of_run(&id).is_empty().then_some(())
    })
    .await
    .expect("the sandbox is killed");
    eprintln!(
        "cancelled run's sandbox gone {:?} after the request",
        asked.elapsed()
    );

    let again = client.cancel_run(&id).await.expect("cancel is idempotent");
    assert_eq!(again.body.status, RunStatus::Cancelled);
    assert_eq!(again.body.finished_at, cancelled.body.finished_at);
    let read = client.get_run(&id, None).await.expect("read").body;
    assert_eq!(read.status, RunStatus::Cancelled);
    assert!(
        read.run.is_none(),
        "no result was written over it: {read:#?}"
    );

    // The slot is free again.
    let next = client.run_and_wait(&bash("echo next")).await.expect("next");
    assert_eq!(next.stdout(), "next\n");

    let other_tenant = stack.client_with_key(TENANT_B_KEY).cancel_run(&id).await;
    assert_eq!(other_tenant.expect_err("not theirs").status(), Some(404));
    let finished = client.cancel_run(&next.id).await.expect_err("finished");
    assert_eq!(finished.status(), Some(409));
    assert_eq!(
        finished.problem().map(|problem| problem.kind.as_str()),
        Some("urn:coderun:problem:conflict")
    );
    let unknown = client.cancel_run("run_01NOSUCHRUN000000000000000").await;
    assert_eq!(unknown.expect_err("unknown").status(), Some(404));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_is_cancelled_at_once_and_never_starts() {
    let stack = TestStack::start_with(StackOptions {
        slots: 1,
        languages: vec!["bash".to_owned()],
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let blocker = client
        .create_run(&bash("sleep 60"), &Default::default())
        .await
        .expect("accepted")
        .body
        .id;
    wait_until(Duration::from_secs(30), || async {
        (!stack.containers_of_run(&blocker).is_empty()).then_some(())
    })
    .await
    .expect("the only slot is taken");
    let queued = client
        .create_run(&bash("echo should not run"), &Default::default())
        .await
        .expect("accepted")
        .body
        .id;
    let cancelled = client.cancel_run(&queued).await.expect("cancelled");
    assert_eq!(cancelled.body.status, RunStatus::Cancelled);
    assert!(cancelled.body.started_at.is_none());

    // Free the slot: the executor then takes the cancelled job and drops it.
    client.cancel_run(&blocker).await.expect("cancelled");
    let after = client
        .run_and_wait(&bash("echo after"))
        .await
        .expect("after");
    assert_eq!(after.stdout(), "after\n");
    let read = client.get_run(&queued, None).await.expect("read").body;
    assert_eq!(read.status, RunStatus::Cancelled);
    assert!(read.started_at.is_none() && read.run.is_none(), "{read:#?}");
    // Its events: queued, then the cancellation as the last, `completed` event; never running.
    let events = client
        .run_events(&queued, None)
        .await
        .expect("stream opens")
        .collect()
        .await
        .expect("stream reads");
    let kinds: Vec<_> = events.iter().map(|event| event.data.event).collect();
    assert_eq!(kinds, [RunEventKind::Queued, RunEventKind::Completed]);
    let last = events[1].data.run.as_ref().expect("the run");
    assert_eq!(
        (last.status, last.verdict),
        (RunStatus::Cancelled, Some(Verdict::Cancelled))
    );

    // A problem answer for a bad id is still problem+json.
    let raw = client
        .send_raw(
            reqwest::Method::POST,
            "/v1/runs/nope/cancel",
            None,
            Vec::new(),
            &[],
        )
        .await
        .expect("an answer");
    assert_eq!(problem_of(&raw).status, 404);
    stack.stop().await;
}
