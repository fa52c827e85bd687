//! One sandbox per run: a fresh container with the agent as PID 1 — a pre-warmed one when one
//! with exactly the run's settings is waiting — fed one job over the attached stdin, read back
//! through the attached stdout, then removed off the run's path. The host never follows a path
//! inside the container: it only reads the agent's messages.
//!
//! The settings themselves are decided in [`crate::container`]; between compile and run the
//! container's memory and pids limits are changed to the run stage's when they differ. Creating,
//! naming and removing containers is in [`crate::containers`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use bollard::models::ContainerCreateBody;
use bollard::Docker;
use coderun_schema::agent::{
    AgentCommand, AgentJob, AgentResult, AgentResume, AgentStageDone, AGENT_PROTOCOL_VERSION,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::config::SandboxConfig;
use crate::container::{
    container_body, container_key, host_pids_limit, is_gvisor, memory_bytes, SandboxSpec,
};
use crate::exchange::{AgentLine, LineBuffer, OutputError, Outputs};
use crate::users::ProgramUsers;
use crate::warm::{ReadyContainer, WarmStore};

/// The longest line the host accepts from an agent (output comes in pieces of 16 KiB; the
/// answer without its output is small).
const MAX_AGENT_LINE: usize = 16 * 1024 * 1024;

/// The container-level limits changed between compile and run.
#[derive(Debug, Clone, Copy)]
pub struct ContainerLimits {
    /// Memory and swap, in bytes.
    pub memory: i64,
    /// The container's pids limit, as the runtime counts them.
    pub pids: i64,
    /// Change them in the host's cgroup files: the runtime cannot update a container.
    pub through_cgroup: bool,
}

/// What a run's caller watches it with: a token that kills the sandbox when cancelled, and
/// where each stage's result goes as soon as it ends (dropped with the watch, so a receiver
/// sees the channel close when the run is over).
#[derive(Debug, Default)]
pub struct RunWatch {
    pub cancel: CancellationToken,
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<AgentStageDone>>,
}

/// Writes one JSON line to the agent's stdin.
async fn send_line<T: serde::Serialize>(
    input: &mut (impl tokio::io::AsyncWrite + Unpin + ?Sized),
    message: &T,
) -> Result<(), SandboxError> {
    let mut line =
        serde_json::to_vec(message).map_err(|error| SandboxError::Protocol(error.to_string()))?;
    line.push(b'\n');
    input.write_all(&line).await.map_err(SandboxError::Send)?;
    input.flush().await.map_err(SandboxError::Send)
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

/// Creates, runs and removes sandbox containers.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) docker: Docker,
    settings: SandboxConfig,
    /// The deployment's name prefix: in container names and labels.
    pub(crate) prefix: String,
    /// Containers created and started ahead of time (filled by `warm::Warmer`).
    warm: Arc<WarmStore>,
    /// Removals of finished containers, done off the run's path; awaited at shutdown.
    pub(crate) removals: tokio_util::task::TaskTracker,
    /// The users of the runs in flight.
    users: Arc<ProgramUsers>,
    /// Container creations timed and failures counted, by language.
    pub(crate) containers: crate::metrics::ContainerMetrics,
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
    pub async fn connect(settings: SandboxConfig, prefix: String) -> Result<Self, SandboxError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(SandboxError::Engine)?
            .negotiate_version()
            .await
            .map_err(SandboxError::Engine)?;
        docker.ping().await.map_err(SandboxError::Engine)?;
        Ok(Self {
            docker,
            prefix,
            users: ProgramUsers::new(settings.first_program_uid),
            warm: Arc::default(),
            removals: tokio_util::task::TaskTracker::new(),
            settings,
            containers: Default::default(),
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
        container_body(&self.settings, &self.prefix, spec)
    }

    /// Runs one job in a fresh container — a pre-warmed one when one with exactly these
    /// settings is waiting, a new one otherwise — and returns the agent's answer. The
    /// container is removed whatever happens; it is never used twice. When the watch's token
    /// fires, the exchange is dropped and the container removed (killed) at once; each stage
    /// that ends is sent to the watch's progress channel.
    pub async fn run(
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
            None => (self.create_ready(body, &name).await?, false),
        };
        let id = ready.id.clone();
        let counter = if warm {
            &self.warm.stats.warm_takes
        } else {
            &self.warm.stats.cold_starts
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.warm.refill.notify_one();
        let acquired = started.elapsed();
        let runtime = self.settings.runtime_for(spec.pool);
        let stage_change = spec.stage_change().map(|limits| ContainerLimits {
            memory: memory_bytes(&limits),
            pids: host_pids_limit(runtime, limits.pids),
            through_cgroup: is_gvisor(runtime),
        });
        job.pause_after_compile = stage_change.is_some();
        // gVisor's cgroup counts its own tasks, not the program's processes: the agent does.
        job.count_processes = is_gvisor(runtime);
        // Users of this run's own, kept until its container is gone.
        let users = self.users.lease();
        job.compile_uid = users.compile_uid;
        job.run_uid = users.run_uid;
        job.output_budget = Some(output_budget(&job).min(self.settings.max_output_bytes()));
        // A taken warm container is named for its run (labels cannot change), meanwhile.
        let rename = async {
            if warm {
                self.rename(&id, &name).await;
            }
        };
        let exchange = async {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => Ok(Err(SandboxError::Cancelled)),
                outcome = tokio::time::timeout(deadline, self.exchange(ready, &job, stage_change, progress)) => outcome,
            }
        };
        let (outcome, ()) = tokio::join!(exchange, rename);
        let exchanged = started.elapsed();
        // A sandbox that died without an answer may have died of memory as a whole (a
        // runtime such as gVisor is killed entirely at its cgroup's limit).
        let outcome = match outcome {
            Ok(Err(SandboxError::Protocol(message))) if self.was_oom_killed(&id).await => {
                tracing::warn!(container = %id, %message, "the sandbox was OOM-killed as a whole");
                Ok(Err(SandboxError::OutOfMemory))
            }
            other => other,
        };
        // The answer is in hand: the container goes, but off the run's path.
        let sandbox = self.clone();
        let removed_id = id.clone();
        self.removals.spawn(
            async move {
                if !sandbox.remove(&removed_id).await {
                    // Its processes may live on: their users are never handed out again.
                    std::mem::forget(users);
                }
            }
            .in_current_span(),
        );
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

    /// A waiting pre-warmed container for `key` that is still running, if any.
    async fn take_warm(&self, key: &str) -> Option<ReadyContainer> {
        while let Some(ready) = self.warm.pop(key) {
            let running = self
                .container_state(&ready.id)
                .await
                .and_then(|state| state.running)
                .unwrap_or(false);
            if running {
                return Some(ready);
            }
            tracing::warn!(container = %ready.id, "a pre-warmed container died while waiting");
            self.remove(&ready.id).await;
        }
        None
    }

    /// Hands the job to the waiting agent and reads its answer. When `stage_change` is set,
    /// the agent pauses after compiling; the container's memory and pids limits are changed to
    /// the run stage's before it is told to go on.
    async fn exchange(
        &self,
        ready: ReadyContainer,
        job: &AgentJob,
        stage_change: Option<ContainerLimits>,
        progress: Option<tokio::sync::mpsc::UnboundedSender<AgentStageDone>>,
    ) -> Result<AgentResult, SandboxError> {
        let ReadyContainer { id, mut attached } = ready;
        let id = id.as_str();
        send_line(&mut attached.input, job).await?;
        let mut pending_change = stage_change;
        if pending_change.is_none() {
            attached
                .input
                .shutdown()
                .await
                .map_err(SandboxError::Send)?;
        }

        let mut lines = LineBuffer::default();
        let mut outputs = Outputs::for_job(job);
        let mut diagnostics = Vec::new();
        while let Some(frame) = attached.output.next().await {
            match frame {
                Ok(bollard::container::LogOutput::StdOut { message }) => {
                    if lines.pending() + message.len() > MAX_AGENT_LINE {
                        return Err(SandboxError::Protocol(
                            "the agent's message is too large".to_owned(),
                        ));
                    }
                    lines.push(&message);
                }
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    if diagnostics.len() < 64 * 1024 {
                        diagnostics.extend_from_slice(&message);
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(error) => {
                    return Err(SandboxError::Protocol(format!(
                        "attach stream failed: {error}"
                    )))
                }
            }
            // The complete lines not read yet: output, the pause, then the answer, which ends
            // the exchange at once, without waiting for the container to exit.
            while let Some(line) = lines.next_line() {
                match AgentLine::parse(line) {
                    AgentLine::Output(output) => {
                        outputs.add(output).map_err(|error| match error {
                            OutputError::OverBudget => SandboxError::OutputBudget,
                            other => SandboxError::Protocol(other.to_string()),
                        })?
                    }
                    AgentLine::StageDone(mut done) => {
                        if let Some(progress) = &progress {
                            outputs.fill_stage(&mut done);
                            // A receiver that is gone only misses progress.
                            let _ = progress.send(*done);
                        }
                    }
                    AgentLine::Paused => {
                        let Some(run_limits) = pending_change.take() else {
                            continue;
                        };
                        let proceed = self.apply_run_limits(id, &run_limits).await;
                        let resume = AgentResume {
                            v: AGENT_PROTOCOL_VERSION,
                            proceed,
                        };
                        send_line(&mut attached.input, &resume).await?;
                        if !proceed {
                            // Never run with the compile stage's looser limits.
                            return Err(SandboxError::Protocol(
                                "the run stage's limits could not be applied".to_owned(),
                            ));
                        }
                        attached
                            .input
                            .shutdown()
                            .await
                            .map_err(SandboxError::Send)?;
                    }
                    AgentLine::Answer(mut answer) => {
                        outputs.fill(&mut answer);
                        return Ok(*answer);
                    }
                    AgentLine::Other => {}
                }
            }
        }
        if !diagnostics.is_empty() {
            tracing::warn!(container = id, agent_stderr = %String::from_utf8_lossy(&diagnostics), "the agent exited without an answer");
        }
        Err(SandboxError::Protocol(
            "the agent exited without an answer".to_owned(),
        ))
    }

    /// Changes a running container's memory (and swap) and pids limits; false if refused.
    async fn apply_run_limits(&self, id: &str, limits: &ContainerLimits) -> bool {
        let applied = if limits.through_cgroup {
            let pid = self.container_state(id).await.and_then(|state| state.pid);
            match pid {
                Some(pid) if pid > 0 => crate::cgroup::apply(pid, limits.memory, limits.pids),
                _ => Err("the engine does not say which process the container is".to_owned()),
            }
        } else {
            let update = bollard::models::ContainerUpdateBody {
                memory: Some(limits.memory),
                memory_swap: Some(limits.memory),
                pids_limit: Some(limits.pids),
                ..Default::default()
            };
            self.docker
                .update_container(id, update)
                .await
                .map_err(|error| error.to_string())
        };
        match applied {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(container = id, %error, "failed to apply the run stage's limits");
                false
            }
        }
    }
}
