//! `GET /v1/runs`: a tenant sees its own runs, newest first, a page at a time, and nobody
//! else's.

use coderun_e2e::{TestStack, TENANT_B_KEY};
use coderun_schema::run::RunRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_pages_through_its_own_runs_newest_first() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let other = stack.client_with_key(TENANT_B_KEY);
    assert!(client
        .list_runs(None, None)
        .await
        .expect("list")
        .runs
        .is_empty());

    let mut created = Vec::new();
    for index in 0..5 {
        let request = RunRequest {
            language: "bash".to_owned(),
            source: Some(format!("echo {index}")),
            ..Default::default()
        };
        created.push(client.run_and_wait(&request).await.expect("a run").id);
    }
    let theirs = other
        .run_and_wait(&RunRequest {
            language: "bash".to_owned(),
            source: Some("echo b".to_owned()),
            ..Default::default()
        })
        .await
        .expect("tenant B's run")
        .id;

    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    let first = client.list_runs(None, Some(2)).await.expect("page 1");
    let second = client
        .list_runs(first.next_cursor.as_deref(), Some(2))
        .await
        .expect("page 2");
    let third = client
        .list_runs(second.next_cursor.as_deref(), Some(2))
        .await
        .expect("page 3");
    let listed: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|page| page.runs.iter().map(|run| run.id.clone()))
        .collect();
    assert_eq!(listed, newest_first);
    assert!(third.next_cursor.is_none(), "the last page says so");
    assert_eq!(first.runs[0].stdout(), "4\n", "whole runs are listed");

    let all = client.list_runs(None, None).await.expect("one page");
    assert_eq!(all.runs.len(), 5);
    assert!(all.runs.iter().all(|run| run.id != theirs));
    let b = other.list_runs(None, None).await.expect("B's list");
    assert_eq!(
        b.runs.iter().map(|run| run.id.as_str()).collect::<Vec<_>>(),
        [theirs.as_str()]
    );

    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?cursor=abc", "cursor"),
    ] {
        let raw = client
            .send_raw(
                reqwest::Method::GET,
                &format!("/v1/runs{query}"),
                None,
                Vec::new(),
                &[],
            )
            .await
            .expect("an answer");
        let problem = coderun_e2e::problem_of(&raw);
        assert_eq!(problem.status, 422, "{query}");
        assert_eq!(problem.errors[0].field, field, "{query}");
    }
    stack.stop().await;
}
