//! A tenant's `concurrent_runs` (accepted and not finished) and `queued_runs` (waiting for an
//! executor) quotas: a run over either is a 429 naming it, with `Retry-After`; another tenant is
//! unaffected; a run that ends frees its place.

use std::time::Duration;

use coderun_client::{Client, ClientError};
use coderun_e2e::{wait_until, StackOptions, TestStack, TENANT_B_KEY};
use coderun_schema::run::{RunRequest, RunStatus};

fn sleeper() -> RunRequest {
    coderun_e2e::long_running("bash", "sleep 60")
}

async fn create(client: &Client) -> Result<String, ClientError> {
    Ok(client
        .create_run(&sleeper(), &Default::default())
        .await?
        .body
        .id)
}

async fn wait_running(client: &Client, id: &str) {
    wait_until(Duration::from_secs(30), || async {
        let run = client.get_run(id, None).await.ok()?.body;
        (run.status == RunStatus::Running).then_some(())
    })
    .await
    .expect("the run starts");
}

/// The quota a refusal names, and its `Retry-After`.
fn refusal(error: ClientError) -> (String, Option<u64>) {
    match error {
        ClientError::Problem {
            status: 429,
            problem,
            retry_after,
        } => (problem.errors[0].field.clone(), retry_after),
        other => panic!("expected a 429, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_concurrent_runs_is_refused_until_one_ends() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        tenant_a_concurrent_runs: Some(2),
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let first = create(&client).await.expect("first accepted");
    let second = create(&client).await.expect("second accepted");
    let (quota, retry_after) = refusal(create(&client).await.expect_err("third refused"));
    assert_eq!(quota, "concurrent_runs");
    assert!(retry_after.is_some_and(|seconds| seconds >= 1));
    // Refused means not stored: the tenant's list holds only the two.
    assert_eq!(
        client.list_runs(None, None).await.expect("list").runs.len(),
        2
    );

    let tenant_b = stack.client_with_key(TENANT_B_KEY);
    let other = create(&tenant_b).await.expect("tenant B is unaffected");
    tenant_b.cancel_run(&other).await.expect("cancelled");

    wait_running(&client, &first).await;
    client.cancel_run(&first).await.expect("cancelled");
    let third = create(&client).await.expect("accepted once one ended");
    for id in [second, third] {
        client.cancel_run(&id).await.expect("cancelled");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_queued_runs_is_refused_while_running_runs_do_not_count() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        slots: 1,
        tenant_a_queued_runs: Some(1),
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let running = create(&client).await.expect("accepted");
    wait_running(&client, &running).await;
    // The one slot is taken: this one waits, and fills the queue.
    let waiting = create(&client).await.expect("accepted, queued");
    let (quota, _) = refusal(create(&client).await.expect_err("refused"));
    assert_eq!(quota, "queued_runs");

    // A cancelled queued run leaves the queue at once.
    client.cancel_run(&waiting).await.expect("cancelled");
    let next = create(&client)
        .await
        .expect("accepted once the queue has room");
    for id in [running, next] {
        client.cancel_run(&id).await.expect("cancelled");
    }
    stack.stop().await;
}
