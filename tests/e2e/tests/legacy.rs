//! The legacy runner API, used the way an older integration does: create with a form or JSON
//! (long-polling or not), then `get_status` and `get_details`, with the field names and value
//! formats of the old protocol; runs are the same runs as `/v1`'s.

use coderun_client::{Client, RawResponse};
use coderun_e2e::{problem_of, TestStack, TENANT_A_KEY, TENANT_B_KEY};
use reqwest::Method;
use serde_json::Value;

async fn form(client: &Client, path: &str, fields: &[(&str, &str)]) -> RawResponse {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    client
        .send_raw(
            Method::POST,
            path,
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
            &[],
        )
        .await
        .expect("an answer")
}

async fn get(client: &Client, path: &str, id: &str, key: &str) -> RawResponse {
    let query = format!("{path}?id={id}&api_key={key}");
    client
        .send_raw(Method::GET, &query, None, Vec::new(), &[])
        .await
        .expect("an answer")
}

fn json(response: &RawResponse) -> Value {
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    serde_json::from_slice(&response.body).expect("JSON")
}

fn is_seconds(value: &Value) -> bool {
    value.as_str().is_some_and(|text| {
        let (whole, decimals) = text.split_once('.').unwrap_or(("", ""));
        !whole.is_empty()
            && decimals.len() == 2
            && text.replace('.', "").bytes().all(|b| b.is_ascii_digit())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_integration_creates_polls_and_reads_details_unchanged() {
    let stack = TestStack::start().await;
    // No key in headers: the old protocol carries it as a parameter.
    let anonymous = stack.client_with_key("");

    // Python from a form, long-polling.
    let created = json(
        &form(
            &anonymous,
            "/runners/create",
            &[
                ("source_code", "print(input()[::-1])"),
                ("language", "python3"),
                ("input", "hello\n"),
                ("longpoll", "true"),
                ("longpoll_timeout", "30"),
                ("api_key", TENANT_A_KEY),
            ],
        )
        .await,
    );
    assert_eq!(created["status"], "completed", "{created}");
    assert!(created["error"].is_null());
    let id = created["id"].as_str().expect("an id").to_owned();
    let status = json(&get(&anonymous, "/runners/get_status.json", &id, TENANT_A_KEY).await);
    assert_eq!(
        (status["id"].as_str(), status["status"].as_str()),
        (Some(id.as_str()), Some("completed"))
    );
    let details = json(&get(&anonymous, "/runners/get_details", &id, TENANT_A_KEY).await);
    assert_eq!(details["stdout"], "olleh\n");
    assert_eq!(details["result"], "success");
    assert_eq!(details["exit_code"], 0);
    assert_eq!(details["language"], "python");
    assert!(is_seconds(&details["time"]), "{details}");
    assert!(
        details["memory"]
            .as_u64()
            .is_some_and(|bytes| bytes > 1024 * 1024),
        "{details}"
    );
    assert!(
        details["build_result"].is_null(),
        "python has no build: {details}"
    );
    assert_eq!(details["connections"], 0);
    // The same run through /v1.
    let v1 = stack
        .client()
        .get_run(&id, None)
        .await
        .expect("the same run")
        .body;
    assert_eq!(v1.stdout(), "olleh\n");

    // C with a compile error, as JSON, long-polling.
    let body = serde_json::json!({"source_code": "int main( {", "language": "c", "longpoll": true,
        "longpoll_timeout": 30, "api_key": TENANT_A_KEY});
    let created = anonymous
        .send_raw(
            Method::POST,
            "/runners/create.json",
            Some("application/json"),
            serde_json::to_vec(&body).expect("json"),
            &[],
        )
        .await
        .expect("an answer");
    let id = json(&created)["id"].as_str().expect("an id").to_owned();
    let details = json(&get(&anonymous, "/runners/get_details.json", &id, TENANT_A_KEY).await);
    assert_eq!(details["status"], "completed");
    assert_eq!(details["build_result"], "failure", "{details}");
    assert!(
        details["build_stderr"]
            .as_str()
            .is_some_and(|text| text.contains("error")),
        "{details}"
    );
    assert!(is_seconds(&details["build_time"]), "{details}");
    assert!(details["result"].is_null(), "nothing ran: {details}");

    // A time limit, without long-polling: running first, then completed as a timeout.
    let created = json(
        &form(
            &anonymous,
            "/runners/create",
            &[
                ("source_code", "while True:\n    pass\n"),
                ("language", "python"),
                ("api_key", TENANT_A_KEY),
            ],
        )
        .await,
    );
    let id = created["id"].as_str().expect("an id").to_owned();
    assert!(["running", "completed"].contains(&created["status"].as_str().unwrap_or_default()));
    let finished = stack
        .client()
        .get_run(&id, Some(30_000))
        .await
        .expect("finished")
        .body;
    assert!(finished.status.is_terminal());
    let details = json(&get(&anonymous, "/runners/get_details", &id, TENANT_A_KEY).await);
    assert_eq!(details["result"], "timeout", "{details}");

    // Keys and tenants as ever: a wrong key is 401, another tenant's run 404.
    let refused = form(
        &anonymous,
        "/runners/create",
        &[
            ("source_code", "1"),
            ("language", "python"),
            ("api_key", "wrong"),
        ],
    )
    .await;
    assert_eq!(problem_of(&refused).status, 401);
    let hidden = get(&anonymous, "/runners/get_status", &id, TENANT_B_KEY).await;
    assert_eq!(problem_of(&hidden).status, 404);
    let unknown = form(
        &anonymous,
        "/runners/create",
        &[
            ("source_code", "1"),
            ("language", "cobol"),
            ("api_key", TENANT_A_KEY),
        ],
    )
    .await;
    assert_eq!(problem_of(&unknown).status, 422);
    stack.stop().await;
}
