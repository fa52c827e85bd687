//! One sandbox per run: a fresh container with the agent as PID 1, fed one job over the
//! attached stdin, read back through the attached stdout, then removed.
//!
//! The container settings are those of DESIGN.md: network none, read-only root, tmpfs
//! workspace and /tmp with a size cap, every capability dropped, no-new-privileges, the
//! unprivileged `nobody` user, pids / memory (swap equal to memory) / CPU limits, nofile and
//! fsize ulimits, an environment with nothing but PATH, HOME and LANG. The host never follows a
//! path inside the container: it only reads the agent's message.
//!
//! [`Sandbox::container_body`] is the single place those settings are decided; a pre-warmed
//! pool (next step) creates containers from the same body ahead of time.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use bollard::Docker;
use coderun_schema::agent::{AgentCommand, AgentJob, AgentPaused, AgentResult, AgentResume};
use coderun_schema::catalog::{Limits, StageLimits};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use crate::config::SandboxConfig;

/// Where the agent is mounted inside every container.
pub const AGENT_MOUNT: &str = "/coderun/agent";
/// The workspace the agent writes files into and runs them from.
pub const WORKSPACE: &str = "/workspace";
/// The agent's user inside the container: root, with every capability dropped except
/// [`AGENT_CAPABILITIES`].
pub const AGENT_USER: &str = "0:0";
/// What the agent keeps: SETUID and SETGID to become [`PROGRAM_USER`] for every command, KILL
/// to kill the program's processes (another user's) at limits and after each command.
/// Programs lose all of them with the change of user.
pub const AGENT_CAPABILITIES: &[&str] = &["SETUID", "SETGID", "KILL"];
/// What every program runs as: `nobody:nogroup` on Debian.
pub const PROGRAM_USER: &str = "65534:65534";
/// Label on every sandbox container: the pool (language) it serves.
pub const LABEL_POOL: &str = "coderun.pool";
/// Label on every sandbox container: the name prefix of the deployment that made it.
pub const LABEL_PREFIX: &str = "coderun.prefix";
/// Label on every sandbox container: the run it ran.
pub const LABEL_RUN: &str = "coderun.run";
/// The most the host reads back from one agent (outputs are capped inside long before this).
const MAX_AGENT_MESSAGE: usize = 256 * 1024 * 1024;

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
}

/// What one sandbox needs to know.
#[derive(Debug, Clone)]
pub struct SandboxSpec<'a> {
    pub image: &'a str,
    pub pool: &'a str,
    pub run_id: &'a str,
    /// The container is sized for the larger of the compile and run limits (for the run
    /// limits alone when nothing is compiled).
    pub limits: Limits,
    /// Whether the job has a compile stage.
    pub compiles: bool,
}

impl SandboxSpec<'_> {
    /// The limits the container starts with: the compile stage's, or the run's.
    pub fn first_stage(&self) -> StageLimits {
        if self.compiles {
            self.limits.compile
        } else {
            self.limits.run
        }
    }

    /// The container-level limits to apply between compile and run, when they differ.
    pub fn stage_change(&self) -> Option<StageLimits> {
        let (first, run) = (self.first_stage(), self.limits.run);
        (first.memory_mb != run.memory_mb || first.pids != run.pids).then_some(run)
    }
}

fn memory_bytes(limits: &StageLimits) -> i64 {
    i64::try_from(limits.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)
}

/// Creates, runs and removes sandbox containers.
#[derive(Clone)]
pub struct Sandbox {
    docker: Docker,
    settings: SandboxConfig,
    prefix: String,
    /// Containers created and started ahead of time (filled by `pool::Warmer`).
    warm: Arc<WarmStore>,
    /// Removals of finished containers, done off the run's path; awaited at shutdown.
    removals: tokio_util::task::TaskTracker,
}

/// Counters a test or a metric can read.
#[derive(Debug, Default)]
pub struct SandboxStats {
    /// Runs that took a pre-warmed container: no create, no start on their path.
    pub warm_takes: AtomicU64,
    /// Runs that had to create and start their container.
    pub cold_starts: AtomicU64,
}

