//! One conversation with a ready container's agent: the job sent over the attached stdin,
//! the agent's lines read back (output pieces, each stage's end, the pause between compile and
//! run, the answer), and at the pause the container's memory and pids limits changed to the
//! run stage's before the agent is told to go on.

use coderun_schema::agent::{
    AgentJob, AgentResult, AgentResume, AgentStageDone, AGENT_PROTOCOL_VERSION,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::exchange::{AgentLine, LineBuffer, OutputError, Outputs};
use crate::sandbox::{Sandbox, SandboxError};
use crate::warm::ReadyContainer;

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
    /// Change them in the host's cgroup files: the runtime cannot update a container, or the
    /// container is reused and its limits change with every run.
    pub through_cgroup: bool,
    /// The container's first process on the host, when known (else the engine is asked).
    pub host_pid: Option<i64>,
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

impl Sandbox {
    /// Hands the job to the waiting agent and reads its answer. When `stage_change` is set,
    /// the agent pauses after compiling; the container's memory and pids limits are changed to
    /// the run stage's before it is told to go on.
    /// With `keep_open` (a reused container) the agent's stdin stays open for the next job.
    pub(crate) async fn exchange(
        &self,
        ready: &mut ReadyContainer,
        job: &AgentJob,
        stage_change: Option<ContainerLimits>,
        progress: Option<tokio::sync::mpsc::UnboundedSender<AgentStageDone>>,
        keep_open: bool,
    ) -> Result<AgentResult, SandboxError> {
        let ReadyContainer {
            id,
            attached,
            lines,
        } = ready;
        let id = id.as_str();
        send_line(&mut attached.input, job).await?;
        let mut pending_change = stage_change;
        if pending_change.is_none() && !keep_open {
            attached
                .input
                .shutdown()
                .await
                .map_err(SandboxError::Send)?;
        }

        let mut outputs = Outputs::for_job(job);
        let mut diagnostics = Vec::new();
        while read_frame(attached, lines, &mut diagnostics).await? {
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
                        if !keep_open {
                            attached
                                .input
                                .shutdown()
                                .await
                                .map_err(SandboxError::Send)?;
                        }
                    }
                    AgentLine::Answer(mut answer) => {
                        outputs.fill(&mut answer);
                        return Ok(*answer);
                    }
                    AgentLine::Settled(_) | AgentLine::Other => {}
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
            let pid = match limits.host_pid {
                Some(pid) => Some(pid),
                None => self.container_state(id).await.and_then(|state| state.pid),
            };
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

/// Reads the agent's next frame: its stdout into `lines`, its stderr into `diagnostics` (the
/// first 64 KiB). False once the stream has ended.
async fn read_frame(
    attached: &mut bollard::container::AttachContainerResults,
    lines: &mut LineBuffer,
    diagnostics: &mut Vec<u8>,
) -> Result<bool, SandboxError> {
    match attached.output.next().await {
        Some(Ok(bollard::container::LogOutput::StdOut { message })) => {
            if lines.pending() + message.len() > MAX_AGENT_LINE {
                return Err(SandboxError::Protocol(
                    "the agent's message is too large".to_owned(),
                ));
            }
            lines.push(&message);
        }
        Some(Ok(bollard::container::LogOutput::StdErr { message })) => {
            if diagnostics.len() < 64 * 1024 {
                diagnostics.extend_from_slice(&message);
            }
        }
        Some(Ok(_)) => {}
        Some(Err(error)) => {
            return Err(SandboxError::Protocol(format!(
                "attach stream failed: {error}"
            )))
        }
        None => return Ok(false),
    }
    Ok(true)
}

/// After a fast-mode answer: waits for the agent to say whether its inner sandbox ended
/// whole. False when it says not, says anything else, or ends the stream.
pub(crate) async fn settled(ready: &mut ReadyContainer) -> bool {
    let mut diagnostics = Vec::new();
    loop {
        if let Some(line) = ready.lines.next_line() {
            return matches!(AgentLine::parse(line), AgentLine::Settled(true))
                && ready.lines.pending() == 0;
        }
        let read = read_frame(&mut ready.attached, &mut ready.lines, &mut diagnostics).await;
        if !matches!(read, Ok(true)) {
            return false;
        }
    }
}
