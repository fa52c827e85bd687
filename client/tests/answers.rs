//! How the client reads the API's answers, against a real HTTP server on loopback that answers
//! each request with a prepared response: success with its status and `Location`, problems
//! with their status and `Retry-After`, and bodies that are neither.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use coderun_client::{Client, ClientError};

/// Serves one prepared response per connection, in order; sends each request's head back on
/// the channel.
fn serve(responses: Vec<String>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let (heads, received) = mpsc::channel();
    std::thread::spawn(move || {
        for response in responses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = heads.send(head);
            let mut stream = reader.into_inner();
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (address, received)
}

fn response(status: &str, headers: &[&str], body: &str) -> String {
    let mut text = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text + "\r\n" + body
}

const RUN: &str =
    r#"{"id":"run_1","status":"queued","language":"python","created_at":"2026-01-01T00:00:00Z"}"#;

#[tokio::test]
async fn a_run_is_read_with_its_status_and_location_and_the_key_is_sent() {
    let (base, heads) = serve(vec![response(
        "202 Accepted",
        &["Content-Type: application/json", "Location: /v1/runs/run_1"],
        RUN,
    )]);
    let client = Client::new(&base, "secret-key").expect("client");
    let reply = client.get_run("run_1", Some(250)).await.expect("a run");
    assert_eq!(reply.status, 202);
    assert_eq!(reply.location.as_deref(), Some("/v1/runs/run_1"));
    assert_eq!(reply.body.id, "run_1");
    let head = heads.recv().expect("the request");
    assert!(
        head.starts_with("GET /v1/runs/run_1?wait_ms=250 "),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer secret-key"),
        "{head}"
    );
}

#[tokio::test]
async fn a_problem_keeps_its_status_fields_and_retry_after() {
    let problem = r#"{"type":"urn:coderun:problem:rate-limited","title":"Too many runs","status":429,"detail":"slow down","errors":[{"field":"tests","message":"too many"}]}"#;
    let (base, _) = serve(vec![response(
        "429 Too Many Requests",
        &["Content-Type: application/problem+json", "Retry-After: 3"],
        problem,
    )]);
    let error = Client::new(&base, "k")
        .expect("client")
        .get_run("run_1", None)
        .await
        .expect_err("a problem");
    assert_eq!(error.status(), Some(429));
    let ClientError::Problem {
        problem,
        retry_after,
        ..
    } = &error
    else {
        panic!("a problem, not {error:?}");
    };
    assert_eq!(*retry_after, Some(3));
    assert_eq!(problem.detail.as_deref(), Some("slow down"));
    assert_eq!(problem.errors[0].field, "tests");
    assert_eq!(
        error.problem().map(|p| p.title.as_str()),
        Some("Too many runs")
    );
}

#[tokio::test]
async fn bodies_that_are_neither_a_run_nor_a_problem_are_unexpected_with_their_text() {
    let (base, _) = serve(vec![
        response(
            "502 Bad Gateway",
            &["Content-Type: text/html"],
            "<h1>proxy down</h1>",
        ),
        response(
            "200 OK",
            &["Content-Type: application/json"],
            "{\"not\": \"a run\"}",
        ),
    ]);
    let client = Client::new(&base, "k").expect("client");
    for expected_status in [502, 200] {
        match client.get_run("run_1", None).await {
            Err(ClientError::UnexpectedBody { status, body }) => {
                assert_eq!(status, expected_status);
                assert!(!body.is_empty());
            }
            other => panic!("expected an unexpected body, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn set_up_and_transport_failures_are_told_apart() {
    assert!(matches!(
        Client::new("not a url", "k"),
        Err(ClientError::BaseUrl(_))
    ));
    assert!(matches!(
        Client::new("http://127.0.0.1:1", "bad\nkey"),
        Err(ClientError::ApiKey)
    ));
    // A port nothing listens on: the request itself fails, with no status.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a port")
        .port();
    let error = Client::new(&format!("http://127.0.0.1:{port}"), "k")
        .expect("client")
        .get_run("run_1", None)
        .await
        .expect_err("nobody listens");
    assert!(matches!(error, ClientError::Transport(_)), "{error:?}");
    assert_eq!(error.status(), None);
}
