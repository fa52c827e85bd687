//! The load tool (tools/load) against a real stack: a mixed load whose every run is accounted
//! for (each entry gets its own verdict, none lost, none started twice), a stack that never
//! runs what it accepts shows up as lost runs, and a short soak reads each service's memory
//! and finds nothing left over once the stack is idle.

use std::time::Duration;

use coderun_bench::load::{self, Arrivals};
use coderun_bench::progress::{Phase, Progress};
use coderun_e2e::{StackOptions, TestStack};
use coderun_executor::config::Isolation;
use coderun_load::args::DEFAULT_MIX;
use coderun_load::mix::{verdict_name, Mix};
use coderun_load::sender::Sender;
use coderun_load::settle::settle;
use coderun_load::soak::{self, Watch};
use coderun_schema::catalog::Catalog;

fn mix(text: &str) -> Mix {
    Mix::parse(text, &Catalog::builtin()).expect("the mix parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_load_gets_every_verdict_it_asks_for_and_loses_nothing() {
    let stack = TestStack::start_with(StackOptions {
        slots: 3,
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let mix = mix(DEFAULT_MIX);
    let sender = Sender::new(client.clone(), mix.clone(), Duration::from_secs(60));
    // One whole cycle of the mix one after another (every entry sent at least once), then
    // three clients at once.
    let cycle: usize = mix.entries.iter().map(|entry| entry.weight as usize).sum();
    let mut tally = load::sequential(&sender.operation(), cycle, &Phase::silent()).await;
    let together = load::closed_loop(
        &sender.operation(),
        3,
        Duration::from_secs(6),
        &Phase::silent(),
    )
    .await;
    tally.latencies.extend(together.latencies);
    tally.failed += together.failed;
    tally.lost += together.lost;
    let books = sender.books();
    let settled = settle(
        &client,
        &books.accepted,
        Duration::from_secs(30),
        &Phase::silent(),
    )
    .await;
    println!(
        "sent {}, accepted {}, as expected {}, wrong {}, refused {:?}; verdicts {:?}; {settled:?}",
        books.sent,
        books.accepted.len(),
        tally.succeeded(),
        books.wrong,
        books.refused,
        books.verdicts
    );
    assert!(books.refused.is_empty(), "refused: {:?}", books.refused);
    assert_eq!(books.wrong, 0, "{:?}", books.wrong_examples);
    assert_eq!(tally.succeeded(), books.accepted.len());
    assert!(
        books.accepted.len() >= mix.entries.len(),
        "too few runs to cover the mix"
    );
    // Every entry was sent and got exactly the verdict its program earns.
    for entry in &mix.entries {
        let verdicts = books
            .verdicts
            .get(&entry.label)
            .expect("the entry was sent");
        let expected = verdict_name(entry.verdict);
        assert_eq!(
            verdicts.keys().collect::<Vec<_>>(),
            vec![&expected],
            "{}",
            entry.label
        );
    }
    assert_eq!(
        (
            settled.accepted,
            settled.finished,
            settled.lost,
            settled.duplicated
        ),
        (books.accepted.len(), books.accepted.len(), 0, 0),
        "{settled:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_accepted_by_a_stack_without_a_scheduler_are_counted_lost() {
    let stack = TestStack::start_with(StackOptions {
        in_process_scheduler: false,
        languages: vec!["bash".to_owned()],
        ..Default::default()
    })
    .await;
    stack.wait_for_languages().await;
    let client = stack.client();
    let sender = Sender::new(client.clone(), mix("bash:ok"), Duration::from_secs(2));
    let tally = load::sequential(&sender.operation(), 3, &Phase::silent()).await;
    let books = sender.books();
    let settled = settle(
        &client,
        &books.accepted,
        Duration::from_secs(1),
        &Phase::silent(),
    )
    .await;
    println!("{settled:?}");
    assert_eq!(tally.lost, 3, "each attempt gave up on its run");
    assert_eq!(
        (settled.accepted, settled.lost, settled.finished),
        (3, 3, 0)
    );
    assert!(settled
        .examples
        .iter()
        .all(|example| example.ends_with("not finished")));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_reads_every_service_and_leaves_nothing_over() {
    let stack = TestStack::start_with(StackOptions {
        isolation: Isolation::Fast,
        languages: vec!["bash".to_owned(), "python".to_owned()],
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let sender = Sender::new(
        client.clone(),
        mix("bash:ok=2,python:ok=1,python:runtime_error=1"),
        Duration::from_secs(60),
    );
    let operation = sender.operation();
    let watch = Watch {
        http: reqwest::Client::new(),
        metrics: vec![
            ("gateway".to_owned(), format!("{}/metrics", stack.base_url)),
            (
                "scheduler".to_owned(),
                format!("{}/metrics", stack.scheduler_ops_url),
            ),
            (
                "executor".to_owned(),
                format!("{}/metrics", stack.executor_ops_url),
            ),
        ],
        redis_url: Some(stack.redis_url().to_owned()),
        docker: Some(bollard::Docker::connect_with_defaults().expect("docker")),
        prefix: stack.names.prefix().to_owned(),
    };
    // Warm up as the tool does, so the tenant's reused containers exist before the soak.
    let _ = load::open_loop(
        &operation,
        4.0,
        Arrivals::Even,
        Duration::from_secs(3),
        &Phase::silent(),
    )
    .await;
    let (tally, mut figures) = soak::soak(
        &operation,
        4.0,
        Duration::from_secs(4),
        3,
        &watch,
        &Progress::for_stderr(),
    )
    .await;
    figures.checks = coderun_load::checks::checks(&figures);
    let settled = settle(
        &client,
        &sender.books().accepted,
        Duration::from_secs(30),
        &Phase::silent(),
    )
    .await;
    println!("{figures:#?}\n{settled:?}");
    assert_eq!((tally.failed, tally.lost), (0, 0), "{:?}", tally.failures);
    assert_eq!((settled.lost, settled.duplicated), (0, 0));
    assert_eq!(figures.windows.len(), 3);
    for window in &figures.windows {
        for (service, bytes) in &window.memory {
            assert!(
                bytes.is_some_and(|bytes| bytes > 1 << 20),
                "{service}: {bytes:?}"
            );
        }
    }
    // The executor accounts for every container of its prefix once idle, and nothing that
    // counts runs in flight or never expires is left behind by the soak's runs.
    assert!(figures.after.containers_held.is_some_and(|held| held > 0));
    for check in figures
        .checks
        .iter()
        .filter(|check| !check.name.starts_with("memory") && !check.name.starts_with("latency"))
    {
        assert!(check.passed, "{}: {}", check.name, check.detail);
    }
    let names: Vec<&str> = figures
        .checks
        .iter()
        .map(|check| check.name.as_str())
        .collect();
    assert!(names.contains(&"no container left over"), "{names:?}");
    assert!(
        names.contains(&"no run left counted in flight"),
        "{names:?}"
    );
    assert!(
        names.contains(&"no Redis key left without an expiry"),
        "{names:?}"
    );
    stack.stop().await;
}
