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
