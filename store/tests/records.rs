//! Run records in a real Redis (`CODERUN_TEST_REDIS_URL`, loopback by default), under a prefix
//! of the test's own: a terminal record is final whoever writes after it, updates keep the
//! record's lifetime, an idempotency key names one run, and a language's backlog cap counts the
//! queued runs of every tenant.

use std::time::Duration;

use coderun_schema::messages::RunRecord;
use coderun_schema::names::Names;
use coderun_schema::run::{RunStatus, Verdict};
use coderun_store::{ActiveQuota, Created, UpdateOutcome};

mod support;

use support::{record, redis_url, store};

fn with_status(mut record: RunRecord, status: RunStatus, verdict: Option<Verdict>) -> RunRecord {
    record.run.status = status;
    record.run.verdict = verdict;
    record
}

async fn ttl_of(store_url: &str, key: &str) -> i64 {
    let client = redis::Client::open(store_url).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    redis::cmd("TTL")
        .arg(key)
        .query_async(&mut connection)
        .await
        .expect("TTL")
}

#[tokio::test]
async fn a_completed_record_is_final_whoever_writes_after_it() {
    let store = store("final").await;
    let queued = record("run_final");
    assert!(store.create(&queued).await.expect("create"));
    assert!(
        !store.create(&queued).await.expect("create again"),
        "never replaced"
    );

    let running = with_status(queued.clone(), RunStatus::Running, None);
    assert_eq!(
        store.update(&running).await.expect("update"),
        UpdateOutcome::Updated
    );
    let done = with_status(queued.clone(), RunStatus::Completed, Some(Verdict::Ok));
    assert_eq!(
        store.update(&done).await.expect("update"),
        UpdateOutcome::Updated
    );

    // A late executor (a redelivery) and a late failure both leave the result alone.
    for late in [
        running.clone(),
        with_status(
            queued.clone(),
            RunStatus::Completed,
            Some(Verdict::InternalError),
        ),
    ] {
        assert_eq!(
            store.update(&late).await.expect("update"),
            UpdateOutcome::AlreadyTerminal
        );
    }
    let stored = store.get("run_final").await.expect("get").expect("stored");
    assert_eq!(stored.run.status, RunStatus::Completed);
    assert_eq!(stored.run.verdict, Some(Verdict::Ok));
}

#[tokio::test]
async fn a_cancelled_record_is_final_too_and_a_missing_one_is_not_created() {
    let store = store("cancelled").await;
    let queued = record("run_cancelled");
    store.create(&queued).await.expect("create");
    let cancelled = with_status(
        queued.clone(),
        RunStatus::Cancelled,
        Some(Verdict::Cancelled),
    );
    assert_eq!(
        store.update(&cancelled).await.expect("update"),
        UpdateOutcome::Updated
    );
    let finished = with_status(queued, RunStatus::Completed, Some(Verdict::Ok));
    assert_eq!(
        store.update(&finished).await.expect("update"),
        UpdateOutcome::AlreadyTerminal
    );

    let never = record("run_never_created");
    assert_eq!(
        store.update(&never).await.expect("update"),
        UpdateOutcome::Missing
    );
    assert!(store.get("run_never_created").await.expect("get").is_none());
}

#[tokio::test]
async fn updates_keep_the_records_lifetime() {
    let store = store("ttl").await;
    let queued = record("run_ttl");
    store.create(&queued).await.expect("create");
    let key = Names::new(format!("test_store_ttl_{}", std::process::id()))
        .expect("prefix")
        .run_key("run_ttl");
    let before = ttl_of(&redis_url(), &key).await;
    assert!(
        (590..=600).contains(&before),
        "created with its TTL: {before}"
    );
    let running = with_status(queued, RunStatus::Running, None);
    store.update(&running).await.expect("update");
    let after = ttl_of(&redis_url(), &key).await;
    assert!(
        after > 0 && after <= before,
        "KEEPTTL: {before} then {after}"
    );
}

