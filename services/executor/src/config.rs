//! The executor's configuration, loaded once at start-up (see `config/default.toml` for every
//! key and its meaning).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use coderun_schema::messages::Isolation;

pub use coderun_bus::BusConfig;
pub use coderun_store::StoreConfig;

/// Committed defaults.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// Keys whose environment value is a comma-separated list.
pub const LIST_KEYS: &[&str] = &["worker.languages"];

/// The executor's whole configuration: one field per section of `config/default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[bus]`: the NATS server the executor pulls its pools' jobs from and sends heartbeats
    /// and run events to.
    pub bus: BusConfig,
    /// `[store]`: the Redis server holding the run records the executor moves to `running`
    /// and then to their result.
    pub store: StoreConfig,
    /// `[worker]`: what this executor serves, how many runs at once, and how it deals with
    /// NATS (heartbeats, acknowledgements, redeliveries, the drain at shutdown).
    pub worker: WorkerConfig,
    /// `[sandbox]`: the containers runs execute in.
    pub sandbox: SandboxConfig,
    /// `[ops]`: where `/metrics`, `/healthz` and `/readyz` are served.
    pub ops: coderun_telemetry::ops::OpsConfig,
}

/// The `[worker]` section: pulling jobs, slots, heartbeats and shutdown.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// This executor's id: in its heartbeats (the gateway tracks live executors by it) and as
    /// its NATS client name. Empty means a new random `executor-<ulid>` at every start.
    pub id: String,
    /// Runs at once (at least 1), each in its own container: the size of the semaphore every
    /// pool's pulls share, and `slots_total` in heartbeats. Size it to the host's CPUs and
    /// memory.
    pub slots: u32,
    /// Catalog ids of the languages to serve. Empty means every catalog language whose image
    /// is present (the others are skipped); a language named here whose image is missing
    /// stops the executor at start. In the environment, a comma-separated list.
    pub languages: Vec<String>,
    /// Time between two heartbeats, in milliseconds (at least 100). Each heartbeat says it
    /// may be trusted for three intervals (`ttl_ms`), so a receiver forgets an executor that
    /// missed three in a row.
    pub heartbeat_interval_ms: u64,
    /// How long a pulled job may go unacknowledged before NATS delivers it again, in seconds.
    /// A job in hand is reported in progress every third of it, so only a job whose executor
    /// died comes back.
    pub ack_wait_secs: u64,
    /// Deliveries of one job before NATS stops redelivering it (at least 1). The executor
    /// does not hand a job back on its last delivery: a failure then ends the run as
    /// `internal_error` (once Redis answers). A run whose executor dies, or whose drain times
    /// out, on its job's last delivery is ended by the scheduler (the max-deliveries advisory,
    /// or its sweeper).
    pub max_deliver: i64,
    /// On SIGTERM or SIGINT, how long the executor waits for the jobs in hand to finish after
    /// it stops pulling, in seconds. Jobs still unfinished then are not acknowledged, so NATS
    /// delivers them again.
    pub drain_timeout_secs: u64,
}

/// The `[sandbox]` section: how each run's container is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Host path of the static agent binary (a file that must exist), bind-mounted read-only
    /// into every container as its PID 1: the agent is what runs and measures the programs.
    pub agent_path: PathBuf,
    /// The OCI runtime of every pool without an entry in `runtimes`: `runc` or `runsc`
    /// (gVisor, a stronger boundary at some cost in speed).
    pub runtime: String,
    /// Per-pool (language id) overrides of `runtime`, for hardened pools; every key must be a
    /// catalog id and every value `runc` or `runsc`.
    pub runtimes: std::collections::BTreeMap<String, String>,
    /// Size of each of the two tmpfs mounts, `/workspace` and `/tmp`, in MiB: the most a run
    /// can write to disk (in memory) there.
    pub workspace_mb: u64,
    /// CPUs the whole container may use, the agent included (fractions allowed; above 0 and
    /// at most 64), so one run cannot starve the others on the host.
    pub cpus: f64,
    /// Containers kept created and started ahead of time per language, with the language's
    /// default limits, so that a run with those limits skips creating and starting one; 0
    /// turns pre-warming off.
    pub warm_per_language: usize,
    /// Per-language overrides of `warm_per_language`, by catalog id (every key must be one).
    pub warm_sizes: std::collections::BTreeMap<String, usize>,
    /// Seconds added to a job's wall limits summed (compile + each test's run) to make the
    /// host's own deadline for the sandbox: the agent enforces each command's wall limit, and
    /// this deadline only catches a sandbox that stops answering (the run then ends
    /// `internal_error` and its container is removed).
    pub host_margin_secs: u64,
    /// Seconds a run waits for a Docker engine that does not answer (restarting) before its
    /// sandbox counts as failed: the program has not been given the job yet, so the run is
    /// started once the engine is back, exactly once. 0 fails such a run at once.
    pub engine_wait_secs: u64,
    /// The first of the uids programs run as (1000 to 4000000000): each run in flight leases
    /// the lowest free pair, `first_program_uid + 2n` to compile and `+ 2n + 1` to run, so no
    /// two concurrent runs share a user; in the fast mode it also leases `first_program_uid -
    /// 1 - n` as its inner sandbox's root. Choose a range no host account uses, with room
    /// below it for one uid per run in flight.
    pub first_program_uid: u32,
    /// The most output one run may send back, in MiB (stdout and stderr of every stage
    /// together, at least 1), whatever its limits add up to: it bounds what the executor
    /// holds for one run.
    pub max_output_mb: u64,
    /// The isolation mode of every pool without an entry in `isolations`: `strict` (a
    /// single-use container per run) or `fast` (a fresh inner sandbox per run in a container
    /// reused for one tenant). A runsc pool is always strict: gVisor gives an inner sandbox no
    /// mount namespace of its own. A tenant configured `strict` at the gateway is strict
    /// everywhere.
    pub isolation: Isolation,
    /// Per-pool (language id) overrides of `isolation`; every key must be a catalog id.
    pub isolations: std::collections::BTreeMap<String, Isolation>,
    /// Fast mode: the most runs one container serves before it is removed (at least 1); each
    /// container draws between three quarters of it and all of it, so that containers made
    /// together are not replaced together.
    pub reuse_max_runs: u32,
    /// Fast mode: the most seconds after its creation a container takes runs, drawn like
    /// `reuse_max_runs`.
    pub reuse_max_secs: u64,
    /// Fast mode: idle containers kept for their tenants' next runs, across all tenants and
    /// languages; past it the one idle longest is removed.
    pub reuse_idle_max: usize,
}

