//! Two scheduler processes, one active: kill -9 of the active one while 200 runs wait, and the
//! other takes over; every run is released and executed once.
//!
//! The test plays the gateway (records and submissions) and an executor (heartbeats; each job
//! taken from the jobs stream is counted, its record made final, and acknowledged).

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coderun_schema::messages::JobDispatched;
use coderun_schema::run::{RunStatus, Verdict};
use futures::StreamExt;
use support::submission;

const BINARY: &str = env!("CARGO_BIN_EXE_coderun-scheduler");
const LEASE_MS: u64 = 3000;
const RUNS: usize = 200;

/// A scheduler process of the deployment; killed (SIGKILL) when dropped.
struct Process(Child);

impl Process {
    fn start(prefix: &str) -> Self {
        let child = Command::new(BINARY)
            .env("CODERUN_SCHEDULER__BUS__URL", support::nats_url())
            .env("CODERUN_SCHEDULER__BUS__PREFIX", prefix)
            .env("CODERUN_SCHEDULER__STORE__URL", support::redis_url())
            .env("CODERUN_SCHEDULER__OPS__PORT", "0")
            .env("CODERUN_SCHEDULER__SUBMIT__ACK_WAIT_SECS", "2")
            .env("CODERUN_SCHEDULER__LEADER__LEASE_MS", LEASE_MS.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the scheduler binary starts");
        Self(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The process id of the scheduler holding the lease, once one does.
async fn active_pid(deployment: &support::Scheduler) -> Option<u32> {
    let bucket = deployment.bus.names().scheduler_lease_bucket();
    let store = deployment
        .bus
        .jetstream()
        .get_key_value(bucket)
        .await
        .ok()?;
    let holder = store.get("active").await.ok()??;
    let holder = String::from_utf8_lossy(&holder).into_owned();
    holder.split('-').nth(1)?.parse().ok()
}

async fn wait_for_active(deployment: &support::Scheduler, not: Option<u32>) -> u32 {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        match active_pid(deployment).await {
            Some(pid) if Some(pid) != not => return pid,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("no scheduler became active within 30 s");
}

/// Executes jobs as an executor with `slots` would, until every run is final: how many times
/// each run was delivered.
async fn execute_all(deployment: &support::Scheduler, ids: &[String]) -> BTreeMap<String, u32> {
    let consumer = deployment.pool("bash").await;
    let mut deliveries: BTreeMap<String, u32> = BTreeMap::new();
    let started = Instant::now();
    while deliveries.len() < ids.len() && started.elapsed() < Duration::from_secs(120) {
        let mut batch = consumer
            .fetch()
            .max_messages(4)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("fetch");
        while let Some(message) = batch.next().await {
            let message = message.expect("a job");
            let job: JobDispatched = coderun_bus::decode(&message.payload).expect("a job");
            *deliveries.entry(job.run_id.clone()).or_default() += 1;
            let mut record = deployment
                .store
                .get(&job.run_id)
                .await
                .expect("Redis answers")
                .expect("the record exists");
            record.run.status = RunStatus::Completed;
            record.run.verdict = Some(Verdict::Ok);
            deployment
                .store
                .update(&record)
                .await
                .expect("the result is written");
            message.ack().await.expect("ack");
        }
    }
    deliveries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_active_scheduler_loses_no_run_and_runs_none_twice() {
    let mut deployment = support::without_scheduler().await;
    let prefix = deployment.bus.names().prefix().to_owned();
    let mut schedulers = vec![Process::start(&prefix)];
    let first = wait_for_active(&deployment, None).await;
    assert_eq!(first, schedulers[0].pid());
    schedulers.push(Process::start(&prefix));

    // An executor with 4 slots that takes nothing yet: 6 jobs are released (its slots and two
    // waiting), the other runs wait in the fair queue.
    deployment.announce_executor("executor-1", &["bash"], 4);
    let mut ids = Vec::new();
    for index in 0..RUNS {
        let tenant = if index % 2 == 0 {
            "tenant-a"
        } else {
            "tenant-b"
        };
        let submitted = submission(&format!("run_{index:03}"), tenant, "bash");
        deployment.submit(&submitted).await;
        ids.push(submitted.run_id);
    }
    // Every submission taken: the released jobs in the stream, the rest in the fair queue.
    let queues = deployment.store.queues();
    let mut queued = 0;
    for _ in 0..100 {
        queued = queues.backlog("bash").await.expect("Redis answers");
        if queued as usize >= RUNS - 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    schedulers[0].kill();
    let killed = Instant::now();
    let second = wait_for_active(&deployment, Some(first)).await;
    let takeover = killed.elapsed();
    assert_eq!(second, schedulers[1].pid());

    let deliveries = execute_all(&deployment, &ids).await;
    let twice: Vec<_> = deliveries.iter().filter(|(_, count)| **count > 1).collect();
    let mut unfinished = Vec::new();
    for id in &ids {
        let record = deployment.store.get(id).await.expect("Redis answers");
        if record.map(|record| record.run.status) != Some(RunStatus::Completed) {
            unfinished.push(id.clone());
        }
    }
    println!(
        "{RUNS} runs, {queued} of them queued when the active scheduler was killed; the standby \
         took over after {takeover:?}; executed {} runs, {} of them more than once; {} not final",
        deliveries.len(),
        twice.len(),
        unfinished.len()
    );
    assert!(twice.is_empty(), "executed twice: {twice:?}");
    assert!(unfinished.is_empty(), "never final: {unfinished:?}");
    assert_eq!(deliveries.len(), RUNS);
    assert!(
        takeover < Duration::from_millis(LEASE_MS * 2),
        "the standby took {takeover:?} to take over"
    );
    drop(schedulers);
    deployment.stop().await;
}
