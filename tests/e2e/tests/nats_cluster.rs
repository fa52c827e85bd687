//! The production NATS shape: a three-server JetStream cluster, the services creating every
//! stream with three replicas (`bus.stream_replicas = 3`). One server is killed (`kill -9`)
//! under load and started again later: no accepted run is lost, none runs twice, every one
//! ends `ok`.
//!
//! The cluster is the test's own, on loopback; the services are given every server's URL, and
//! the one killed is the leader of the submit stream, the worst case. It stays down until the
//! other two have elected a new leader and taken submissions again; until then submissions are
//! refused with `503` and `Retry-After`, and services connected to it move to another server.

use std::time::{Duration, Instant};

use coderun_e2e::private_nats::PrivateNats;
use coderun_e2e::steady_load::SteadyLoad;
use coderun_e2e::{wait_until, StackOptions, TestStack};

/// Servers in the cluster, and copies of each stream.
const SERVERS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_server_killed_under_load_loses_no_accepted_run() {
    let mut cluster = PrivateNats::cluster(SERVERS).await;
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        nats_url: cluster
            .iter()
            .map(PrivateNats::url)
            .collect::<Vec<_>>()
            .join(","),
        stream_replicas: SERVERS,
        ..Default::default()
    })
    .await;
    let client = stack.client();

    // The services made their streams replicated.
    let nats = async_nats::connect(cluster[0].url()).await.expect("NATS");
    let jetstream = async_nats::jetstream::new(nats);
    for name in [stack.names.submit_stream(), stack.names.jobs_stream()] {
        let mut stream = jetstream.get_stream(&name).await.expect("the stream");
        let info = stream.info().await.expect("its info");
        let copies = info
            .cluster
            .as_ref()
            .map_or(0, |cluster| cluster.replicas.len() + 1);
        assert_eq!(
            (info.config.num_replicas, copies),
            (SERVERS, SERVERS),
            "{name}"
        );
    }

    let leader_of_submit = |jetstream: async_nats::jetstream::Context| {
        let name = stack.names.submit_stream();
        async move {
            let mut stream = jetstream.get_stream(name).await.ok()?;
            let info = stream.info().await.ok()?;
            info.cluster.as_ref()?.leader.clone()
        }
    };
    let leader = leader_of_submit(jetstream.clone())
        .await
        .expect("the submit stream's leader");
    let doomed: usize = leader
        .strip_prefix("node")
        .and_then(|index| index.parse().ok())
        .expect("a node's name");
    // What the test reads the stream through while the leader is down: a server that stays.
    let staying = cluster[(doomed + 1) % SERVERS].url();
    let survivors = async_nats::jetstream::new(async_nats::connect(staying).await.expect("NATS"));

    let load = SteadyLoad::start(&client, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster[doomed].kill();
    let killed = Instant::now();
    // With the leader still down, the two left elect another and take submissions again.
    let at_kill = load.accepted_so_far();
    let taken_again = wait_until(Duration::from_secs(60), || async {
        (load.accepted_so_far() >= at_kill + 10).then(|| killed.elapsed())
    })
    .await;
    let new_leader = leader_of_submit(survivors).await;
    cluster[doomed].start_again();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let submitted = load.stop().await;
    let settled = submitted.settle(&client, Duration::from_secs(120)).await;
    println!(
        "the submit stream's leader ({leader}, of {SERVERS} NATS servers) killed under load: \
         {settled}; ten more taken {taken_again:?} after the kill, with {new_leader:?} leading; \
         refused: {} x 503 ({} with Retry-After), other answers {:?}",
        submitted.unavailable, submitted.unavailable_with_retry_after, submitted.other,
    );
    assert!(
        new_leader.as_ref().is_some_and(|new| *new != leader),
        "no other server leads the submit stream"
    );
    assert!(taken_again.is_some(), "submissions are not taken again");
    submitted.assert_refusals_say_when();
    settled.assert_every_run_ok_once();
    stack.stop().await;
}