impl Config {
    /// Checks what serde cannot: ranges and files that must exist.
    pub fn validate(&self) -> Result<(), String> {
        self.bus.validate()?;
        self.store.validate()?;
        if self.worker.slots == 0 {
            return Err("worker.slots must be at least 1".to_owned());
        }
        if self.worker.heartbeat_interval_ms < 100 {
            return Err("worker.heartbeat_interval_ms must be at least 100".to_owned());
        }
        if self.worker.max_deliver < 1 {
            return Err("worker.max_deliver must be at least 1".to_owned());
        }
        if !self.sandbox.agent_path.is_file() {
            return Err(format!(
                "sandbox.agent_path {} is not a file: build it with scripts/up.sh or set CODERUN_EXECUTOR__SANDBOX__AGENT_PATH",
                self.sandbox.agent_path.display()
            ));
        }
        for runtime in std::iter::once(&self.sandbox.runtime).chain(self.sandbox.runtimes.values())
        {
            if !matches!(runtime.as_str(), "runc" | "runsc") {
                return Err(format!(
                    "sandbox runtimes must be runc or runsc, not {runtime}"
                ));
            }
        }
        let catalog = coderun_schema::catalog::Catalog::builtin();
        let per_pool = [
            ("worker.languages", self.worker.languages.iter().collect()),
            (
                "sandbox.runtimes",
                self.sandbox.runtimes.keys().collect::<Vec<&String>>(),
            ),
            (
                "sandbox.warm_sizes",
                self.sandbox.warm_sizes.keys().collect(),
            ),
            (
                "sandbox.isolations",
                self.sandbox.isolations.keys().collect(),
            ),
        ];
        for (key, ids) in per_pool {
            if let Some(unknown) = ids
                .into_iter()
                .find(|id| catalog.languages.iter().all(|language| &language.id != *id))
            {
                return Err(format!(
                    "{key} names `{unknown}`, which is not a catalog id"
                ));
            }
        }
        if self.sandbox.first_program_uid < 1001 || self.sandbox.first_program_uid > 4_000_000_000 {
            return Err("sandbox.first_program_uid must be between 1001 and 4000000000".to_owned());
        }
        if self.sandbox.reuse_max_runs == 0 {
            return Err("sandbox.reuse_max_runs must be at least 1".to_owned());
        }
        if self.sandbox.max_output_mb == 0 {
            return Err("sandbox.max_output_mb must be at least 1".to_owned());
        }
        if !(self.sandbox.cpus > 0.0 && self.sandbox.cpus <= 64.0) {
            return Err("sandbox.cpus must be above 0 and at most 64".to_owned());
        }
        Ok(())
    }

    /// `worker.heartbeat_interval_ms` as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.worker.heartbeat_interval_ms)
    }
}

impl SandboxConfig {
    /// The OCI runtime of one pool's sandboxes.
    pub fn runtime_for(&self, pool: &str) -> &str {
        self.runtimes.get(pool).unwrap_or(&self.runtime)
    }

    /// How one run is isolated: the tenant's requirement, then the pool's setting; always
    /// strict under gVisor.
    pub fn isolation_for(&self, pool: &str, required: Option<Isolation>) -> Isolation {
        if crate::container::is_gvisor(self.runtime_for(pool))
            || required == Some(Isolation::Strict)
        {
            return Isolation::Strict;
        }
        self.isolations.get(pool).copied().unwrap_or(self.isolation)
    }

    /// `max_output_mb` in bytes.
    pub fn max_output_bytes(&self) -> u64 {
        self.max_output_mb.saturating_mul(1024 * 1024)
    }
}
