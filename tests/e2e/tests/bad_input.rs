//! Bad input gets a clear problem+json answer with the right 4xx, never a 500, and a run that
//! cannot be run still ends — as `internal_error`, never stuck.

use coderun_client::{ClientError, RawResponse};
use coderun_e2e::{problem_of, wait_until, StackOptions, TestStack, TENANT_B_KEY};
use coderun_schema::run::{RunRequest, RunStatus, Verdict};
use reqwest::Method;
use std::time::Duration;

async fn post_runs(
    client: &coderun_client::Client,
    content_type: Option<&str>,
    body: &[u8],
) -> RawResponse {
    client
        .send_raw(Method::POST, "/v1/runs", content_type, body.to_vec(), &[])
        .await
        .expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unauthenticated_invalid_and_oversized_requests_get_problems() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let json = Some("application/json");

    let malformed = post_runs(&client, json, b"{\"language\": \"python\", ").await;
    assert_eq!(malformed.status, 400);
    assert_eq!(problem_of(&malformed).status, 400);

    let not_json = post_runs(&client, Some("text/plain"), b"print(1)").await;
    assert_eq!(not_json.status, 415);
    problem_of(&not_json);

    let anonymous = stack.client_with_key("");
    let missing_key = post_runs(
        &anonymous,
        json,
        br#"{"language":"python","source":"print(1)"}"#,
    )
    .await;
    assert_eq!(missing_key.status, 401);
    problem_of(&missing_key);
    let wrong_key = stack
        .client_with_key("not-a-key")
        .languages()
        .await
        .expect_err("unknown key");
    assert_eq!(wrong_key.status(), Some(401));

    let unknown_language = client
        .run_and_wait(&RunRequest {
            language: "cobol".to_owned(),
            source: Some("DISPLAY 'HI'.".to_owned()),
            ..Default::default()
        })
        .await
        .expect_err("unknown language");
    assert_eq!(unknown_language.status(), Some(422));
    let problem = unknown_language.problem().expect("problem");
    assert_eq!(problem.errors[0].field, "language");
    assert!(problem.detail.as_deref().unwrap_or("").contains("cobol"));

    let huge = RunRequest {
        language: "python".to_owned(),
        source: Some("#".repeat(2 * 1024 * 1024)),
        ..Default::default()
    };
    let too_large = client.run_and_wait(&huge).await.expect_err("too large");
    assert_eq!(too_large.status(), Some(413), "{too_large:?}");

    let unknown_field = post_runs(
        &client,
        json,
        br#"{"language":"python","source":"print(1)","stdn":"x"}"#,
    )
    .await;
    assert_eq!(unknown_field.status, 422);
    assert!(String::from_utf8_lossy(&unknown_field.body).contains("stdn"));

    let over_max = coderun_e2e::max_limits("python").run.memory_mb + 1;
    let bad_limits = format!(
        r#"{{"language":"python","source":"1","limits":{{"run":{{"memory_mb":{over_max}}}}}}}"#
    );
    let bad_limits = post_runs(&client, json, bad_limits.as_bytes()).await;
    assert_eq!(bad_limits.status, 422);
    assert_eq!(
        problem_of(&bad_limits).errors[0].field,
        "limits.run.memory_mb"
    );

    let escaping = post_runs(
        &client,
        json,
        br#"{"language":"c","files":[{"name":"../main.c","content":""}]}"#,
    )
    .await;
    assert_eq!(escaping.status, 422);
    assert_eq!(problem_of(&escaping).errors[0].field, "files[0].name");

    let bad_wait = client
        .send_raw(
            Method::GET,
            "/v1/runs/run_x?wait_ms=soon",
            None,
            Vec::new(),
            &[],
        )
        .await
        .expect("answer");
    assert_eq!(bad_wait.status, 400);
    problem_of(&bad_wait);

    let no_route = client
        .send_raw(Method::GET, "/v2/nothing", None, Vec::new(), &[])
        .await
        .expect("answer");
    assert_eq!(no_route.status, 404);
    problem_of(&no_route);

    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_visible_only_to_its_tenant() {
    let stack = TestStack::start().await;
    let run = stack
        .client()
        .run_and_wait(&RunRequest {
            language: "bash".to_owned(),
            source: Some("echo secret".to_owned()),
            ..Default::default()
        })
        .await
        .expect("run");
    let other = stack.client_with_key(TENANT_B_KEY);
    let hidden = other.get_run(&run.id, None).await.expect_err("hidden");
    assert_eq!(hidden.status(), Some(404));
    let missing = stack
        .client()
        .get_run("run_01NOSUCHRUN", None)
        .await
        .expect_err("missing");
    assert_eq!(missing.status(), Some(404));
    match (hidden, missing) {
        (ClientError::Problem { problem: a, .. }, ClientError::Problem { problem: b, .. }) => {
            assert_eq!(
                a, b,
                "another tenant's run looks exactly like a missing one"
            )
        }
        other => panic!("expected two problems, got {other:?}"),
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_container_cannot_be_created_ends_as_internal_error() {
    // The executor starts with an agent that exists, then the agent disappears: Docker can no
    // longer start sandbox containers (the bind mount's source is gone).
    let directory = std::env::temp_dir().join(format!("coderun-e2e-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&directory).expect("temp dir");
    let agent = directory.join("coderun-agent");
    std::fs::copy(coderun_e2e::agent_path(), &agent).expect("copy the agent");
    let stack = TestStack::start_with(StackOptions {
        agent_path: agent.clone(),
        languages: vec!["bash".to_owned()],
        // Cold containers only: a warm one would have mounted the agent before it went.
        warm_per_language: 0,
        ..Default::default()
    })
    .await;
    std::fs::remove_dir_all(&directory).expect("remove the agent");

    // This executor serves bash only: python has no capacity anywhere in this stack, and the
    // answer says so at once, not after a wait.
    let asked = std::time::Instant::now();
    let python = stack
        .client()
        .send_raw(
            Method::POST,
            "/v1/runs",
            Some("application/json"),
            br#"{"language":"python","source":"print(1)"}"#.to_vec(),
            &[],
        )
        .await
        .expect("answer");
    let answered_in = asked.elapsed();
    println!(
        "no executor for python: {} in {answered_in:?}",
        python.status
    );
    assert_eq!(python.status, 503);
    assert!(python.retry_after.is_some(), "503 says when to retry");
    assert!(
        answered_in < std::time::Duration::from_secs(1),
        "{answered_in:?}"
    );
    problem_of(&python);

    let run = stack
        .client()
        .run_and_wait(&RunRequest {
            language: "bash".to_owned(),
            source: Some("echo never".to_owned()),
            ..Default::default()
        })
        .await
        .expect("an answer, not an error");
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.verdict, Some(Verdict::InternalError));
    assert!(run.error.is_some());
    assert!(run.run.is_none());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_killed_from_outside_ends_the_run_as_internal_error() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let accepted = client
        .create_run(
            &RunRequest {
                language: "bash".to_owned(),
                source: Some("sleep 5; echo never".to_owned()),
                ..Default::default()
            },
            &Default::default(),
        )
        .await
        .expect("accepted");
    let id = accepted.body.id;
    let busy = wait_until(Duration::from_secs(30), || async {
        let busy = stack.containers_of_run(&id);
        (!busy.is_empty()).then_some(busy)
    })
    .await
    .expect("the run takes a sandbox");
    assert_eq!(busy.len(), 1, "one sandbox for the run: {busy:?}");
    let killed = std::process::Command::new("docker")
        .args(["kill", &busy[0]])
        .status()
        .expect("docker kill");
    assert!(killed.success());

    let run = client.get_run(&id, Some(20_000)).await.expect("final").body;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.verdict, Some(Verdict::InternalError));
    assert!(run.error.is_some());
    stack.stop().await;
}
