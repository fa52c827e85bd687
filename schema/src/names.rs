//! Names of NATS subjects, JetStream streams and consumers, and Redis keys.
//!
//! Everything lives under one prefix (`coderun` in production). Tests give each test its own
//! prefix, so suites run side by side on one NATS and one Redis without stealing messages.

/// The production prefix.
pub const DEFAULT_PREFIX: &str = "coderun";

/// All names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// `prefix` must be a NATS subject token and a Redis key part: letters, digits, `_`, `-`.
    pub fn new(prefix: impl Into<String>) -> Result<Self, String> {
        let prefix = prefix.into();
        let valid = !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if valid {
            Ok(Self { prefix })
        } else {
            Err(format!(
                "`{prefix}` is not a valid name prefix: use letters, digits, `_` and `-`"
            ))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// JetStream subject the gateway publishes accepted runs to.
    pub fn runs_submit(&self) -> String {
        format!("{}.runs.submit", self.prefix)
    }

    /// The pool (the NATS work queue) whose executors run a language's jobs: one per
    /// language for now; hardened runtimes and architectures may add pools of their own.
    pub fn pool_of(language: &str) -> String {
        language.to_owned()
    }

    /// JetStream subject of one executor pool's jobs.
    pub fn jobs(&self, pool: &str) -> String {
        format!("{}.jobs.{pool}", self.prefix)
    }

    /// Every pool's jobs.
    pub fn jobs_all(&self) -> String {
        format!("{}.jobs.*", self.prefix)
    }

    /// Core NATS subject of one run's progress events.
    pub fn run_events(&self, run_id: &str) -> String {
        format!("{}.runs.events.{run_id}", self.prefix)
    }

    /// Core NATS subject of a request to stop one run (gateway → the executor running it).
    pub fn run_cancel(&self, run_id: &str) -> String {
        format!("{}.runs.cancel.{run_id}", self.prefix)
    }

    /// JetStream subject of a webhook that is due (executor or gateway → scheduler).
    pub fn webhooks_due(&self) -> String {
        format!("{}.webhooks.due", self.prefix)
    }

    /// Every run's cancel subject (what an executor subscribes to).
    pub fn run_cancel_all(&self) -> String {
        format!("{}.runs.cancel.*", self.prefix)
    }

    /// Core NATS subject of executor heartbeats.
    pub fn executor_heartbeat(&self) -> String {
        format!("{}.executors.heartbeat", self.prefix)
    }

    fn stream_prefix(&self) -> String {
        self.prefix.to_ascii_uppercase().replace('-', "_")
    }

    /// The stream that holds submitted runs (work queue, file storage).
    pub fn submit_stream(&self) -> String {
        format!("{}_SUBMIT", self.stream_prefix())
    }

    /// The stream that holds dispatched jobs of every pool (work queue, file storage).
    pub fn jobs_stream(&self) -> String {
        format!("{}_JOBS", self.stream_prefix())
    }

    /// The stream that holds webhooks due (work queue, file storage).
    pub fn webhooks_stream(&self) -> String {
        format!("{}_WEBHOOKS", self.stream_prefix())
    }

    /// The work streams of the deployment: submissions, jobs and webhooks due.
    pub fn work_streams(&self) -> [String; 3] {
        [
            self.submit_stream(),
            self.jobs_stream(),
            self.webhooks_stream(),
        ]
    }

    /// The key-value bucket of the active scheduler's lease (history 1, entries living one
    /// lease).
    pub fn scheduler_lease_bucket(&self) -> String {
        format!("{}_SCHEDULER", self.stream_prefix())
    }

    /// Every stream of the deployment, the lease bucket's included: what removing a
    /// deployment (a test's, the bench's) deletes.
    pub fn streams(&self) -> [String; 4] {
        let [submit, jobs, webhooks] = self.work_streams();
        let lease = format!("KV_{}", self.scheduler_lease_bucket());
        [submit, jobs, webhooks, lease]
    }

    /// The scheduler's durable consumer on the webhooks stream.
    pub fn webhook_consumer(&self) -> String {
        "webhooks".to_owned()
    }

    /// The scheduler's durable consumer on the submit stream.
    pub fn scheduler_consumer(&self) -> String {
        "scheduler".to_owned()
    }

    /// The durable consumer all executors of one pool share.
    pub fn pool_consumer(&self, pool: &str) -> String {
        format!("pool-{pool}")
    }

    /// Redis key of a run record.
    pub fn run_key(&self, run_id: &str) -> String {
        format!("{}:run:{run_id}", self.prefix)
    }

    /// Redis key of a run's event log: a list of `RunEvent` JSON, oldest first, expiring with
    /// the record.
    pub fn run_events_key(&self, run_id: &str) -> String {
        format!("{}:run:{run_id}:events", self.prefix)
    }

    /// Redis key of a run's webhook delivery status (`WebhookStatus` JSON), expiring with the
    /// record; the store merges it into the run it reads.
    pub fn run_webhook_key(&self, run_id: &str) -> String {
        format!("{}:run:{run_id}:webhook", self.prefix)
    }

    /// Redis key of a tenant's runs: a sorted set of run ids, all of score 0, so ordered by
    /// the ids themselves, whose ULIDs sort by creation time.
    pub fn tenant_runs_key(&self, tenant: &str) -> String {
        format!("{}:tenant:{tenant}:runs", self.prefix)
    }

    /// Redis key of a tenant's queued runs: a sorted set of run ids scored by creation time
    /// (milliseconds), for the queued-runs quota.
    pub fn tenant_queued_key(&self, tenant: &str) -> String {
        format!("{}:tenant:{tenant}:queued", self.prefix)
    }

    /// Redis key of a tenant's running runs, like [`Names::tenant_queued_key`].
    pub fn tenant_running_key(&self, tenant: &str) -> String {
        format!("{}:tenant:{tenant}:running", self.prefix)
    }

    /// Redis key of a pool's runs accepted and not started (status `queued`, wherever they
    /// wait), all tenants together: a sorted set of run ids scored by creation time
    /// (milliseconds), for the deployment's cap on a language's backlog.
    pub fn pool_unstarted_key(&self, pool: &str) -> String {
        format!("{}:pool:{pool}:unstarted", self.prefix)
    }

    /// Redis key of a tenant's request rate (the GCRA's next arrival time).
    pub fn rate_key(&self, tenant: &str) -> String {
        format!("{}:rate:{tenant}", self.prefix)
    }

    /// Redis key of the tenants with runs waiting in `pool`'s fair queues: a sorted set
    /// scored by when each started waiting (milliseconds).
    pub fn pool_waiting_key(&self, pool: &str) -> String {
        format!("{}:pool:{pool}:waiting", self.prefix)
    }

    /// Redis key of one tenant's runs waiting in `pool`: a list of run ids, oldest first.
    pub fn pool_queue_key(&self, pool: &str, tenant: &str) -> String {
        format!("{}:pool:{pool}:queue:{tenant}", self.prefix)
    }

    /// Redis key of every run id waiting in `pool`'s queues (a set: a run is queued once, and
    /// its size is the pool's backlog).
    pub fn pool_queued_key(&self, pool: &str) -> String {
        format!("{}:pool:{pool}:queued", self.prefix)
    }

    /// Redis key of every pool that has had runs in its fair queues (a set).
    pub fn pools_queued_key(&self) -> String {
        format!("{}:pools", self.prefix)
    }

    /// Redis key marking a run released to the jobs stream, expiring with its record: its
    /// submission, delivered again, is not queued a second time.
    pub fn run_released_key(&self, run_id: &str) -> String {
        format!("{}:run:{run_id}:released", self.prefix)
    }

    /// Redis key of the runs taken off a fair queue whose job is not yet stored in the jobs
    /// stream: a hash of run id to pool, published again by a scheduler that takes over.
    pub fn releasing_key(&self) -> String {
        format!("{}:releasing", self.prefix)
    }

    /// Redis key mapping a tenant's idempotency key to a run id.
    pub fn idempotency_key(&self, tenant: &str, key: &str) -> String {
        format!("{}:idempotency:{tenant}:{key}", self.prefix)
    }
}

impl Default for Names {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_names_match_the_design() {
        let names = Names::default();
        assert_eq!(names.runs_submit(), "coderun.runs.submit");
        assert_eq!(names.jobs(&Names::pool_of("python")), "coderun.jobs.python");
        assert_eq!(names.run_events("run_1"), "coderun.runs.events.run_1");
        assert_eq!(names.executor_heartbeat(), "coderun.executors.heartbeat");
        assert_eq!(names.submit_stream(), "CODERUN_SUBMIT");
    }

    #[test]
    fn prefixes_that_would_break_subjects_are_refused() {
        assert!(Names::new("a.b").is_err());
        assert!(Names::new("").is_err());
        assert!(Names::new("test-01_x").is_ok());
    }
}
