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

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use bollard::Docker;
use coderun_schema::agent::{AgentCommand, AgentJob, AgentResult};
use coderun_schema::catalog::{Limits, StageLimits};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

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

/// Creates, runs and removes sandbox containers.
#[derive(Clone)]
pub struct Sandbox {
    docker: Docker,
    settings: SandboxConfig,
    prefix: String,
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
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The container settings for one run: everything DESIGN.md asks of a sandbox.
    pub fn container_body(&self, spec: &SandboxSpec<'_>) -> ContainerCreateBody {
        let stage = if spec.compiles {
            spec.limits.compile.max_with(spec.limits.run)
        } else {
            spec.limits.run
        };
        let memory = i64::try_from(stage.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
        let file_size = i64::try_from(stage.file_size_kb.saturating_mul(1024)).unwrap_or(i64::MAX);
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

    /// Runs one job in a new container and returns the agent's answer. The container is
    /// removed whatever happens.
    pub async fn run(
        &self,
        spec: &SandboxSpec<'_>,
        job: &AgentJob,
        deadline: Duration,
    ) -> Result<AgentResult, SandboxError> {
        let created = self
            .docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                self.container_body(spec),
            )
            .await
            .map_err(SandboxError::Create)?;
        let outcome = tokio::time::timeout(deadline, self.run_in(&created.id, job)).await;
        self.remove(&created.id).await;
        match outcome {
            Ok(result) => result,
            Err(_) => Err(SandboxError::Deadline(deadline)),
        }
    }

    async fn run_in(&self, id: &str, job: &AgentJob) -> Result<AgentResult, SandboxError> {
        let attach = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let mut attached = self
            .docker
            .attach_container(id, Some(attach))
            .await
            .map_err(SandboxError::Attach)?;
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(SandboxError::Start)?;
        let mut line =
            serde_json::to_vec(job).map_err(|error| SandboxError::Protocol(error.to_string()))?;
        line.push(b'\n');
        attached
            .input
            .write_all(&line)
            .await
            .map_err(SandboxError::Send)?;
        attached.input.flush().await.map_err(SandboxError::Send)?;
        attached
            .input
            .shutdown()
            .await
            .map_err(SandboxError::Send)?;

        let mut stdout = Vec::new();
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
        }
        if !diagnostics.is_empty() {
            tracing::warn!(container = id, agent_stderr = %String::from_utf8_lossy(&diagnostics), "the agent wrote to stderr");
        }
        let answer = stdout
            .split(|byte| *byte == b'\n')
            .rfind(|line| !line.is_empty())
            .ok_or_else(|| {
                SandboxError::Protocol("the agent exited without an answer".to_owned())
            })?;
        serde_json::from_slice(answer).map_err(|error| SandboxError::Protocol(error.to_string()))
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
        };
        sandbox.container_body(spec)
    }
}
