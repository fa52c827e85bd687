//! One run end to end, through HTTP, against real NATS, Redis and Docker.

use std::time::{Duration, Instant};

use coderun_client::CreateOptions;
use coderun_e2e::TestStack;
use coderun_schema::run::{RunRequest, RunStatus, StageLimitsRequest, Verdict};

fn request(language: &str, source: &str, stdin: &str) -> RunRequest {
    RunRequest {
        language: language.to_owned(),
        source: Some(source.to_owned()),
        stdin: stdin.to_owned(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_in_each_language_run_and_report_what_they_did() {
    let stack = TestStack::start().await;
    let client = stack.client();

    let python = client
        .run_and_wait(&request(
            "python3",
            "import sys\nprint(sys.stdin.read().strip()[::-1])\n",
            "hello\n",
        ))
        .await
        .expect("python run");
    assert_eq!(python.status, RunStatus::Completed);
    assert_eq!(python.verdict, Some(Verdict::Ok), "{python:?}");
    assert_eq!(python.language, "python");
    assert!(
        python
            .version
            .as_deref()
            .is_some_and(|v| v.starts_with("3.")),
        "{python:?}"
    );
    let stage = python.run.as_ref().expect("run stage");
    assert_eq!(stage.stdout, "olleh\n");
    assert_eq!(stage.exit_code, Some(0));
    assert!(
        stage.memory_kb > 1000,
        "python uses more than 1 MiB: {stage:?}"
    );
    assert!(python.started_at.is_some() && python.finished_at.is_some());

    let c_source = "#include <stdio.h>\nint main(void) { int a, b; scanf(\"%d %d\", &a, &b); printf(\"%d\\n\", a + b); return 0; }\n";
    let c = client
        .run_and_wait(&request("c", c_source, "40 2\n"))
        .await
        .expect("c run");
    assert_eq!(c.verdict, Some(Verdict::Ok), "{c:?}");
    assert_eq!(
        c.compile.as_ref().and_then(|stage| stage.exit_code),
        Some(0)
    );
    assert_eq!(c.run.as_ref().expect("run stage").stdout, "42\n");

    let bash = client
        .run_and_wait(&request(
            "bash",
            "read name\necho \"hi $name\" >&2\necho \"bye $name\"\nexit 3\n",
            "ann\n",
        ))
        .await
        .expect("bash run");
    let stage = bash.run.as_ref().expect("run stage");
    assert_eq!(stage.stdout, "bye ann\n");
    assert_eq!(stage.stderr, "hi ann\n");
    assert_eq!(stage.exit_code, Some(3));
    assert_eq!(bash.verdict, Some(Verdict::RuntimeError));

    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_syntax_error_is_a_compile_error_with_the_compilers_message() {
    let stack = TestStack::start().await;
    let run = stack
        .client()
        .run_and_wait(&request("c", "int main(void) { return 0 }\n", ""))
        .await
        .expect("run");
    assert_eq!(run.verdict, Some(Verdict::CompileError), "{run:?}");
    let compile = run.compile.as_ref().expect("compile stage");
    assert!(
        compile.stderr.contains("main.c:1"),
        "compiler message: {}",
        compile.stderr
    );
    assert!(
        compile.stderr.contains("error"),
        "compiler message: {}",
        compile.stderr
    );
    assert!(run.run.is_none(), "nothing runs after a failed compile");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_ends_at_the_wall_limit() {
    let stack = TestStack::start().await;
    let mut looping = request("python", "while True:\n    pass\n", "");
    looping.limits.run = Some(StageLimitsRequest {
        wall_ms: Some(1000),
        cpu_ms: Some(5000),
        ..Default::default()
    });
    let started = Instant::now();
    let run = stack.client().run_and_wait(&looping).await.expect("run");
    let round_trip = started.elapsed();
    assert_eq!(run.verdict, Some(Verdict::TimeLimit), "{run:?}");
    let stage = run.run.as_ref().expect("run stage");
    // Killed at the limit, not at some later clean-up (the margin is for a loaded machine).
    assert!(
        stage.wall_ms >= 1000 && stage.wall_ms < 3000,
        "killed at the limit: {stage:?}"
    );
    assert_eq!(stage.signal.as_deref(), Some("SIGKILL"));
    // The limit itself is checked on the agent's measurement above; the round trip only
    // proves nothing else holds the answer back (generous: these machines are shared).
    assert!(
        round_trip < Duration::from_secs(15),
        "answered long before the default wall limit would matter: {round_trip:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_wait_is_accepted_then_long_polled_to_completion() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let accepted = client
        .create_run(
            &request("bash", "sleep 0.5; echo done", ""),
            &CreateOptions::default(),
        )
        .await
        .expect("accepted");
    assert_eq!(accepted.status, 202);
    let id = accepted.body.id.clone();
    assert!(id.starts_with("run_"), "{id}");
    assert_eq!(
        accepted.location.as_deref(),
        Some(format!("/v1/runs/{id}").as_str())
    );
    assert_eq!(accepted.body.status, RunStatus::Queued);

    let short_poll = client.get_run(&id, Some(50)).await.expect("short poll");
    assert_eq!(
        short_poll.status, 202,
        "not finished after 50 ms: {:?}",
        short_poll.body
    );
    assert!(!short_poll.body.status.is_terminal());

    let finished = client.get_run(&id, Some(20_000)).await.expect("long poll");
    assert_eq!(finished.status, 200);
    assert_eq!(finished.body.status, RunStatus::Completed);
    assert_eq!(
        finished.body.run.as_ref().expect("run stage").stdout,
        "done\n"
    );

    // Reading again without waiting gives the same final run.
    let again = client.get_run(&id, None).await.expect("get");
    assert_eq!(again.body, finished.body);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_never_creates_a_second_run() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let options = CreateOptions {
        wait: true,
        idempotency_key: Some("order-1234".to_owned()),
        ..Default::default()
    };
    let program = request("bash", "echo $RANDOM$RANDOM", "");
    let first = client.create_run(&program, &options).await.expect("first");
    let second = client.create_run(&program, &options).await.expect("second");
    assert_eq!(first.body.id, second.body.id);
    assert_eq!(
        first.body.run, second.body.run,
        "the same run, not a re-run"
    );
    // Another tenant's identical key is a different run.
    let other = stack
        .client_with_key(coderun_e2e::TENANT_B_KEY)
        .create_run(&program, &options)
        .await
        .expect("other tenant");
    assert_ne!(other.body.id, first.body.id);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_idempotency_key_get_the_same_run() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let program = request("bash", "echo once", "");
    for round in 0..5 {
        let options = CreateOptions {
            idempotency_key: Some(format!("burst-{round}")),
            ..Default::default()
        };
        let replies =
            futures::future::join_all((0..8).map(|_| client.create_run(&program, &options))).await;
        let ids: Vec<String> = replies
            .into_iter()
            .map(|reply| reply.expect("every duplicate is answered").body.id)
            .collect();
        assert!(
            ids.iter().all(|id| *id == ids[0]),
            "round {round}: one run for one key, got {ids:?}"
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn languages_list_what_the_executor_serves_with_real_versions() {
    let stack = TestStack::start().await;
    let languages = stack
        .client()
        .languages()
        .await
        .expect("languages")
        .languages;
    let ids: Vec<&str> = languages
        .iter()
        .map(|language| language.id.as_str())
        .collect();
    // Exactly what the live executor serves: other catalog languages (java's image is
    // built too) are not listed.
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["bash", "c", "python"]);
    let c = languages
        .iter()
        .find(|language| language.id == "c")
        .expect("c");
    assert!(c.compiled);
    assert!(
        c.version
            .chars()
            .next()
            .is_some_and(|first| first.is_ascii_digit()),
        "{c:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_past_the_timeout_answers_202_with_the_current_state() {
    let stack = TestStack::start().await;
    let options = CreateOptions {
        wait: true,
        timeout_ms: Some(300),
        ..Default::default()
    };
    let reply = stack
        .client()
        .create_run(&request("bash", "sleep 2; echo late", ""), &options)
        .await
        .expect("accepted");
    assert_eq!(reply.status, 202);
    assert!(!reply.body.status.is_terminal(), "{:?}", reply.body);
    let finished = stack
        .client()
        .get_run(&reply.body.id, Some(20_000))
        .await
        .expect("finished");
    assert_eq!(
        finished.body.run.as_ref().expect("run stage").stdout,
        "late\n"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_each_get_their_own_answer() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let runs = (0..6).map(|index| {
        let client = client.clone();
        async move {
            let program = request(
                "python",
                "import sys\nprint(int(sys.stdin.read()) * 2)\n",
                &format!("{index}\n"),
            );
            (index, client.run_and_wait(&program).await)
        }
    });
    for (index, outcome) in futures::future::join_all(runs).await {
        let run = outcome.expect("run");
        assert_eq!(run.verdict, Some(Verdict::Ok), "{run:?}");
        assert_eq!(
            run.run.expect("run stage").stdout,
            format!("{}\n", index * 2)
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_compile_once_and_the_first_failing_test_decides() {
    let stack = TestStack::start().await;
    let source = "#include <stdio.h>\nint main(void) { long a, b; scanf(\"%ld %ld\", &a, &b); printf(\"%ld\\n\", a * b); return 0; }\n";
    let request = RunRequest {
        language: "c".to_owned(),
        source: Some(source.to_owned()),
        tests: vec![
            coderun_schema::run::TestCase {
                stdin: "6 7\n".to_owned(),
                expected_stdout: Some("42\n".to_owned()),
            },
            coderun_schema::run::TestCase {
                stdin: "2 2\n".to_owned(),
                expected_stdout: Some("5".to_owned()),
            },
            coderun_schema::run::TestCase {
                stdin: "3 3\n".to_owned(),
                expected_stdout: Some("9   \n\n".to_owned()),
            },
        ],
        ..Default::default()
    };
    let run = stack.client().run_and_wait(&request).await.expect("run");
    assert_eq!(run.verdict, Some(Verdict::WrongAnswer), "{run:#?}");
    let verdicts: Vec<_> = run.tests.iter().map(|test| test.verdict).collect();
    assert_eq!(
        verdicts,
        vec![
            Some(Verdict::Ok),
            Some(Verdict::WrongAnswer),
            Some(Verdict::Ok)
        ]
    );
    assert_eq!(run.tests[1].stdout, "4\n");
    assert_eq!(
        run.run.as_ref().map(|stage| stage.stdout.as_str()),
        Some("42\n"),
        "run is the first test"
    );
    assert!(run.compile.is_some(), "compiled once");
    stack.stop().await;
}
