//! A steady load for fault tests: bash runs submitted one after another at a fixed pace
//! while the test breaks something, every answer counted; then what became of the runs that
//! were accepted (completed, failed, lost, started more than once).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coderun_client::{Client, ClientError};
use coderun_schema::run::{RunRequest, Verdict};

use crate::{times_started, wait_all_terminal};

/// What the load's submissions got.
#[derive(Debug, Default)]
pub struct Submitted {
    /// Accepted runs: id and what the program must print.
    pub accepted: Vec<(String, String)>,
    /// `503` answers, and how many of them said when to come back.
    pub unavailable: usize,
    pub unavailable_with_retry_after: usize,
    /// Any other failure: status (none for no answer) and why.
    pub other: Vec<(Option<u16>, String)>,
}

/// What became of the accepted runs.
#[derive(Debug, Default)]
pub struct Settled {
    pub accepted: usize,
    pub completed: usize,
    /// Runs that did not end `ok` with their output: why.
    pub failed: Vec<String>,
    pub lost: usize,
    pub duplicated: usize,
}

impl Settled {
    /// Fails the test when an accepted run was lost, failed or started more than once.
    pub fn assert_every_run_ok_once(&self) {
        assert_eq!(self.lost, 0, "accepted runs never finished: {self}");
        assert!(self.failed.is_empty(), "runs failed: {:?}", self.failed);
        assert_eq!(self.duplicated, 0, "runs started more than once: {self}");
    }
}

impl Submitted {
    /// Fails the test when a submission got anything but a run or a `503` with `Retry-After`.
    pub fn assert_refusals_say_when(&self) {
        assert!(self.other.is_empty(), "other answers: {:?}", self.other);
        assert_eq!(
            self.unavailable_with_retry_after, self.unavailable,
            "a 503 without Retry-After"
        );
    }
}

impl std::fmt::Display for Settled {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "accepted {}, completed {}, failed {}, lost {}, duplicated {}",
            self.accepted,
            self.completed,
            self.failed.len(),
            self.lost,
            self.duplicated
        )
    }
}

/// The load running in the background.
pub struct SteadyLoad {
    stop: Arc<AtomicBool>,
    /// Runs accepted so far.
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Submitted>,
}

fn echo(line: &str) -> RunRequest {
    RunRequest {
        language: "bash".to_owned(),
        source: Some(format!("echo {line}")),
        ..Default::default()
    }
}

impl SteadyLoad {
    /// Submits `echo load-<n>` in bash, one after another, `every` apart.
    pub fn start(client: &Client, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (client, stopped, counted) = (client.clone(), stop.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            let mut submitted = Submitted::default();
            let mut index = 0;
            while !stopped.load(Ordering::SeqCst) {
                let line = format!("load-{index}");
                index += 1;
                match client.create_run(&echo(&line), &Default::default()).await {
                    Ok(reply) => {
                        submitted
                            .accepted
                            .push((reply.body.id, format!("{line}\n")));
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(ClientError::Problem {
                        status: 503,
                        retry_after,
                        ..
                    }) => {
                        submitted.unavailable += 1;
                        submitted.unavailable_with_retry_after +=
                            usize::from(retry_after.is_some());
                    }
                    Err(error) => submitted.other.push((error.status(), error.to_string())),
                }
                tokio::time::sleep(every).await;
            }
            submitted
        });
        Self {
            stop,
            accepted,
            task,
        }
    }

    /// Runs accepted so far.
    pub fn accepted_so_far(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Whether `more` runs are accepted from now on within `within`.
    pub async fn accepts_more(&self, more: usize, within: Duration) -> bool {
        let from = self.accepted_so_far();
        crate::wait_until(within, || async {
            (self.accepted_so_far() >= from + more).then_some(())
        })
        .await
        .is_some()
    }

    /// Stops submitting; what the submissions got.
    pub async fn stop(self) -> Submitted {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the load")
    }
}

impl Submitted {
    /// Waits up to `within` for every accepted run to end and checks each.
    pub async fn settle(&self, client: &Client, within: Duration) -> Settled {
        let ids: Vec<String> = self.accepted.iter().map(|(id, _)| id.clone()).collect();
        let finished = wait_all_terminal(client, &ids, within).await;
        let mut settled = Settled {
            accepted: ids.len(),
            completed: finished.as_ref().map_or(0, Vec::len),
            ..Default::default()
        };
        settled.lost = settled.accepted - settled.completed;
        for (run, (_, line)) in finished.iter().flatten().zip(&self.accepted) {
            if (run.verdict, run.stdout()) != (Some(Verdict::Ok), line.as_str()) {
                let why = format!("{}: {:?} {:?}", run.id, run.verdict, run.error);
                settled.failed.push(why);
            }
            settled.duplicated += usize::from(times_started(client, &run.id).await > 1);
        }
        settled
    }
}
