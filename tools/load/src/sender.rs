//! Sending the mix's runs and keeping the books: every run accepted (so none can go missing
//! unnoticed), every verdict, every refusal, every answer that was not the one expected.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coderun_bench::load::{Operation, Outcome};
use coderun_client::{Client, ClientError, CreateOptions};
use coderun_schema::run::Run;
use serde::Serialize;

use crate::mix::{verdict_name, Job, Mix};

/// The longest one wait on the API lasts, in milliseconds (below the gateway's maximum).
const WAIT_MS: u64 = 60_000;
/// Answers not as expected kept for the report, at most.
const KEPT_WRONG: usize = 10;
/// Times a request that got no answer at all is sent (with the same idempotency key).
const SEND_TRIES: u32 = 3;

/// A run the API accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub id: String,
    pub label: String,
}

/// What the load's runs got, so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Books {
    pub sent: usize,
    pub accepted: Vec<Accepted>,
    /// Per mix entry, how many runs ended with each verdict.
    pub verdicts: BTreeMap<String, BTreeMap<String, usize>>,
    /// Requests the API refused, by status (`no answer` when none came).
    pub refused: BTreeMap<String, usize>,
    /// Runs that finished with another verdict or output than their entry's.
    pub wrong: usize,
    /// The first few of those: why.
    pub wrong_examples: Vec<String>,
}

/// Sends the `n`th run of the mix at each call of its operation.
pub struct Sender {
    client: Client,
    mix: Mix,
    lost_after: Duration,
    next: AtomicU64,
    books: Mutex<Books>,
    /// This load's part of every idempotency key.
    session: String,
}

impl Sender {
    pub fn new(client: Client, mix: Mix, lost_after: Duration) -> Arc<Self> {
        Arc::new(Self {
            client,
            mix,
            lost_after,
            next: AtomicU64::new(0),
            books: Mutex::new(Books::default()),
            session: session_id(),
        })
    }

    /// The books so far.
    pub fn books(&self) -> Books {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One run per call, for the bench's loops.
    pub fn operation(self: &Arc<Self>) -> Operation {
        let sender = self.clone();
        Arc::new(move || {
            let sender = sender.clone();
            Box::pin(async move { sender.once().await })
        })
    }

    async fn once(&self) -> Outcome {
        let job = self.mix.job(self.next.fetch_add(1, Ordering::Relaxed));
        self.lock().sent += 1;
        let started = Instant::now();
        // A key of the run's own: a request whose answer was lost is sent again with it, and
        // gets the same run rather than a second one (or an accepted run nobody reads back).
        let options = CreateOptions {
            wait: true,
            timeout_ms: Some((self.lost_after.as_millis() as u64).clamp(1, WAIT_MS)),
            idempotency_key: Some(format!("{}-{}", self.session, job.number)),
        };
        let mut tries = 0;
        let mut run = loop {
            tries += 1;
            match self.client.create_run(&job.request, &options).await {
                Ok(reply) => break reply.body,
                Err(error) if error.status().is_none() && tries < SEND_TRIES => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return self.refused(&error),
            }
        };
        self.lock().accepted.push(Accepted {
            id: run.id.clone(),
            label: job.label.clone(),
        });
        while !run.status.is_terminal() {
            let Some(left) = self.lost_after.checked_sub(started.elapsed()) else {
                return Outcome::Lost;
            };
            let wait_ms = (left.as_millis() as u64).clamp(1, WAIT_MS);
            match self.client.get_run(&run.id, Some(wait_ms)).await {
                Ok(reply) => run = reply.body,
                // A read that failed is retried until the run counts as lost.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        self.judge(&job, &run)
    }

    fn refused(&self, error: &ClientError) -> Outcome {
        let status = error
            .status()
            .map_or_else(|| "no answer".to_owned(), |status| status.to_string());
        *self.lock().refused.entry(status).or_default() += 1;
        Outcome::Failed(match error.problem() {
            Some(problem) => format!("refused {}: {}", problem.status, problem.title),
            None => format!("refused: {error}"),
        })
    }

    fn judge(&self, job: &Job, run: &Run) -> Outcome {
        let verdict = run.verdict.map_or_else(|| "none".to_owned(), verdict_name);
        let mut books = self.lock();
        *books
            .verdicts
            .entry(job.label.clone())
            .or_default()
            .entry(verdict.clone())
            .or_default() += 1;
        let output_right = job
            .stdout
            .as_ref()
            .is_none_or(|stdout| run.stdout() == *stdout);
        if run.verdict == Some(job.verdict) && output_right {
            let stages = run.compile.iter().chain(run.run.iter()).chain(&run.tests);
            return Outcome::Succeeded {
                program_cpu_ms: stages.map(|stage| stage.cpu_ms).sum(),
                queue_ms: run.queue_ms,
            };
        }
        let why = format!(
            "{} run {}: verdict {verdict}, stdout {:?}, error {:?}",
            job.label,
            run.id,
            run.stdout(),
            run.error
        );
        books.wrong += 1;
        if books.wrong_examples.len() < KEPT_WRONG {
            books.wrong_examples.push(why.clone());
        }
        Outcome::Failed(why)
    }
}

/// A name for this load, unique enough among the loads one tenant runs.
fn session_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("coderun-load-{}-{nanos:x}", std::process::id())
}
