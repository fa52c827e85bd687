//! What the gateway refuses before anything runs: requests without a known key (before their
//! body is even read), file names that collide or hide once normalised, and requests whose
//! limits each pass but whose totals are over the per-request output or wall-time budget.
//! Every refusal is a problem naming the field; none reaches an executor.

use std::time::Instant;

use coderun_client::RawResponse;
use coderun_e2e::{problem_of, TestStack};
use reqwest::Method;

async fn post(client: &coderun_client::Client, body: Vec<u8>) -> RawResponse {
    client
        .send_raw(
            Method::POST,
            "/v1/runs",
            Some("application/json"),
            body,
            &[],
        )
        .await
        .expect("an answer")
}

fn fields(response: &RawResponse) -> Vec<String> {
    problem_of(response)
        .errors
        .into_iter()
        .map(|error| error.field)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_request_is_refused_before_its_body_is_read() {
    let stack = TestStack::start().await;
    let anonymous = stack.client_with_key("");
    // Ten MiB that are not JSON at all: parsed first, this would be a 400 or a 413.
    let garbage = vec![b'{'; 10 * 1024 * 1024 - 1];
    let started = Instant::now();
    let refused = post(&anonymous, garbage.clone()).await;
    eprintln!("401 for 10 MiB of garbage in {:?}", started.elapsed());
    assert_eq!(refused.status, 401);
    problem_of(&refused);
    let wrong_key = post(&stack.client_with_key("not-a-key"), garbage).await;
    assert_eq!(wrong_key.status, 401);
    // With a key, the same body is read and refused for what it is.
    let known = post(&stack.client(), b"{".to_vec()).await;
    assert_eq!(known.status, 400);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_names_that_collide_or_hide_once_normalised_are_refused() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let long_component = "x".repeat(256);
    let long_path = format!("{}/main.c", ["d"; 520].join("/"));
    let cases: Vec<(Vec<&str>, usize)> = vec![
        (vec!["main.c", "a/./b.c"], 1),
        (vec!["main.c", "a//b.c"], 1),
        (vec!["main.c", "lib/."], 1),
        (vec!["x", "x/y.c", "main.c"], 0),
        (vec!["main.c", "dir/util.c", "dir"], 2),
        (vec!["main.c", "util.c", "util.c"], 2),
        (vec!["main.c", &long_component], 1),
        (vec!["main.c", &long_path], 1),
        (vec!["main.c", "evil\u{202E}c.h"], 1),
        (vec!["main.c", "tab\there.c"], 1),
    ];
    for (names, bad) in cases {
        let files: Vec<serde_json::Value> = names
            .iter()
            .map(|name| serde_json::json!({"name": name, "content": "int main(void) { return 0; }\n"}))
            .collect();
        let body = serde_json::json!({"language": "c", "files": files});
        let refused = post(&client, serde_json::to_vec(&body).expect("json")).await;
        assert_eq!(refused.status, 422, "{names:?}");
        assert_eq!(
            fields(&refused),
            vec![format!("files[{bad}].name")],
            "{names:?}"
        );
    }
    // A plain multi-file program still runs.
    let body = serde_json::json!({"language": "c", "files": [
        {"name": "main.c", "content": "#include \"lib/v.h\"\n#include <stdio.h>\nint main(void) { printf(\"%d\\n\", V); return 0; }\n"},
        {"name": "lib/v.h", "content": "#define V 42\n"},
    ]});
    let run = client
        .run_and_wait(&serde_json::from_value(body).expect("request"))
        .await
        .expect("runs");
    assert_eq!(run.stdout(), "42\n", "{run:#?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_output_or_wall_budget_are_refused_up_front() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let tests = |count: usize| -> Vec<serde_json::Value> {
        (0..count)
            .map(|_| serde_json::json!({"stdin": ""}))
            .collect()
    };
    // Each limit is within its maximum; the totals are not.
    let max = coderun_e2e::max_limits("bash").run;
    let flood = serde_json::json!({"language": "bash", "source": "yes", "tests": tests(100),
        "limits": {"run": {"output_kb": max.output_kb}}});
    let refused = post(&client, serde_json::to_vec(&flood).expect("json")).await;
    assert_eq!(refused.status, 422);
    assert_eq!(fields(&refused), ["tests", "limits.run.output_kb"]);

    let sleepers = serde_json::json!({"language": "bash", "source": "sleep 60", "tests": tests(100),
        "limits": {"run": {"wall_ms": max.wall_ms}}});
    let refused = post(&client, serde_json::to_vec(&sleepers).expect("json")).await;
    assert_eq!(refused.status, 422);
    assert_eq!(fields(&refused), ["tests", "limits.run.wall_ms"]);
    let detail = problem_of(&refused).detail.unwrap_or_default();
    assert!(detail.contains("budget"), "{detail}");

    // One run at the maximum output fits the budget, and 100 tests at the defaults do.
    let one = serde_json::json!({"language": "bash", "source": "echo ok",
        "limits": {"run": {"output_kb": max.output_kb}}});
    let run = client
        .run_and_wait(&serde_json::from_value(one).expect("request"))
        .await
        .expect("accepted");
    assert_eq!(run.stdout(), "ok\n");
    let many = serde_json::json!({"language": "bash", "source": "echo ok", "tests": tests(100)});
    let run = client
        .run_and_wait(&serde_json::from_value(many).expect("request"))
        .await
        .expect("accepted");
    assert_eq!(run.tests.len(), 100);
    stack.stop().await;
}