#[tokio::test]
async fn an_idempotency_key_names_the_first_run_until_released() {
    let store = store("idempotency").await;
    let first = store
        .bind_idempotency_key("acme", "k1", "run_a")
        .await
        .expect("bind");
    assert_eq!(first, "run_a");
    let second = store
        .bind_idempotency_key("acme", "k1", "run_b")
        .await
        .expect("bind");
    assert_eq!(second, "run_a", "the key keeps its first run");
    let other_tenant = store
        .bind_idempotency_key("globex", "k1", "run_c")
        .await
        .expect("bind");
    assert_eq!(other_tenant, "run_c", "keys are per tenant");
    store
        .release_idempotency_key("acme", "k1")
        .await
        .expect("release");
    let again = store
        .bind_idempotency_key("acme", "k1", "run_d")
        .await
        .expect("bind");
    assert_eq!(again, "run_d");
}

fn run_id_at(millis_ago: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as u64;
    format!("run_{}", ulid::Ulid::from_parts(now - millis_ago, 7))
}

#[tokio::test]
async fn a_tenants_runs_are_listed_newest_first_and_the_expired_ones_forgotten() {
    let store = store("listing").await;
    // Older than the store's 600 s lifetime: dropped from the list when a newer run comes.
    let ancient = record(&run_id_at(3_600_000));
    let ids: Vec<String> = [30_000, 20_000, 10_000].map(run_id_at).to_vec();
    store.create(&ancient).await.expect("create");
    for id in &ids {
        store.create(&record(id)).await.expect("create");
    }
    let mut other = record(&run_id_at(5_000));
    other.tenant = "globex".to_owned();
    store.create(&other).await.expect("create");

    let first = store.list("acme", None, 2).await.expect("page 1");
    let listed: Vec<&str> = first.records.iter().map(|r| r.run.id.as_str()).collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = first.next_cursor.expect("more follow");
    let second = store.list("acme", Some(&cursor), 2).await.expect("page 2");
    let listed: Vec<&str> = second.records.iter().map(|r| r.run.id.as_str()).collect();
    assert_eq!(
        listed,
        [ids[0].as_str()],
        "the ancient run is no longer listed"
    );
    assert!(second.next_cursor.is_none());
}

