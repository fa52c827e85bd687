//! A tenant over its request rate gets 429 with `Retry-After` and a problem naming the quota,
//! while another tenant is unaffected; once it waits as told, it is served again.

use std::time::Duration;

use coderun_e2e::{problem_of, StackOptions, TestStack, TENANT_A_KEY, TENANT_B_KEY};
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_waits_and_another_is_unaffected() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        // One request per second, three at once.
        tenant_a_rate: Some((1.0, 3)),
        ..Default::default()
    })
    .await;
    let tenant_a = stack.client();
    let tenant_b = stack.client_with_key(TENANT_B_KEY);
    let get = |client: &coderun_client::Client| {
        let client = client.clone();
        async move {
            client
                .send_raw(Method::GET, "/v1/languages", None, Vec::new(), &[])
                .await
                .expect("an answer")
        }
    };

    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..6 {
        let answer = get(&tenant_a).await;
        statuses.push(answer.status);
        if answer.status == 429 {
            refused.get_or_insert(answer);
        }
    }
    assert_eq!(&statuses[..3], [200, 200, 200], "the burst: {statuses:?}");
    let refused = refused.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    let problem = problem_of(&refused);
    assert_eq!(problem.kind, "urn:coderun:problem:over-quota");
    assert_eq!(problem.errors[0].field, "requests_per_second");
    let retry_after: u64 = refused
        .retry_after
        .as_deref()
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");

    for _ in 0..6 {
        assert_eq!(
            get(&tenant_b).await.status,
            200,
            "tenant B has no such limit"
        );
    }
    // The legacy API, its key in a parameter, counts against the same rate.
    let legacy = tenant_a
        .send_raw(
            Method::GET,
            &format!("/runners/get_status?id=run_x&api_key={TENANT_A_KEY}"),
            None,
            Vec::new(),
            &[],
        )
        .await
        .expect("an answer");
    assert_eq!(legacy.status, 429, "the legacy API shares the rate");
    assert!(legacy.retry_after.is_some());

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        get(&tenant_a).await.status,
        200,
        "served after waiting as told"
    );
    stack.stop().await;
}

/// The deployment's cap on a language's backlog: once that many runs wait for room, a new run
/// of the language is refused with 429 whoever sends it; every accepted run still finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_languages_backlog_over_the_deployments_cap_is_refused_for_every_tenant() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        slots: 1,
        max_backlog: 3,
        ..Default::default()
    })
    .await;
    // One slot and two jobs waiting at the executor: three runs released, the next ones wait
    // in the fair queue until the cap is reached.
    let run = || serde_json::json!({"language": "bash", "source": "sleep 2; echo ok"});
    // One run through first: the scheduler has heard the executor, so it has room.
    let warm_up = coderun_e2e::source_request("bash", "echo ready");
    stack
        .client()
        .run_and_wait(&warm_up)
        .await
        .expect("a first run");
    let first = stack
        .client()
        .create_batch(&(0..8).map(|_| run()).collect::<Vec<_>>(), None)
        .await
        .expect("answered");
    let accepted: Vec<String> = first
        .runs
        .iter()
        .filter_map(|item| item.id.clone())
        .collect();
    // The cap may already refuse the last of them: the scheduler queues them as they come.
    assert!(accepted.len() >= 6, "{first:#?}");
    for problem in first.runs.iter().filter_map(|item| item.problem.as_ref()) {
        assert_eq!(
            (problem.status, problem.errors[0].field.as_str()),
            (429, "max_backlog")
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = stack
        .client()
        .create_batch(&(0..4).map(|_| run()).collect::<Vec<_>>(), None)
        .await
        .expect("answered");
    for item in &second.runs {
        let problem = item.problem.as_ref().expect("refused over the cap");
        assert_eq!(
            (problem.status, problem.errors[0].field.as_str()),
            (429, "max_backlog")
        );
    }
    // Another tenant is held to the same cap.
    let other = stack
        .client_with_key(TENANT_B_KEY)
        .send_raw(
            Method::POST,
            "/v1/runs",
            Some("application/json"),
            br#"{"language":"bash","source":"echo b"}"#.to_vec(),
            &[],
        )
        .await
        .expect("an answer");
    assert_eq!(other.status, 429);
    assert!(other.retry_after.is_some());
    for id in &accepted {
        let run = stack
            .client()
            .get_run(id, Some(60_000))
            .await
            .expect("read")
            .body;
        assert_eq!(run.stdout(), "ok\n", "{run:?}");
    }
    stack.stop().await;
}
