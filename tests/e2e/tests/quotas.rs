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

/// The deployment's cap on a language's backlog: once that many runs of it are accepted and
/// not started, a new run of the language is refused with 429 whoever sends it, batch or not;
/// a retry of an accepted run (same `Idempotency-Key`) still gets its run; every accepted run
/// finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_languages_backlog_over_the_deployments_cap_is_refused_for_every_tenant() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        slots: 1,
        max_backlog: 3,
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let run = || serde_json::json!({"language": "bash", "source": "sleep 3; echo ok"});
    // The one slot is taken first, so that nothing starts while the cap is probed.
    let keyed = br#"{"language":"bash","source":"sleep 3; echo ok"}"#.to_vec();
    let key = [("Idempotency-Key", "backlog-first")];
    let first = client
        .send_raw(
            Method::POST,
            "/v1/runs",
            Some("application/json"),
            keyed.clone(),
            &key,
        )
        .await
        .expect("an answer");
    assert_eq!(
        first.status,
        202,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let first_id = serde_json::from_slice::<serde_json::Value>(&first.body).expect("json")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let started = tokio::time::Instant::now();
    loop {
        let status = client
            .get_run(&first_id, None)
            .await
            .expect("read")
            .body
            .status;
        if status != coderun_schema::run::RunStatus::Queued {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Eight at once: exactly three are accepted (the cap), the other five refused.
    let batch = client
        .create_batch(&(0..8).map(|_| run()).collect::<Vec<_>>(), None)
        .await
        .expect("answered");
    let accepted: Vec<String> = batch
        .runs
        .iter()
        .filter_map(|item| item.id.clone())
        .collect();
    assert_eq!(accepted.len(), 3, "{batch:#?}");
    for problem in batch.runs.iter().filter_map(|item| item.problem.as_ref()) {
        assert_eq!(
            (problem.status, problem.errors[0].field.as_str()),
            (429, "max_backlog")
        );
    }
    // Another tenant is held to the same cap, and told when to come back.
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
    assert_eq!(other.retry_after.as_deref(), Some("5"));
    // A retry of the accepted first run is answered with that run, not refused.
    let retried = client
        .send_raw(
            Method::POST,
            "/v1/runs",
            Some("application/json"),
            keyed,
            &key,
        )
        .await
        .expect("an answer");
    let retried_id = serde_json::from_slice::<serde_json::Value>(&retried.body).expect("json")
        ["id"]
        .as_str()
        .map(str::to_owned);
    assert_eq!(
        (retried.status, retried_id.as_deref()),
        (202, Some(first_id.as_str())),
        "{}",
        String::from_utf8_lossy(&retried.body)
    );
    for id in accepted.iter().chain([&first_id]) {
        let run = client.get_run(id, Some(60_000)).await.expect("read").body;
        assert_eq!(run.stdout(), "ok\n", "{run:?}");
    }
    // Once they have run, the language takes runs again.
    let again = coderun_e2e::source_request("bash", "echo ok");
    let after = client.run_and_wait(&again).await.expect("accepted again");
    assert_eq!(after.stdout(), "ok\n");
    stack.stop().await;
}
