//! One sandbox per run: a fresh container with the agent as PID 1 — a pre-warmed one when one
//! with exactly the run's settings is waiting — fed one job over the attached stdin, read back
//! through the attached stdout, then removed off the run's path. The host never follows a path
//! inside the container: it only reads the agent's messages.
//!
//! The settings themselves are decided in [`crate::container`]; the conversation with the agent
//! (the job, the pause between compile and run where the container's memory and pids limits
//! become the run stage's, the output and the answer) is in [`crate::agent_session`]. Creating,
//! naming and removing containers is in [`crate::containers`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use bollard::models::ContainerCreateBody;
use bollard::Docker;
use coderun_schema::agent::{AgentCommand, AgentJob, AgentResult, AgentStageDone};
use tokio_util::sync::CancellationToken;

use crate::agent_session::ContainerLimits;
use crate::config::{Isolation, SandboxConfig};
use crate::container::{
    container_body, container_key, host_pids_limit, is_gvisor, memory_bytes, SandboxSpec,
    LABEL_EXECUTOR,
};
use crate::users::ProgramUsers;
use crate::warm::{ReadyContainer, WarmStore};

/// What a run's caller watches it with: a token that kills the sandbox when cancelled, and
/// where each stage's result goes as soon as it ends (dropped with the watch, so a receiver
/// sees the channel close when the run is over).
#[derive(Debug, Default)]
pub struct RunWatch {
    pub cancel: CancellationToken,
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<AgentStageDone>>,
}

