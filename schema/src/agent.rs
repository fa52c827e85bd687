//! The protocol between the executor and the agent inside each sandbox.
//!
//! The executor writes one [`AgentJob`] as a JSON line to the container's stdin; the agent
//! streams each command's output as [`AgentOutput`] lines on its stdout while it runs, pauses
//! after compiling when the job asks ([`AgentPaused`], answered by an [`AgentResume`] line),
//! and ends with one [`AgentResult`] line, then exits — or, for a job with an
//! [`InnerSandbox`], waits for the next job. The host never touches a path inside the
//! container: these lines are all it reads.

use serde::{Deserialize, Serialize};

use crate::bytes64::Bytes64;
use crate::catalog::StageLimits;

/// The version of the agent protocol; every message carries it as `v`.
pub const AGENT_PROTOCOL_VERSION: u32 = 1;

/// Open files a program may hold (the container's nofile ulimit and the agent's rlimit).
pub const MAX_OPEN_FILES: u64 = 256;

/// The locale of every sandbox, the agent's and its programs'.
pub const SANDBOX_LANG: &str = "C.UTF-8";

/// The capabilities the agent holds, by name (as Docker's `CapAdd` takes them) and number
/// (as the kernel counts them), and no others: SETUID and SETGID to become a program's user,
/// KILL to stop programs (another user's processes), SETPCAP to empty a program's bounding
/// set. Programs hold none. An agent that finds itself with any other set refuses to run.
pub const AGENT_CAPABILITIES: [(&str, u32); 4] =
    [("KILL", 5), ("SETGID", 6), ("SETUID", 7), ("SETPCAP", 8)];

/// A command and the limits it runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCommand {
    /// argv; never passed through a shell.
    pub argv: Vec<String>,
    pub limits: StageLimits,
}

/// A file to write into the workspace before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFile {
    /// Relative to the workspace; validated by the gateway and again by the agent.
    pub path: String,
    pub content: Bytes64,
}

/// The sandbox's tmpfs workspace: the agent writes the files there, programs run in it, and it
/// is their `HOME`.
pub const WORKSPACE: &str = "/workspace";

/// The `PATH` inside every sandbox, the agent's and its programs' (Debian's default).
pub const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The uid (and gid) programs ran as before the job named its own: `nobody` on Debian.
pub const FALLBACK_PROGRAM_UID: u32 = 65534;

fn fallback_program_uid() -> u32 {
    FALLBACK_PROGRAM_UID
}

/// The one job an agent runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentJob {
    pub v: u32,
    pub files: Vec<AgentFile>,
    /// Run once before the tests; when it fails the tests are skipped.
    pub compile: Option<AgentCommand>,
    pub run: AgentCommand,
    /// stdin of each execution of `run`, in order.
    pub stdins: Vec<Bytes64>,
    /// After a successful compile, write [`AgentPaused`] and wait for an [`AgentResume`]
    /// line before running: the host changes the container's limits from the compile stage's
    /// to the run stage's in between.
    #[serde(default)]
    pub pause_after_compile: bool,
    /// Count the sandbox's processes and stop a command that exceeds its `pids` limit: for
    /// runtimes (gVisor) whose cgroup pids limit does not count the program's processes.
    #[serde(default)]
    pub count_processes: bool,
    /// The user (and group) the compile command runs as, and who owns the written files.
    #[serde(default = "fallback_program_uid")]
    pub compile_uid: u32,
    /// The user (and group) every test runs as: never the compile user, so a test can change
    /// nothing the compile stage left; distinct per concurrent run on one host.
    #[serde(default = "fallback_program_uid")]
    pub run_uid: u32,
    /// The most output (stdout and stderr of every stage together) the agent sends, in bytes;
    /// a command that would pass it is stopped as over its output limit.
    #[serde(default)]
    pub output_budget: Option<u64>,
    /// Run the job in a fresh inner sandbox of its own inside a reused container (the *fast*
    /// isolation mode): new user, PID, mount, IPC, UTS and network namespaces, a fresh
    /// `/workspace`, `/tmp`, `/dev/shm` and `/dev/mqueue`; when the job ends its PID namespace
    /// dies with everything in it, and the agent waits for the next job. Absent (the *strict*
    /// mode): the agent runs this one job and exits with its container.
    #[serde(default)]
    pub inner_sandbox: Option<InnerSandbox>,
}