/// A started container with its stdio already attached: its agent waits for a job.
pub struct ReadyContainer {
    pub id: String,
    attached: bollard::container::AttachContainerResults,
}

/// Pre-warmed containers by container key: each was created, attached and started with
/// exactly the settings a run with that key needs, and waits with its agent blocked on stdin.
#[derive(Default)]
pub struct WarmStore {
    containers: Mutex<HashMap<String, VecDeque<ReadyContainer>>>,
    /// Woken whenever a container is taken, so the warmer refills.
    pub refill: Notify,
    pub stats: SandboxStats,
}

impl WarmStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<ReadyContainer>>> {
        self.containers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Warm containers waiting under `key`.
    pub fn count(&self, key: &str) -> usize {
        self.lock().get(key).map_or(0, VecDeque::len)
    }

    /// The ids of every waiting container.
    pub fn ids(&self) -> Vec<String> {
        self.lock()
            .values()
            .flatten()
            .map(|ready| ready.id.clone())
            .collect()
    }

    /// Every warm container, across keys.
    pub fn total(&self) -> usize {
        self.lock().values().map(VecDeque::len).sum()
    }

    pub fn push(&self, key: String, ready: ReadyContainer) {
        self.lock().entry(key).or_default().push_back(ready);
    }

    fn pop(&self, key: &str) -> Option<ReadyContainer> {
        self.lock().get_mut(key).and_then(VecDeque::pop_front)
    }

    /// Empties the store, returning every container id it held.
    pub fn drain(&self) -> Vec<String> {
        self.lock()
            .drain()
            .flat_map(|(_, ready)| ready)
            .map(|ready| ready.id)
            .collect()
    }
}