/// Why a sandbox could not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot reach the Docker engine: {0}")]
    Engine(#[source] bollard::errors::Error),
    #[error("failed to create the container: {0}")]
    Create(#[source] bollard::errors::Error),
    #[error("failed to attach to the container: {0}")]
    Attach(#[source] bollard::errors::Error),
    #[error("failed to start the container: {0}")]
    Start(#[source] bollard::errors::Error),
    #[error("failed to send the job to the agent: {0}")]
    Send(#[source] std::io::Error),
    #[error("the sandbox did not finish within {0:?}")]
    Deadline(Duration),
    #[error("the agent's answer is not valid: {0}")]
    Protocol(String),
    #[error("the sandbox ran out of memory as a whole")]
    OutOfMemory,
    #[error("the program's output passed the run's output budget")]
    OutputBudget,
    #[error("the run was cancelled")]
    Cancelled,
}

impl SandboxError {
    /// Whether the engine did not answer at all (not running, restarting, its socket gone),
    /// as opposed to refusing what was asked: asking again once it is back may succeed.
    pub fn engine_unreachable(&self) -> bool {
        match self {
            SandboxError::Engine(error)
            | SandboxError::Create(error)
            | SandboxError::Attach(error)
            | SandboxError::Start(error) => crate::engine::unreachable(error),
            _ => false,
        }
    }
}

/// Creates, runs and removes sandbox containers.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) docker: Docker,
    pub(crate) settings: SandboxConfig,
    /// The deployment's name prefix: in container names and labels.
    pub(crate) prefix: String,
    /// This executor's id: in its containers' labels.
    pub(crate) executor_id: String,
    /// Containers created and started ahead of time (filled by `warm::Warmer`).
    pub(crate) warm: Arc<WarmStore>,
    /// Removals of finished containers, done off the run's path; awaited at shutdown.
    pub(crate) removals: tokio_util::task::TaskTracker,
    /// Whether the engine is known not to answer (the pull loops wait while it is).
    pub(crate) engine: Arc<crate::engine::EngineState>,
    /// The users of the runs in flight.
    pub(crate) users: Arc<ProgramUsers>,
    /// Container creations timed and failures counted, by language.
    pub(crate) containers: crate::metrics::ContainerMetrics,
    /// Fast mode's idle containers, each bound to a tenant.
    pub(crate) reused: Arc<crate::reuse::ReuseStore>,
}

/// The most output a job can produce within its caps: stdout and stderr of the compile
/// command and of every test.
fn output_budget(job: &AgentJob) -> u64 {
    let both_streams = |command: &AgentCommand| command.limits.output_kb.saturating_mul(2 * 1024);
    let compile = job.compile.as_ref().map_or(0, both_streams);
    let tests = both_streams(&job.run).saturating_mul(job.stdins.len() as u64);
    compile.saturating_add(tests)
}

impl Sandbox {
    /// Connects to the local Docker engine, agreeing on an API version it speaks.
    pub async fn connect(
        settings: SandboxConfig,
        prefix: String,
        executor_id: String,
    ) -> Result<Self, SandboxError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(SandboxError::Engine)?
            .negotiate_version()
            .await
            .map_err(SandboxError::Engine)?;
        docker.ping().await.map_err(SandboxError::Engine)?;
        Ok(Self {
            docker,
            prefix,
            executor_id,
            users: ProgramUsers::new(settings.first_program_uid),
            warm: Arc::default(),
            removals: tokio_util::task::TaskTracker::new(),
            engine: Arc::default(),
            settings,
            containers: Default::default(),
            reused: Arc::default(),
        })
    }

    /// Whether the Docker engine answers a ping now (readiness).
    pub async fn engine_answers(&self) -> bool {
        self.docker.ping().await.is_ok()
    }

    /// Container creation's metrics, for the executor's registry.
    pub fn container_metrics(&self) -> crate::metrics::ContainerMetrics {
        self.containers.clone()
    }

    /// The pre-warmed containers and the counters.
    pub fn warm_store(&self) -> Arc<WarmStore> {
        self.warm.clone()
    }

    /// The container settings for one run (see [`crate::container`]).
    pub fn container_body(&self, spec: &SandboxSpec<'_>) -> ContainerCreateBody {
        self.owned(container_body(&self.settings, &self.prefix, spec))
    }

    /// `body` labelled as this executor's.
    pub(crate) fn owned(&self, mut body: ContainerCreateBody) -> ContainerCreateBody {
        body.labels
            .get_or_insert_with(Default::default)
            .insert(LABEL_EXECUTOR.to_owned(), self.executor_id.clone());
        body
    }

    /// Runs one job and returns the agent's answer: in the strict mode in a fresh container —
    /// a pre-warmed one when one with exactly these settings is waiting, a new one otherwise —
    /// removed whatever happens and never used twice; in the fast mode in an inner sandbox of
    /// a container reused for the tenant (`crate::reuse`). When the watch's token
    /// fires, the exchange is dropped and the container removed (killed) at once; each stage
    /// that ends is sent to the watch's progress channel.
    pub async fn run(
        &self,
        spec: &SandboxSpec<'_>,
        job: AgentJob,
        deadline: Duration,
        watch: RunWatch,
    ) -> Result<AgentResult, SandboxError> {
        match self.settings.isolation_for(spec.pool, spec.isolation) {
            Isolation::Strict => self.run_single_use(spec, job, deadline, watch).await,
            Isolation::Fast => self.run_reused(spec, job, deadline, watch).await,
        }
    }

    /// The strict mode: a container of the run's own, removed after it.
    async fn run_single_use(
        &self,
        spec: &SandboxSpec<'_>,
        mut job: AgentJob,
        deadline: Duration,
        watch: RunWatch,
    ) -> Result<AgentResult, SandboxError> {
        let RunWatch { cancel, progress } = watch;
        let body = self.container_body(spec);
        let key = container_key(&body);
        let name = self.container_name(spec.run_id);
        let started = Instant::now();
        let (ready, warm) = match self.take_warm(&key).await {
            Some(ready) => (ready, true),
            None => (
                self.create_ready_waiting(body, &name, &cancel).await?,
                false,
            ),
        };
        let id = ready.id.clone();
        self.count_take(warm);
        self.warm.refill.notify_one();
        let acquired = started.elapsed();
        let runtime = self.settings.runtime_for(spec.pool);
        let stage_change = spec.stage_change().map(|limits| ContainerLimits {
            memory: memory_bytes(&limits),
            pids: host_pids_limit(runtime, limits.pids),
            through_cgroup: is_gvisor(runtime),
            host_pid: None,
        });
        job.pause_after_compile = stage_change.is_some();
        // gVisor's cgroup counts its own tasks, not the program's processes: the agent does.
        job.count_processes = is_gvisor(runtime);
        // Users of this run's own, kept until its container is gone.
        let users = self.lease_users(&mut job);
        // A taken warm container is named for its run (labels cannot change), meanwhile.
        let rename = async {
            if warm {
                self.rename(&id, &name).await;
            }
        };
        let mut ready = ready;
        let exchange = async {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => Ok(Err(SandboxError::Cancelled)),
                outcome = tokio::time::timeout(deadline, self.exchange(&mut ready, &job, stage_change, progress, false)) => outcome,
            }
        };
        let (outcome, ()) = tokio::join!(exchange, rename);
        let exchanged = started.elapsed();
        let outcome = self.explain_silence(&id, outcome).await;
        // The answer is in hand: the container goes, but off the run's path.
        self.remove_later(id.clone(), Some(users));
        tracing::info!(
            run_id = spec.run_id,
            container = %id,
            warm,
            acquire_ms = acquired.as_millis() as u64,
            exchange_ms = (exchanged - acquired).as_millis() as u64,
            "sandbox finished"
        );
        match outcome {
            Ok(result) => result,
            Err(_) => Err(SandboxError::Deadline(deadline)),
        }
    }

    /// Counts a run's container as taken waiting (warm, or idle in the fast mode) or made for it.
    pub(crate) fn count_take(&self, waiting: bool) {
        let counter = if waiting {
            &self.warm.stats.warm_takes
        } else {
            &self.warm.stats.cold_starts
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Leases the run's users into its job, with its output budget.
    pub(crate) fn lease_users(&self, job: &mut AgentJob) -> crate::users::UserLease {
        let users = self.users.lease();
        job.compile_uid = users.compile_uid;
        job.run_uid = users.run_uid;
        job.output_budget = Some(output_budget(job).min(self.settings.max_output_bytes()));
        users
    }

    /// A sandbox that died without an answer may have died of memory as a whole (a runtime
    /// such as gVisor is killed entirely at its cgroup's limit).
    pub(crate) async fn explain_silence<T>(
        &self,
        id: &str,
        outcome: Result<Result<T, SandboxError>, tokio::time::error::Elapsed>,
    ) -> Result<Result<T, SandboxError>, tokio::time::error::Elapsed> {
        match outcome {
            Ok(Err(SandboxError::Protocol(message))) if self.was_oom_killed(id).await => {
                tracing::warn!(container = %id, %message, "the sandbox was OOM-killed as a whole");
                Ok(Err(SandboxError::OutOfMemory))
            }
            other => other,
        }
    }

    /// Removes a container off the run's path (awaited at shutdown). The run's users, if
    /// given, are handed out again once it is gone; never if it could not be removed, since
    /// its processes may live on.
    pub(crate) fn remove_later(&self, id: String, users: Option<crate::users::UserLease>) {
        let sandbox = self.clone();
        self.removals.spawn(
            async move {
                if !sandbox.remove(&id).await {
                    std::mem::forget(users);
                }
            }
            .in_current_span(),
        );
    }

    /// Fast mode's idle containers, for the gauges and the shutdown.
    pub fn reuse_store(&self) -> Arc<crate::reuse::ReuseStore> {
        self.reused.clone()
    }

    /// The host pid of a running container's first process; `None` when it is not running
    /// or the engine does not say.
    pub(crate) async fn running_pid(&self, id: &str) -> Option<i64> {
        let state = self.container_state(id).await?;
        state
            .pid
            .filter(|pid| *pid > 0 && state.running.unwrap_or(false))
    }

    /// A waiting pre-warmed container for `key` that is still running, if any.
    async fn take_warm(&self, key: &str) -> Option<ReadyContainer> {
        self.take_warm_with_pid(key).await.map(|(ready, _)| ready)
    }

    /// A waiting pre-warmed container for `key` that is still running, and its first
    /// process's host pid.
    pub(crate) async fn take_warm_with_pid(&self, key: &str) -> Option<(ReadyContainer, i64)> {
        while let Some(ready) = self.warm.pop(key) {
            if let Some(pid) = self.running_pid(&ready.id).await {
                return Some((ready, pid));
            }
            // Off the run's path: an engine that does not answer is waited for below.
            tracing::warn!(container = %ready.id, "a pre-warmed container died while waiting, or the engine does not answer");
            self.remove_later(ready.id, None);
        }
        None
    }
}
