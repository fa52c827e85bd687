//! How a test stack is started: [`StackOptions`], every setting a test may change, with the
//! defaults most tests keep.

use std::path::PathBuf;

use crate::{agent_path, coderun_boot_defaults, nats_url, redis_url};

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The agent the executor mounts (tests may point it at a copy they later remove).
    pub agent_path: PathBuf,
    pub slots: u32,
    /// Languages the executor serves; empty means all with an image.
    pub languages: Vec<String>,
    /// The OCI runtime of the sandboxes: `runc` or `runsc`.
    pub runtime: String,
    /// How runs are kept apart (`sandbox.isolation`).
    pub isolation: coderun_executor::config::Isolation,
    /// Pre-warmed containers per language.
    pub warm_per_language: usize,
    /// Per-language overrides of `warm_per_language`.
    pub warm_sizes: std::collections::BTreeMap<String, usize>,
    /// The Redis of the gateway and executor (a test's [`private_redis::PrivateRedis`]).
    pub redis_url: String,
    /// The NATS of every service (a test's [`private_nats::PrivateNats`]), and the copies of
    /// each stream it keeps (`bus.stream_replicas`; more than 1 needs a cluster).
    pub nats_url: String,
    pub stream_replicas: usize,
    /// Deliveries of a job before NATS gives it up (`worker.max_deliver`).
    pub max_deliver: i64,
    /// Tenant A's `requests_per_second` and `burst` (tenant B never has a rate).
    pub tenant_a_rate: Option<(f64, u32)>,
    /// Tenant A's `concurrent_runs` and `queued_runs` quotas.
    pub tenant_a_concurrent_runs: Option<u32>,
    pub tenant_a_queued_runs: Option<u32>,
    /// `host:port` webhook targets allowed although internal (gateway and scheduler).
    pub callback_allow: Vec<String>,
    /// Whether the stack runs a scheduler in this process. Without one, the test starts
    /// schedulers of its own ([`processes::SchedulerProcess`]).
    pub in_process_scheduler: bool,
    /// The gateway's `runs.max_backlog` (0: no cap).
    pub max_backlog: u64,
    /// Whether the stack runs an executor in this process. Without one, the test starts
    /// executors of its own ([`processes`]) and waits for them.
    pub in_process_executor: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            agent_path: agent_path(),
            slots: 2,
            // The first three languages: enough for most tests, and each stack warms and
            // reads the version of only these. `languages.rs` takes the whole catalog.
            languages: ["bash", "python", "c"].map(str::to_owned).to_vec(),
            runtime: "runc".to_owned(),
            // Strict unless a test asks: the sandbox, attack, hardening and language tests run
            // every mode (`sandbox_modes`), fast_mode.rs what only the fast mode promises.
            isolation: coderun_executor::config::Isolation::Strict,
            warm_per_language: 2,
            warm_sizes: Default::default(),
            redis_url: redis_url(),
            nats_url: nats_url(),
            stream_replicas: 1,
            tenant_a_rate: None,
            tenant_a_concurrent_runs: None,
            tenant_a_queued_runs: None,
            callback_allow: Vec::new(),
            in_process_executor: true,
            in_process_scheduler: true,
            max_backlog: 0,
            max_deliver: coderun_boot_defaults::<coderun_executor::config::Config>(
                coderun_executor::config::DEFAULTS,
            )
            .worker
            .max_deliver,
        }
    }
}