/// Two runs can share a pre-warmed container exactly when their container settings, labels
/// aside, are identical.
pub fn container_key(body: &ContainerCreateBody) -> String {
    let mut unlabelled = body.clone();
    unlabelled.labels = None;
    // Through a JSON value: its objects are sorted maps, so the HashMaps inside the body
    // (tmpfs) give the same key whatever their iteration order.
    serde_json::to_value(&unlabelled)
        .map(|value| value.to_string())
        .unwrap_or_default()
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
            settings,
            prefix,
            warm: Arc::default(),
            removals: tokio_util::task::TaskTracker::new(),
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The pre-warmed containers and the counters.
    pub fn warm_store(&self) -> Arc<WarmStore> {
        self.warm.clone()
    }

    /// The container settings for one run: everything DESIGN.md asks of a sandbox.
    pub fn container_body(&self, spec: &SandboxSpec<'_>) -> ContainerCreateBody {
        // The container starts with the first stage's memory and pids limits; when the run
        // stage's differ, `run` changes them between the stages (see `stage_change`). The
        // fsize ulimit is the hard ceiling the agent lowers per command, so it is the larger.
        let stage = spec.first_stage();
        let memory = memory_bytes(&stage);
        let largest_file = stage.file_size_kb.max(spec.limits.run.file_size_kb);
        let file_size = i64::try_from(largest_file.saturating_mul(1024)).unwrap_or(i64::MAX);
        let tmpfs_options = format!(
            "rw,exec,nosuid,nodev,size={}m,mode=1777",
            self.settings.workspace_mb
        );
        let labels = HashMap::from([
            (LABEL_POOL.to_owned(), spec.pool.to_owned()),
            (LABEL_PREFIX.to_owned(), self.prefix.clone()),
            (LABEL_RUN.to_owned(), spec.run_id.to_owned()),
        ]);
        ContainerCreateBody {
            image: Some(spec.image.to_owned()),
            entrypoint: Some(vec![AGENT_MOUNT.to_owned()]),
            cmd: Some(Vec::new()),
            // The agent runs as root with AGENT_CAPABILITIES only, and drops to
            // PROGRAM_USER for every command it runs (see the agent's drop_to_program_user).
            user: Some(AGENT_USER.to_owned()),
            // No working_dir: Docker would create it root-owned over the tmpfs. The agent
            // changes into the workspace itself.
            env: Some(vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
                format!("HOME={WORKSPACE}"),
                "LANG=C.UTF-8".to_owned(),
            ]),
            network_disabled: Some(true),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(false),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some("none".to_owned()),
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([
                    (WORKSPACE.to_owned(), tmpfs_options.clone()),
                    ("/tmp".to_owned(), tmpfs_options),
                ])),
                cap_drop: Some(vec!["ALL".to_owned()]),
                cap_add: Some(
                    AGENT_CAPABILITIES
                        .iter()
                        .map(|cap| (*cap).to_owned())
                        .collect(),
                ),
                security_opt: Some(vec!["no-new-privileges".to_owned()]),
                pids_limit: Some(i64::try_from(stage.pids).unwrap_or(i64::MAX)),
                memory: Some(memory),
                memory_swap: Some(memory),
                nano_cpus: Some((self.settings.cpus * 1e9) as i64),
                ulimits: Some(vec![
                    ResourcesUlimits {
                        name: Some("nofile".to_owned()),
                        soft: Some(256),
                        hard: Some(256),
                    },
                    ResourcesUlimits {
                        name: Some("fsize".to_owned()),
                        soft: Some(file_size),
                        hard: Some(file_size),
                    },
                    ResourcesUlimits {
                        name: Some("core".to_owned()),
                        soft: Some(0),
                        hard: Some(0),
                    },
                ]),
                binds: Some(vec![format!(
                    "{}:{AGENT_MOUNT}:ro",
                    self.settings.agent_path.display()
                )]),
                runtime: Some(self.settings.runtime.clone()),
                init: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Runs one job in a fresh container — a pre-warmed one when one with exactly these
    /// settings is waiting, a new one otherwise — and returns the agent's answer. The
    /// container is removed whatever happens; it is never used twice.
    pub async fn run(
        &self,
        spec: &SandboxSpec<'_>,
        job: &AgentJob,
        deadline: Duration,
    ) -> Result<AgentResult, SandboxError> {
        let body = self.container_body(spec);
        let key = container_key(&body);
        let started = Instant::now();
        let (ready, warm) = match self.take_warm(&key).await {
            Some(ready) => (ready, true),
            None => (self.create_ready(body).await?, false),
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
        let stage_change = spec.stage_change();
        let mut job = job.clone();
        job.pause_after_compile = stage_change.is_some();
        let outcome =
            tokio::time::timeout(deadline, self.exchange(ready, &job, stage_change)).await;
        let exchanged = started.elapsed();
        // The answer is in hand: the container goes, but off the run's path.
        let sandbox = self.clone();
        let removed_id = id.clone();
        self.removals
            .spawn(async move { sandbox.remove(&removed_id).await });
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
                .docker
                .inspect_container(
                    &ready.id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .ok()
                .and_then(|container| container.state)
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

    /// Creates a container, attaches to its stdio and starts it: its agent then waits for a
    /// job. Attaching before the start means nothing the agent writes is missed.
    pub async fn create_ready(
        &self,
        body: ContainerCreateBody,
    ) -> Result<ReadyContainer, SandboxError> {
        let created = self
            .docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .map_err(SandboxError::Create)?;
        let id = created.id;
        let attach = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let attached = match self.docker.attach_container(&id, Some(attach)).await {
            Ok(attached) => attached,
            Err(error) => {
                self.remove(&id).await;
                return Err(SandboxError::Attach(error));
            }
        };
        let start = self
            .docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await;
        if let Err(error) = start {
            self.remove(&id).await;
            return Err(SandboxError::Start(error));
        }
        Ok(ReadyContainer { id, attached })
    }

    /// Hands the job to the waiting agent and reads its answer. When `stage_change` is set,
    /// the agent pauses after compiling; the container's memory and pids limits are changed to
    /// the run stage's before it is told to go on.
    async fn exchange(
        &self,
        ready: ReadyContainer,
        job: &AgentJob,
        stage_change: Option<StageLimits>,
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

        let mut stdout = Vec::new();
        let mut scanned = 0;
        let mut diagnostics = Vec::new();
        while let Some(frame) = attached.output.next().await {
            match frame {
                Ok(bollard::container::LogOutput::StdOut { message }) => {
                    if stdout.len() + message.len() > MAX_AGENT_MESSAGE {
                        return Err(SandboxError::Protocol(
                            "the agent's answer is too large".to_owned(),
                        ));
                    }
                    stdout.extend_from_slice(&message);
                }
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    if diagnostics.len() < 64 * 1024 {
                        diagnostics.extend_from_slice(&message);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    return Err(SandboxError::Protocol(format!(
                        "attach stream failed: {error}"
                    )))
                }
            }
            // Read the complete lines not scanned yet: the pause, then the answer. The answer
            // ends the exchange at once, without waiting for the container to exit.
            let mut answered = None;
            while let Some(end) = stdout[scanned..].iter().position(|byte| *byte == b'\n') {
                let line = &stdout[scanned..scanned + end];
                scanned += end + 1;
                if let Some(run_limits) = pending_change {
                    if serde_json::from_slice::<AgentPaused>(line).is_ok() {
                        let proceed = self.apply_run_limits(id, &run_limits).await;
                        let resume = AgentResume { v: 1, proceed };
                        send_line(&mut attached.input, &resume).await?;
                        attached
                            .input
                            .shutdown()
                            .await
                            .map_err(SandboxError::Send)?;
                        pending_change = None;
                        continue;
                    }
                }
                if let Ok(result) = serde_json::from_slice::<AgentResult>(line) {
                    answered = Some(result);
                    break;
                }
            }
            if let Some(result) = answered {
                return self.checked(result, stage_change, job);
            }
        }
        if !diagnostics.is_empty() {
            tracing::warn!(container = id, agent_stderr = %String::from_utf8_lossy(&diagnostics), "the agent exited without an answer");
        }
        Err(SandboxError::Protocol(
            "the agent exited without an answer".to_owned(),
        ))
    }

    /// Refuses an answer in which the agent stopped because the run limits were not applied.
    fn checked(
        &self,
        result: AgentResult,
        stage_change: Option<StageLimits>,
        job: &AgentJob,
    ) -> Result<AgentResult, SandboxError> {
        if let (Some(_), Some(compile)) = (stage_change, &result.compile) {
            let compiled = compile.exit_code == Some(0);
            if compiled
                && result.runs.is_empty()
                && result.error.is_none()
                && !job.stdins.is_empty()
            {
                return Err(SandboxError::Protocol(
                    "the run stage's limits could not be applied".to_owned(),
                ));
            }
        }
        Ok(result)
    }

    /// Changes a running container's memory (and swap) and pids limits; false if refused.
    async fn apply_run_limits(&self, id: &str, limits: &StageLimits) -> bool {
        let memory = memory_bytes(limits);
        let update = bollard::models::ContainerUpdateBody {
            memory: Some(memory),
            memory_swap: Some(memory),
            pids_limit: Some(i64::try_from(limits.pids).unwrap_or(i64::MAX)),
            ..Default::default()
        };
        match self.docker.update_container(id, update).await {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(container = id, %error, "failed to apply the run stage's limits");
                false
            }
        }
    }

    /// Waits for every container removal in flight (at shutdown, and in tests).
    pub async fn finish_removals(&self) {
        self.removals.close();
        self.removals.wait().await;
        self.removals.reopen();
    }

    /// Removes a container, logging (not failing) when the engine refuses.
    pub async fn discard(&self, id: &str) {
        self.remove(id).await;
    }

    async fn remove(&self, id: &str) {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        if let Err(error) = self.docker.remove_container(id, Some(options)).await {
            tracing::error!(container = id, %error, "failed to remove a sandbox container");
        }
    }

    /// Removes every sandbox container of this deployment left over by an earlier process.
    pub async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                LABEL_POOL.to_owned(),
                format!("{LABEL_PREFIX}={}", self.prefix),
            ],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let orphans = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(SandboxError::Engine)?;
        for orphan in &orphans {
            if let Some(id) = &orphan.id {
                self.remove(id).await;
            }
        }
        Ok(orphans.len())
    }

    /// The image's id (its content digest), or an error if the engine does not have it.
    pub async fn image_digest(&self, image: &str) -> Result<String, SandboxError> {
        let inspected = self
            .docker
            .inspect_image(image)
            .await
            .map_err(SandboxError::Engine)?;
        inspected
            .id
            .ok_or_else(|| SandboxError::Protocol(format!("image {image} has no id")))
    }

    /// Runs `argv` in a sandbox of `image` and returns its trimmed stdout (language versions).
    pub async fn read_version(
        &self,
        image: &str,
        pool: &str,
        argv: &[String],
    ) -> Result<String, SandboxError> {
        let limits = StageLimits {
            cpu_ms: 10_000,
            wall_ms: 20_000,
            memory_mb: 512,
            pids: 64,
            output_kb: 16,
            file_size_kb: 1024,
        };
        let job = AgentJob {
            v: 1,
            files: Vec::new(),
            compile: None,
            run: AgentCommand {
                argv: argv.to_vec(),
                limits,
            },
            stdins: vec![Default::default()],
            pause_after_compile: false,
        };
        let spec = SandboxSpec {
            image,
            pool,
            run_id: "version",
            limits: Limits {
                compile: limits,
                run: limits,
            },
            compiles: false,
        };
        let result = self.run(&spec, &job, Duration::from_secs(60)).await?;
        let stage = result.runs.first().ok_or_else(|| {
            SandboxError::Protocol(result.error.unwrap_or_else(|| "no result".to_owned()))
        })?;
        let text = String::from_utf8_lossy(stage.stdout.as_slice())
            .trim()
            .to_owned();
        if stage.exit_code != Some(0) || text.is_empty() {
            return Err(SandboxError::Protocol(format!(
                "version command {argv:?} failed: {}",
                String::from_utf8_lossy(stage.stderr.as_slice()).trim()
            )));
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox_settings() -> SandboxConfig {
        SandboxConfig {
            agent_path: "/opt/agent".into(),
            runtime: "runc".to_owned(),
            workspace_mb: 32,
            cpus: 1.0,
            warm_per_language: 0,
            warm_sizes: Default::default(),
            host_margin_secs: 5,
        }
    }

    #[test]
    fn container_is_locked_down_and_sized_for_the_larger_stage() {
        let limits = coderun_schema::catalog::Catalog::builtin().limits.default;
        let spec = SandboxSpec {
            image: "img",
            pool: "python",
            run_id: "run_1",
            limits,
            compiles: true,
        };
        let body = container_body_for_tests(&spec);
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.cap_add,
            Some(vec![
                "SETUID".to_owned(),
                "SETGID".to_owned(),
                "KILL".to_owned()
            ])
        );
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        let larger = limits.compile.memory_mb.max(limits.run.memory_mb) as i64 * 1024 * 1024;
        assert_eq!(host.memory, Some(larger));
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(body.user.as_deref(), Some(AGENT_USER));
        assert_eq!(body.network_disabled, Some(true));
        let env = body.env.expect("env");
        assert!(env.iter().all(|entry| entry.starts_with("PATH=")
            || entry.starts_with("HOME=")
            || entry.starts_with("LANG=")));
    }

    fn container_body_for_tests(spec: &SandboxSpec<'_>) -> ContainerCreateBody {
        // container_body is pure: build it without a Docker connection.
        let sandbox = Sandbox {
            docker: Docker::connect_with_http(
                "http://127.0.0.1:1",
                1,
                bollard::API_DEFAULT_VERSION,
            )
            .expect("a client needs no connection to exist"),
            settings: sandbox_settings(),
            prefix: "test".to_owned(),
            warm: Arc::default(),
            removals: tokio_util::task::TaskTracker::new(),
        };
        sandbox.container_body(spec)
    }
}
