//! Fair share and capacity: runs reach a pool's jobs stream only while its live executors have
//! room, and a tenant arriving behind another's batch is released within a round.

mod support;

use std::time::Duration;

use futures::StreamExt;
use support::submission;

/// Jobs of `pool` in the jobs stream now (released, not acknowledged).
async fn jobs_in_stream(scheduler: &support::Scheduler, pool: &str) -> u64 {
    let jobs = scheduler
        .bus
        .jobs_by_pool()
        .await
        .expect("the jobs stream reads");
    jobs.get(pool).copied().unwrap_or(0)
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 5 s: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_released_beyond_the_room_of_live_executors() {
    let mut scheduler = support::start(|config| config.fairness.ready_per_executor = 1).await;
    for index in 0..10 {
        scheduler
            .submit(&submission(&format!("run_{index:02}"), "tenant-a", "bash"))
            .await;
    }
    // No executor serves bash: nothing is released, whatever waits.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(jobs_in_stream(&scheduler, "bash").await, 0);

    // One executor with two slots: room for its slots and one job waiting.
    scheduler.announce_executor("executor-1", &["bash"], 2);
    eventually("three jobs released", async || {
        jobs_in_stream(&scheduler, "bash").await == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        jobs_in_stream(&scheduler, "bash").await,
        3,
        "no more than the room"
    );

    // Finishing two makes room for two more, in the order they were submitted.
    let consumer = scheduler.pool("bash").await;
    let mut taken = Vec::new();
    let mut batch = consumer
        .fetch()
        .max_messages(2)
        .messages()
        .await
        .expect("fetch");
    while let Some(message) = batch.next().await {
        let message = message.expect("a job");
        let job: coderun_schema::messages::JobDispatched =
            coderun_bus::decode(&message.payload).expect("a job");
        taken.push(job.run_id);
        message.ack().await.expect("ack");
    }
    assert_eq!(taken, ["run_00", "run_01"]);
    eventually("two more released", async || {
        jobs_in_stream(&scheduler, "bash").await == 3
    })
    .await;
    let rest = scheduler.jobs_of("bash", Duration::from_secs(1)).await;
    let rest: Vec<&str> = rest.iter().map(|job| job.run_id.as_str()).collect();
    assert_eq!(
        rest,
        ["run_02", "run_03", "run_04", "run_05", "run_06", "run_07", "run_08", "run_09"]
    );
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_behind_a_batch_is_released_within_a_round() {
    let mut scheduler = support::start(|config| config.fairness.ready_per_executor = 1).await;
    for index in 0..40 {
        scheduler
            .submit(&submission(
                &format!("run_a_{index:02}"),
                "tenant-a",
                "bash",
            ))
            .await;
    }
    for index in 0..3 {
        scheduler
            .submit(&submission(&format!("run_b_{index}"), "tenant-b", "bash"))
            .await;
    }
    // Every run waits in its tenant's queue until an executor appears.
    tokio::time::sleep(Duration::from_millis(500)).await;
    scheduler.announce_executor("executor-1", &["bash"], 1);

    // An executor with one slot: take the jobs one at a time, in the order released.
    let consumer = scheduler.pool("bash").await;
    let mut order = Vec::new();
    while order.len() < 43 {
        let (job, message) = support::next_job(&consumer).await;
        order.push(job.run_id);
        message.ack().await.expect("ack");
    }
    let b_positions: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, id)| id.starts_with("run_b_"))
        .map(|(position, _)| position)
        .collect();
    println!("tenant B's runs were released at positions {b_positions:?} of 43");
    // Room is two jobs (one slot, one waiting): A's first two, then A and B alternate.
    assert!(
        b_positions.iter().all(|position| *position < 10),
        "B waited behind A's batch: {b_positions:?} in {order:?}"
    );
    let a_order: Vec<&String> = order.iter().filter(|id| id.starts_with("run_a_")).collect();
    let mut sorted = a_order.clone();
    sorted.sort();
    assert_eq!(a_order, sorted, "a tenant's runs keep their order");
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executors_slots_are_shared_by_all_its_languages() {
    let mut scheduler = support::start(|config| config.fairness.ready_per_executor = 1).await;
    // One executor of one slot serves both languages: room for two jobs in all.
    scheduler.announce_executor("executor-1", &["bash", "python"], 1);
    for index in 0..3 {
        for language in ["bash", "python"] {
            let run_id = format!("run_{language}_{index}");
            scheduler
                .submit(&submission(&run_id, "tenant-a", language))
                .await;
        }
    }
    let both = async || {
        let jobs = scheduler
            .bus
            .jobs_by_pool()
            .await
            .expect("the jobs stream reads");
        jobs.values().sum::<u64>()
    };
    eventually("two jobs released", async || both().await == 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        both().await,
        2,
        "more jobs than the executor's slot and one waiting"
    );
    scheduler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_delivered_again_after_its_release_is_not_queued_again() {
    let mut scheduler = support::start(|config| config.fairness.ready_per_executor = 0).await;
    scheduler.announce_executor("executor-1", &["bash"], 1);
    let first = submission("run_first", "tenant-a", "bash");
    scheduler.submit(&first).await;
    eventually("the run released", async || {
        jobs_in_stream(&scheduler, "bash").await == 1
    })
    .await;
    // The pool is full now; the same submission comes again (under another message id, as
    // after a lost acknowledgement past the duplicate window).
    scheduler
        .bus
        .publish_durable(scheduler.bus.names().runs_submit(), &first, "again")
        .await
        .expect("submitted again");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let queues = scheduler.store.queues();
    assert_eq!(queues.backlog("bash").await.expect("Redis answers"), 0);
    let jobs = scheduler.jobs_of("bash", Duration::from_secs(1)).await;
    let ids: Vec<&str> = jobs.iter().map(|job| job.run_id.as_str()).collect();
    assert_eq!(ids, ["run_first"], "released once");
    scheduler.stop().await;
}
