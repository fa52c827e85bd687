//! Webhooks: a finished run is POSTed to its `callback_url`, signed with its tenant's secret
//! (verified here by the documented Python and JavaScript examples, run in the language
//! images), retried with backoff until a 2xx, and the outcome is shown on the run. Internal
//! targets — metadata, IPv6 loopback, another spelling of 127.0.0.1, a name resolving to
//! loopback — are refused, at creation and at delivery; redirects are not followed.

use std::path::Path;
use std::time::Duration;

use coderun_e2e::receiver::{Received, Receiver};
use coderun_e2e::{wait_until, StackOptions, TestStack, TENANT_A_WEBHOOK_SECRET};
use coderun_scheduler::webhooks::attempt::{attempt, Delivery, Outcome};
use coderun_schema::callback::{forbidden, CallbackTarget};
use coderun_schema::run::{Run, RunRequest, RunStatus, Verdict};

fn python(source: &str, callback_url: &str) -> RunRequest {
    RunRequest {
        language: "python".to_owned(),
        source: Some(source.to_owned()),
        callback_url: Some(callback_url.to_owned()),
        ..Default::default()
    }
}

/// Runs a documented verifier in a language image (network none); true if it accepted.
fn verifies(image: &str, command: &str, script: &str, header: &str, body: &[u8]) -> bool {
    let dir = std::env::temp_dir().join(format!("coderun-webhook-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples");
    std::fs::copy(examples.join(script), dir.join(script)).expect("copy the example");
    std::fs::write(dir.join("body"), body).expect("write the body");
    let status = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--user", "65534", "-v"])
        .arg(format!("{}:/w:ro", dir.display()))
        .args([
            image,
            command,
            &format!("/w/{script}"),
            TENANT_A_WEBHOOK_SECRET,
            header,
            "/w/body",
        ])
        .status()
        .expect("docker runs");
    let _ = std::fs::remove_dir_all(&dir);
    status.success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_retried_until_delivered_signed_and_recorded_on_the_run() {
    // Two failures first: the third attempt is delivered.
    let receiver = Receiver::start(&[500, 503]).await;
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["python".to_owned()],
        callback_allow: vec![format!("127.0.0.1:{}", receiver.port)],
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let run = client
        .run_and_wait(&python("print('hooked')", &receiver.url("/hook")))
        .await
        .expect("runs");
    assert_eq!(run.verdict, Some(Verdict::Ok));

    let delivered = wait_until(Duration::from_secs(20), || async {
        let received = receiver.received();
        received
            .iter()
            .any(|hit| hit.answered == 200)
            .then_some(received)
    })
    .await
    .expect("the webhook is delivered");
    let statuses: Vec<u16> = delivered.iter().map(|hit| hit.answered).collect();
    assert_eq!(statuses, [500, 503, 200]);
    let last: &Received = delivered.last().expect("a delivery");
    assert_eq!(last.path, "/hook");
    assert_eq!(
        last.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(last.headers.get("x-coderun-run-id"), Some(&run.id));
    let body: Run = serde_json::from_slice(&last.body).expect("the body is a run");
    assert_eq!(
        (body.id.as_str(), body.status),
        (run.id.as_str(), RunStatus::Completed)
    );
    assert_eq!(body.stdout(), "hooked\n");

    let header = last
        .headers
        .get("x-coderun-signature")
        .expect("signed")
        .clone();
    assert!(
        header.starts_with("t=") && header.contains(",v1="),
        "{header}"
    );
    assert!(verifies(
        "coderun/lang-python",
        "python3",
        "verify_webhook.py",
        &header,
        &last.body
    ));
    assert!(verifies(
        "coderun/lang-javascript",
        "node",
        "verify-webhook.js",
        &header,
        &last.body
    ));
    let mut tampered = last.body.clone();
    tampered.extend_from_slice(b" ");
    assert!(!verifies(
        "coderun/lang-python",
        "python3",
        "verify_webhook.py",
        &header,
        &tampered
    ));
    assert!(!verifies(
        "coderun/lang-javascript",
        "node",
        "verify-webhook.js",
        &header,
        &tampered
    ));

    let recorded = wait_until(Duration::from_secs(5), || async {
        let run = client.get_run(&run.id, None).await.ok()?.body;
        run.webhook.filter(|webhook| webhook.delivered)
    })
    .await
    .expect("the outcome is recorded on the run");
    assert_eq!((recorded.attempts, recorded.last_status), (3, Some(200)));
    // Delivered once: nothing more arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 3);

    // A cancelled run's webhook goes too, carrying the cancelled run.
    let mut sleeper = coderun_e2e::long_running("python", "import time; time.sleep(60)");
    sleeper.callback_url = Some(receiver.url("/cancelled"));
    let id = client
        .create_run(&sleeper, &Default::default())
        .await
        .expect("accepted")
        .body
        .id;
    client.cancel_run(&id).await.expect("cancelled");
    let hit = wait_until(Duration::from_secs(20), || async {
        receiver
            .received()
            .into_iter()
            .find(|hit| hit.path == "/cancelled")
    })
    .await
    .expect("the cancelled run's webhook arrives");
    let body: Run = serde_json::from_slice(&hit.body).expect("a run");
    assert_eq!(
        (body.id.as_str(), body.status),
        (id.as_str(), RunStatus::Cancelled)
    );
    stack.stop().await;
}

/// One delivery attempt of the scheduler's, at `url`.
async fn attempt_at(url: &str, allow: &[String]) -> Outcome {
    let target = CallbackTarget::parse(url).expect("parses");
    attempt(&Delivery {
        target: &target,
        allow,
        body: b"{}",
        secret: b"0123456789abcdef",
        run_id: "run_x",
        attempt: 1,
        timeout: Duration::from_secs(3),
    })
    .await
}

/// A name other than `localhost` that resolves to an internal address on this machine.
async fn internal_name() -> String {
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    for name in [hostname.trim(), "ip6-localhost", "ip6-loopback"] {
        if name.is_empty() {
            continue;
        }
        if let Ok(addresses) = tokio::net::lookup_host((name, 80)).await {
            if addresses
                .into_iter()
                .any(|address| forbidden(address.ip()).is_some())
            {
                return name.to_owned();
            }
        }
    }
    panic!("no name on this machine resolves to an internal address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_targets_are_refused_at_creation_and_at_delivery() {
    let receiver = Receiver::start(&[]).await;
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["python".to_owned()],
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let name = internal_name().await;
    let port = receiver.port;
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::1]:{port}/hook"),
        format!("http://0x7f000001:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://{name}:{port}/hook"),
        "file:///etc/passwd".to_owned(),
    ] {
        let refused = client
            .create_run(&python("print(1)", &url), &Default::default())
            .await
            .expect_err(&url);
        assert_eq!(refused.status(), Some(422), "{url}: {refused:?}");
        let problem = refused.problem().expect("a problem");
        assert_eq!(problem.errors[0].field, "callback_url", "{url}");
    }

    // At delivery the scheduler checks again, whatever the gateway let through.
    for url in [
        format!("http://{name}:{port}/x"),
        format!("http://0x7f000001:{port}/x"),
    ] {
        let outcome = attempt_at(&url, &[]).await;
        assert!(matches!(outcome, Outcome::Refused(_)), "{url}: {outcome:?}");
    }
    // An allowed target that redirects: the redirect is not followed.
    let redirecting = Receiver::start(&[302]).await;
    let allowed = [format!("127.0.0.1:{}", redirecting.port)];
    let outcome = attempt_at(&redirecting.url("/hook"), &allowed).await;
    assert_eq!(outcome, Outcome::Answered(302));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paths: Vec<String> = redirecting
        .received()
        .into_iter()
        .map(|hit| hit.path)
        .collect();
    assert_eq!(paths, ["/hook"]);
    assert!(
        receiver.received().is_empty(),
        "nothing reached the internal receiver"
    );
    stack.stop().await;
}