#[tokio::test]
async fn a_tenant_gets_its_burst_then_waits_and_others_are_not_slowed() {
    let store = store("rate").await;
    let rate = coderun_store::Rate {
        per_second: 1.0,
        burst: 3,
    };
    for request in 0..3 {
        assert_eq!(
            store.admit("acme", rate).await.expect("admit"),
            None,
            "{request}"
        );
    }
    let wait = store
        .admit("acme", rate)
        .await
        .expect("admit")
        .expect("the fourth waits");
    assert!(
        wait > Duration::from_millis(500) && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    assert_eq!(store.admit("globex", rate).await.expect("admit"), None);
}

#[tokio::test]
async fn a_run_claimed_by_one_job_refuses_another_and_takes_the_same_one_again() {
    let store = store("claim").await;
    let queued = record("run_claim");
    assert!(store.create(&queued).await.expect("create"));
    let claim = |sequence: u64| {
        let mut running = with_status(queued.clone(), RunStatus::Running, None);
        running.job_sequence = Some(sequence);
        running
    };
    let first = store.claim_for_job(&claim(7)).await.expect("claim");
    assert_eq!(first.0, UpdateOutcome::Updated);
    assert!(first.1.is_some(), "the running event is logged");
    // A duplicate job of the same run (another message) is refused and logs nothing.
    let duplicate = store.claim_for_job(&claim(9)).await.expect("claim");
    assert_eq!(duplicate, (UpdateOutcome::HeldByAnotherJob, None));
    // The same job again (its executor died, or the write is retried) takes it.
    let again = store.claim_for_job(&claim(7)).await.expect("claim");
    assert_eq!(again.0, UpdateOutcome::Updated);
    let stored = store
        .get("run_claim")
        .await
        .expect("read")
        .expect("a record");
    assert_eq!(stored.job_sequence, Some(7));
    // Once final, no claim moves it.
    let done = with_status(claim(7), RunStatus::Completed, Some(Verdict::Ok));
    assert_eq!(
        store.update(&done).await.expect("update"),
        UpdateOutcome::Updated
    );
    let late = store.claim_for_job(&claim(7)).await.expect("claim");
    assert_eq!(late.0, UpdateOutcome::AlreadyTerminal);

    // A run marked running by an executor from before claims names no job: its job,
    // delivered again to a newer executor, may claim it.
    let old = record("run_claim_old");
    assert!(store.create(&old).await.expect("create"));
    let unclaimed = with_status(old.clone(), RunStatus::Running, None);
    assert_eq!(
        store.update(&unclaimed).await.expect("update"),
        UpdateOutcome::Updated
    );
    let mut newer = with_status(old, RunStatus::Running, None);
    newer.job_sequence = Some(11);
    assert_eq!(
        store.claim_for_job(&newer).await.expect("claim").0,
        UpdateOutcome::Updated
    );
}

/// The deployment's backlog cap counts the queued runs of a language, all tenants together:
/// at the cap the next run of that language is refused, another language is not, and a run
/// that starts or ends makes room.
#[tokio::test]
async fn a_languages_backlog_cap_counts_queued_runs_of_every_tenant() {
    let store = store("backlog").await;
    let cap = ActiveQuota {
        max_backlog: Some(2),
        ..Default::default()
    };
    let mut first = record("run_backlog_1");
    let mut second = record("run_backlog_2");
    second.tenant = "globex".to_owned();
    for run in [&first, &second] {
        assert_eq!(
            store.create_within(run, cap).await.expect("create"),
            Created::Stored
        );
    }
    let third = record("run_backlog_3");
    assert_eq!(
        store.create_within(&third, cap).await.expect("create"),
        Created::OverBacklog
    );
    assert!(
        store.get("run_backlog_3").await.expect("read").is_none(),
        "nothing stored"
    );
    let mut other_language = record("run_backlog_bash");
    other_language.run.language = "bash".to_owned();
    assert_eq!(
        store
            .create_within(&other_language, cap)
            .await
            .expect("create"),
        Created::Stored
    );

    first = with_status(first, RunStatus::Running, None);
    assert_eq!(
        store.update(&first).await.expect("start"),
        UpdateOutcome::Updated
    );
    assert_eq!(
        store.create_within(&third, cap).await.expect("create"),
        Created::Stored
    );
    let fourth = record("run_backlog_4");
    assert_eq!(
        store.create_within(&fourth, cap).await.expect("create"),
        Created::OverBacklog
    );
    second = with_status(second, RunStatus::Completed, Some(Verdict::InternalError));
    assert_eq!(
        store.update(&second).await.expect("end"),
        UpdateOutcome::Updated
    );
    assert_eq!(
        store.create_within(&fourth, cap).await.expect("create"),
        Created::Stored
    );

    // A record gone early (evicted, deleted) gives its place back when it is next written.
    let fifth = record("run_backlog_5");
    assert_eq!(
        store.create_within(&fifth, cap).await.expect("create"),
        Created::OverBacklog
    );
    let client = redis::Client::open(redis_url()).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    let names = Names::new(format!("test_store_backlog_{}", std::process::id())).expect("names");
    let _: i64 = redis::cmd("DEL")
        .arg(names.run_key("run_backlog_4"))
        .query_async(&mut connection)
        .await
        .expect("DEL");
    let started = with_status(fourth, RunStatus::Running, None);
    assert_eq!(
        store.update(&started).await.expect("write"),
        UpdateOutcome::Missing
    );
    assert_eq!(
        store.create_within(&fifth, cap).await.expect("create"),
        Created::Stored
    );
}