/// How the agent builds a run's inner sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerSandbox {
    /// The host uid (and gid) that is root inside the run's user namespace, where it holds
    /// the capabilities to mount the fresh directories and to become the program users. It
    /// is never a program user's, and never the host's root.
    pub root_uid: u32,
    /// Size of each fresh tmpfs (`/workspace`, `/tmp`, `/dev/shm`), in MiB.
    pub scratch_mb: u64,
}

impl AgentJob {
    /// A job of the current version; what depends on the sandbox (pausing, counting
    /// processes, users, the output budget) is left for the executor's sandbox to decide.
    pub fn new(
        files: Vec<AgentFile>,
        compile: Option<AgentCommand>,
        run: AgentCommand,
        stdins: Vec<Bytes64>,
    ) -> Self {
        Self {
            v: AGENT_PROTOCOL_VERSION,
            files,
            compile,
            run,
            stdins,
            pause_after_compile: false,
            count_processes: false,
            compile_uid: FALLBACK_PROGRAM_UID,
            run_uid: FALLBACK_PROGRAM_UID,
            output_budget: None,
            inner_sandbox: None,
        }
    }
}

/// Which stream of a command an [`AgentOutput`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// agent → host, while a command runs: the next piece of one of its output streams. Output is
/// sent as it is read, so it is held by the host, never by the agent inside the program's own
/// memory limit; the stage in the final [`AgentResult`] carries none of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOutput {
    pub v: u32,
    /// The test (index into `stdins`) it belongs to; `None` for the compile command.
    pub test: Option<u32>,
    pub stream: OutputStream,
    pub data: Bytes64,
}

/// agent → host, between compile and run when the job asked for a pause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPaused {
    pub v: u32,
    /// Always true; distinguishes this line from the final [`AgentResult`].
    pub paused_after_compile: bool,
}

/// host → agent: go on (with the run stage's limits in place), or stop here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentResume {
    pub v: u32,
    /// False: the host could not apply the run limits; the agent answers without running.
    pub proceed: bool,
}

/// agent → host, as soon as a command ends: its result, so the host can report progress
/// (compiled, each test) while the job goes on. The final [`AgentResult`] repeats it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStageDone {
    pub v: u32,
    /// The test (index into `stdins`); `None` for the compile command.
    pub test: Option<u32>,
    /// Without its output, which was streamed as [`AgentOutput`] lines.
    pub stage_done: AgentStage,
}

/// What one command did. `stdout` and `stderr` are empty when the agent streamed them as
/// [`AgentOutput`] messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStage {
    pub exit_code: Option<i32>,
    /// Signal number when a signal ended the process.
    pub signal: Option<i32>,
    pub stdout: Bytes64,
    pub stderr: Bytes64,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub cpu_ms: u64,
    pub wall_ms: u64,
    pub memory_kb: u64,
    /// The agent killed it at the wall-clock limit.
    pub wall_timed_out: bool,
    /// It used more CPU time than its limit.
    pub cpu_timed_out: bool,
    /// The command had more processes than its `pids` limit and was stopped (only when the
    /// job asked the agent to count them).
    #[serde(default)]
    pub pids_exceeded: bool,
    /// The kernel's OOM killer killed a process of the sandbox while this command ran.
    #[serde(default)]
    pub oom_killed: bool,
    /// The command could not be started at all (missing binary and the like).
    #[serde(default)]
    pub spawn_error: Option<String>,
}

/// The agent's one answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentResult {
    pub v: u32,
    pub compile: Option<AgentStage>,
    /// One per stdin, in order; fewer when compilation failed.
    pub runs: Vec<AgentStage>,
    /// Set when the agent itself could not do its job (bad job, workspace not writable).
    #[serde(default)]
    pub error: Option<String>,
}

/// agent → host, after the answer of a job that ran in an inner sandbox (the fast mode), once
/// that sandbox has ended: whether the agent vouches that nothing of the job is left in the
/// container (the sandbox ended whole and no process of it remains), so the container may take
/// the same tenant's next job. The answer goes first, so the run's result does not wait for
/// the namespaces to be torn down. In the strict mode the agent exits after its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSettled {
    pub v: u32,
    /// Whether the container may serve the next job.
    pub settled_reusable: bool,
}
