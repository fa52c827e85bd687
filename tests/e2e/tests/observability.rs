//! Observability, with real runs: every service's `/metrics` shows what happened, a local
//! Prometheus scrapes all four services, every metric a dashboard or an alert names is one the
//! services export, and the prober's round (its webhook check included) is on its own page.

use std::time::Duration;

use coderun_e2e::observe::{
    exported_names, free_port, metric_names_in, monitoring_files, value_of, PrivatePrometheus,
};
use coderun_e2e::{wait_until, StackOptions, TestStack, TENANT_A_KEY, TENANT_A_WEBHOOK_SECRET};
use coderun_schema::run::{LimitsRequest, RunRequest, StageLimitsRequest, Verdict};

async fn page(url: &str) -> String {
    let response = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("the ops listener answers");
    assert_eq!(response.status(), 200, "{url}/metrics");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.expect("text")
}

fn prober_config(stack: &TestStack, webhook_port: u16) -> coderun_prober::Config {
    let mut config: coderun_prober::Config =
        toml::from_str(coderun_prober::DEFAULTS).expect("defaults parse");
    config.target.base_url = stack.base_url.clone();
    config.target.api_key = TENANT_A_KEY.to_owned();
    config.probe.languages = vec!["python".to_owned(), "c".to_owned()];
    config.probe.timeout_secs = 60;
    config.probe.objective_ms = 30_000;
    config.ops.port = 0;
    config.webhook.port = webhook_port;
    config.webhook.public_url = format!("http://127.0.0.1:{webhook_port}");
    config.webhook.secret = TENANT_A_WEBHOOK_SECRET.to_owned();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_exports_what_happened_and_a_local_prometheus_scrapes_all_four() {
    let webhook_port = free_port();
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["python".to_owned(), "c".to_owned()],
        callback_allow: vec![format!("127.0.0.1:{webhook_port}")],
        ..StackOptions::default()
    })
    .await;
    let prober =
        coderun_prober::Prober::start(prober_config(&stack, webhook_port), coderun_prober::WithOps)
            .await
            .expect("the prober starts");
    let prober_url = format!("http://127.0.0.1:{}", prober.ops_port().expect("listens"));

    // One round: hello-worlds, verdict checks, API paths, and the webhook to the prober.
    let round = prober.round().await;
    assert_eq!(round.failed(), 0, "{}", round.table());
    assert!(
        round
            .results
            .iter()
            .any(|result| result.name == "api.webhook" && result.passed),
        "the webhook check ran and passed:\n{}",
        round.table()
    );
    // And one more time limit of our own, to see its verdict counted.
    let mut looping = RunRequest {
        language: "python".to_owned(),
        source: Some("while True: pass".to_owned()),
        ..Default::default()
    };
    looping.limits = LimitsRequest {
        run: Some(StageLimitsRequest {
            cpu_ms: Some(300),
            wall_ms: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let run = stack.client().run_and_wait(&looping).await.expect("runs");
    assert_eq!(run.verdict, Some(Verdict::TimeLimit));

    let gateway = page(&stack.base_url).await;
    let accepted = value_of(
        &gateway,
        "coderun_runs_accepted_total",
        &[("language", "python")],
    );
    assert!(accepted.unwrap_or(0.0) >= 8.0, "{accepted:?}\n{gateway}");
    let created = value_of(
        &gateway,
        "coderun_http_requests_total",
        &[("route", "/v1/runs"), ("method", "POST"), ("status", "202")],
    );
    assert!(created.unwrap_or(0.0) >= 1.0, "{gateway}");
    assert!(
        value_of(
            &gateway,
            "coderun_http_request_duration_seconds_count",
            &[("route", "/v1/runs/{id}"), ("method", "GET")],
        )
        .is_some(),
        "a run read is timed under its route pattern, not its id:\n{gateway}"
    );

    let executor = page(&stack.executor_ops_url).await;
    for (verdict, at_least) in [("ok", 3.0_f64), ("time_limit", 2.0), ("compile_error", 1.0)] {
        let language = if verdict == "compile_error" {
            "c"
        } else {
            "python"
        };
        let counted = value_of(
            &executor,
            "coderun_runs_completed_total",
            &[("language", language), ("verdict", verdict)],
        );
        assert!(
            counted.is_some_and(|count| count >= at_least),
            "{language} {verdict}: {counted:?}\n{executor}"
        );
    }
    for series in [
        "coderun_run_end_to_end_seconds_count",
        "coderun_run_queue_seconds_count",
        "coderun_run_execute_seconds_count",
        "coderun_container_create_seconds_count",
        "coderun_warm_containers_ready",
        "coderun_warm_containers_missing",
    ] {
        assert!(
            value_of(&executor, series, &[("language", "python")]).is_some(),
            "{series}\n{executor}"
        );
    }
    assert!(
        value_of(
            &executor,
            "coderun_run_compile_seconds_count",
            &[("language", "c")]
        )
        .is_some_and(|count| count >= 1.0),
        "{executor}"
    );
    let slots = |state| value_of(&executor, "coderun_executor_slots", &[("state", state)]);
    assert_eq!(
        slots("free").unwrap_or(-1.0) + slots("busy").unwrap_or(-1.0),
        f64::from(StackOptions::default().slots),
        "{executor}"
    );

    // The queue gauges are a periodic reading (`metrics.queue_poll_secs`): the first one taken
    // after the last run finished says nothing waits.
    let settled = wait_until(Duration::from_secs(10), || async {
        let scheduler = page(&stack.scheduler_ops_url).await;
        (value_of(&scheduler, "coderun_queue_depth", &[("language", "python")]) == Some(0.0))
            .then_some(scheduler)
    })
    .await;
    let scheduler = match settled {
        Some(scheduler) => scheduler,
        None => page(&stack.scheduler_ops_url).await,
    };
    assert!(
        value_of(
            &scheduler,
            "coderun_runs_dispatched_total",
            &[("language", "python")]
        )
        .is_some_and(|count| count >= 8.0),
        "{scheduler}"
    );
    assert_eq!(
        value_of(&scheduler, "coderun_queue_depth", &[("language", "python")]),
        Some(0.0),
        "nothing waits once every run finished:\n{scheduler}"
    );
    assert!(
        value_of(
            &scheduler,
            "coderun_queue_oldest_age_seconds",
            &[("language", "rust")]
        )
        .is_some(),
        "every catalog language has a queue series, served or not:\n{scheduler}"
    );
    assert!(
        value_of(
            &scheduler,
            "coderun_webhook_deliveries_total",
            &[("outcome", "delivered")]
        )
        .is_some_and(|count| count >= 1.0),
        "{scheduler}"
    );

    let probe = page(&prober_url).await;
    for (check, language) in [
        ("hello_world", "python"),
        ("hello_world", "c"),
        ("verdict.time_limit", "python"),
        ("api.webhook", "python"),
    ] {
        assert_eq!(
            value_of(
                &probe,
                "coderun_probe_success",
                &[("check", check), ("language", language)]
            ),
            Some(1.0),
            "{check} {language}\n{probe}"
        );
    }
    assert_eq!(
        value_of(&probe, "coderun_probe_rounds_total", &[]),
        Some(1.0)
    );

    // Every metric named by a dashboard panel or an alert rule is one the services export.
    let mut exported = std::collections::BTreeSet::new();
    for text in [&gateway, &scheduler, &executor, &probe] {
        exported.extend(exported_names(text));
    }
    let mut missing = Vec::new();
    for file in monitoring_files() {
        let text = std::fs::read_to_string(&file).expect("readable");
        for name in metric_names_in(&text) {
            if !exported.contains(&name) {
                missing.push(format!("{}: {name}", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named in monitoring/ but exported by no service:\n{}",
        missing.join("\n")
    );

    // A Prometheus of our own scrapes all four services.
    let address = |url: &str| url.trim_start_matches("http://").to_owned();
    let prometheus = PrivatePrometheus::start(&[
        ("coderun-gateway", address(&stack.base_url)),
        ("coderun-scheduler", address(&stack.scheduler_ops_url)),
        ("coderun-executor", address(&stack.executor_ops_url)),
        ("coderun-prober", address(&prober_url)),
    ]);
    let all_up = wait_until(Duration::from_secs(30), || async {
        let health = prometheus.target_health().await;
        (health.len() == 4 && health.values().all(|state| state == "up")).then_some(health)
    })
    .await;
    assert!(
        all_up.is_some(),
        "targets: {:?}",
        prometheus.target_health().await
    );
    let build_info = wait_until(Duration::from_secs(10), || async {
        let answer = prometheus.query("count(coderun_build_info)").await;
        let count = answer["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned);
        (count.as_deref() == Some("4")).then_some(())
    })
    .await;
    assert!(build_info.is_some(), "four services' build_info scraped");

    prober.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_of_the_scheduler_and_executor_names_their_dependencies() {
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["python".to_owned()],
        ..StackOptions::default()
    })
    .await;
    for (url, dependencies) in [
        (&stack.scheduler_ops_url, &["nats", "redis"][..]),
        (&stack.executor_ops_url, &["nats", "redis", "docker"][..]),
    ] {
        let health = reqwest::get(format!("{url}/healthz"))
            .await
            .expect("answers");
        assert_eq!(health.status(), 200);
        let ready = reqwest::get(format!("{url}/readyz"))
            .await
            .expect("answers");
        assert_eq!(ready.status(), 200);
        let body: serde_json::Value = ready.json().await.expect("json");
        for dependency in dependencies {
            assert_eq!(body["checks"][dependency], true, "{url}: {body}");
        }
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prober_passes_what_is_served_and_fails_an_expected_language_nobody_serves() {
    let stack = TestStack::start().await;
    // The stack serves bash, python and c; ruby is expected but nobody serves it.
    let expected = ["bash", "python", "c", "ruby"].map(str::to_owned).to_vec();
    let timing = coderun_prober::Timing {
        timeout: std::time::Duration::from_secs(60),
        objective: std::time::Duration::from_secs(30),
    };
    let results = coderun_prober::run_round(
        &stack.client(),
        coderun_e2e::TENANT_A_KEY,
        &expected,
        timing,
    )
    .await;
    let failed: Vec<_> = results.iter().filter(|result| !result.passed).collect();
    assert_eq!(
        failed
            .iter()
            .map(|result| result.name.as_str())
            .collect::<Vec<_>>(),
        ["hello_world.ruby"],
        "{results:#?}"
    );
    assert!(
        failed[0].detail.contains("no live executor"),
        "{:?}",
        failed[0]
    );
    let names: Vec<_> = results.iter().map(|result| result.name.as_str()).collect();
    for name in [
        "hello_world.bash",
        "hello_world.python",
        "hello_world.c",
        "verdict.compile_error",
        "verdict.runtime_error",
        "verdict.time_limit",
        "verdict.memory_limit",
        "verdict.wrong_answer",
        "stdin.unicode_echo",
        "api.long_poll",
        "api.idempotent_retry",
        "api.legacy",
        "api.cancel",
        "api.events",
    ] {
        assert!(names.contains(&name), "{name} missing: {names:?}");
    }
    stack.stop().await;
}
