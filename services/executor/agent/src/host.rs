//! The agent's side of the protocol: JSON lines from the host on stdin, JSON lines to it on
//! stdout. Output chunks are written by the pipe readers' threads while the main thread waits
//! for the program; each line is written whole under stdout's lock, so lines never interleave.

use std::io::{BufRead, Write};

use coderun_schema::agent::{
    AgentJob, AgentOutput, AgentPaused, AgentResume, AgentStage, AgentStageDone, OutputStream,
    AGENT_PROTOCOL_VERSION,
};
use coderun_schema::bytes64::Bytes64;

/// Writes one protocol message to the host: a JSON line on stdout.
pub fn send<T: serde::Serialize>(message: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&line)?;
    stdout.flush()
}

/// Sends the next piece of a command's output.
pub fn send_output(test: Option<u32>, stream: OutputStream, data: &[u8]) -> std::io::Result<()> {
    send(&AgentOutput {
        v: AGENT_PROTOCOL_VERSION,
        test,
        stream,
        data: Bytes64(data.to_vec()),
    })
}

/// Reports a command that ended (the host turns it into a progress event). A host that is gone
/// is noticed when the final answer cannot be sent.
pub fn send_stage_done(test: Option<u32>, stage: &AgentStage) {
    let _ = send(&AgentStageDone {
        v: AGENT_PROTOCOL_VERSION,
        test,
        stage_done: stage.clone(),
    });
}

/// Reads one protocol message from the host: a JSON line on stdin (`what` names it in errors).
pub fn receive<T: serde::de::DeserializeOwned>(what: &str) -> Result<T, String> {
    let mut line = Vec::new();
    std::io::stdin()
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|error| format!("failed to read {what}: {error}"))?;
    serde_json::from_slice(&line).map_err(|error| format!("{what} is not valid: {error}"))
}

/// Reads the next job; `None` when the host closed the agent's stdin instead.
pub fn receive_job() -> Result<Option<AgentJob>, String> {
    let mut line = Vec::new();
    let read = std::io::stdin()
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|error| format!("failed to read the job: {error}"))?;
    if read == 0 {
        return Ok(None);
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|error| format!("the job is not valid: {error}"))
}

/// Tells the host the compile stage is over and waits for its word to run: true to go on.
pub fn pause_for_run_limits() -> Result<bool, String> {
    let paused = AgentPaused {
        v: AGENT_PROTOCOL_VERSION,
        paused_after_compile: true,
    };
    send(&paused).map_err(|error| format!("failed to tell the host: {error}"))?;
    let resume: AgentResume = receive("the host's word")?;
    Ok(resume.proceed)
}
