//! The test harness itself: a stack whose test panics half-way leaves nothing behind — no
//! sandbox container of its prefix, no Redis key, no NATS stream.

use coderun_e2e::{cleanup, redis_url, TestStack};
use coderun_schema::run::{RunRequest, Verdict};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_whose_test_panics_leaves_nothing_behind() {
    let (names_sent, names) = tokio::sync::oneshot::channel();
    let failing_test = tokio::spawn(async move {
        let stack = TestStack::start().await;
        let run = stack
            .client()
            .run_and_wait(&RunRequest {
                language: "bash".to_owned(),
                source: Some("echo hi".to_owned()),
                ..Default::default()
            })
            .await
            .expect("a run");
        assert_eq!(run.verdict, Some(Verdict::Ok));
        assert!(!stack.containers(true).is_empty(), "warm containers wait");
        let _ = names_sent.send(stack.names.clone());
        panic!("a test failing half-way, its stack never stopped");
    });
    let outcome = failing_test.await;
    assert!(outcome.is_err_and(|error| error.is_panic()));
    let names = names.await.expect("the stack started");

    let left = cleanup::containers_of(names.prefix(), true);
    assert!(left.is_empty(), "containers left: {left:?}");
    let client = redis::Client::open(redis_url()).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", names.prefix()))
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    assert!(keys.is_empty(), "Redis keys left: {keys:?}");
    let nats = async_nats::connect(coderun_e2e::nats_url())
        .await
        .expect("NATS");
    let jetstream = async_nats::jetstream::new(nats);
    for stream in [names.submit_stream(), names.jobs_stream()] {
        assert!(
            jetstream.get_stream(&stream).await.is_err(),
            "stream {stream} left"
        );
    }
}
