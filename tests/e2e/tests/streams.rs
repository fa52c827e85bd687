//! The JetStream streams every service creates at start-up: services that start together
//! (the scheduler and the executors both create the webhooks stream) all come up.

use coderun_bus::Bus;
use coderun_schema::names::Names;

#[tokio::test]
async fn services_starting_together_all_find_their_streams() {
    let prefix = format!("streams{}", std::process::id());
    let connect = || async {
        let names = Names::new(prefix.clone()).expect("valid prefix");
        Bus::connect(&coderun_e2e::nats_url(), names, "streams-test")
            .await
            .expect("NATS")
    };
    let mut buses = Vec::new();
    for _ in 0..6 {
        buses.push(connect().await);
    }
    for round in 0..3 {
        let created = futures::future::join_all(buses.iter().map(|bus| async move {
            (
                bus.ensure_webhooks_stream().await.map(|_| ()),
                bus.ensure_jobs_stream().await.map(|_| ()),
                bus.ensure_submit_stream().await.map(|_| ()),
            )
        }))
        .await;
        for (webhooks, jobs, submit) in created {
            assert!(webhooks.is_ok(), "round {round}: {webhooks:?}");
            assert!(jobs.is_ok(), "round {round}: {jobs:?}");
            assert!(submit.is_ok(), "round {round}: {submit:?}");
        }
        let names = buses[0].names().clone();
        let jetstream = buses[0].jetstream();
        for stream in names.work_streams() {
            jetstream
                .delete_stream(&stream)
                .await
                .expect("stream deleted");
        }
    }
}
