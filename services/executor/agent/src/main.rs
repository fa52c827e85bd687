//! The in-container agent: PID 1 of every sandbox.
//!
//! It reads one [`AgentJob`] as a JSON line on stdin, checks that it holds exactly the
//! privileges it expects, writes the files into the workspace (the `/workspace` tmpfs), runs
//! the compile command once as the compile user and the run command once per stdin as the run
//! user, streaming their output to the host as [`AgentOutput`] lines and reporting each
//! command as it ends ([`AgentStageDone`], the host's progress events), and answers with one
//! [`AgentResult`] line. Then it exits and the container is gone — unless the job asked for an
//! inner sandbox (the fast mode): then the job runs in fresh namespaces of its own; after the
//! answer the agent waits for that sandbox to end and says whether it ended whole
//! ([`AgentSettled`]), and if so waits for the container's next job.
//!
//! - [`host`]: the protocol's lines on stdin and stdout.
//! - [`privilege`]: the agent's own privileges, and the drop to a program's user.
//! - [`command`]: one command with its limits, watchdog and output readers; [`pipes`]: its
//!   standard streams.
//! - [`workspace`]: the files, sealed after compiling and cleared between tests; [`remove`]:
//!   removing a user's files however deep they go.
//! - [`reap`]: killing whatever a program left running.
//! - [`meter`]: CPU and memory of the whole process tree, from the cgroup.
//! - [`inner`]: a fast-mode job's inner sandbox; [`confine`]: its programs' second seccomp
//!   filter; [`loopback`]: its network namespace's `lo`.
//!
//! `unsafe` is allowed here alone: rlimits, credentials, wait4 and kill are system calls std
//! does not wrap.
//!
//! [`AgentOutput`]: coderun_schema::agent::AgentOutput
//! [`AgentStageDone`]: coderun_schema::agent::AgentStageDone
#![allow(unsafe_code)]

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use coderun_schema::agent::{
    AgentJob, AgentResult, AgentSettled, AGENT_PROTOCOL_VERSION, WORKSPACE,
};
use coderun_schema::bytes64::Bytes64;

mod command;
mod confine;
mod host;
mod inner;
mod loopback;
mod meter;
mod pipes;
mod privilege;
mod reap;
mod remove;
mod workspace;

fn main() {
    // The first job is always read; after it, only a job that ran in an inner sandbox which
    // ended whole lets the agent take another.
    let mut first = true;
    loop {
        let job = match host::receive_job() {
            Ok(None) if !first => return,
            Ok(None) => Err("the host sent no job".to_owned()),
            Ok(Some(job)) => Ok(job),
            Err(error) => Err(error),
        };
        first = false;
        let (result, ending) = match job.and_then(|job| privilege::check_agent().map(|()| job)) {
            Ok(job) => match job.inner_sandbox {
                Some(inner) => inner::run(&job, inner),
                None => {
                    let mut result = AgentResult {
                        v: AGENT_PROTOCOL_VERSION,
                        ..Default::default()
                    };
                    if let Err(error) = run_job(&job, &mut result) {
                        result.error = Some(error);
                    }
                    (result, None)
                }
            },
            Err(error) => (
                AgentResult {
                    v: AGENT_PROTOCOL_VERSION,
                    error: Some(error),
                    ..Default::default()
                },
                None,
            ),
        };
        // If the host is gone there is nobody to tell; exit either way. Without an inner
        // sandbox (the strict mode) the container's one job is done.
        let sent = host::send(&result);
        let Some(ending) = ending.filter(|_| sent.is_ok()) else {
            return;
        };
        let reusable = ending.settle();
        let settled = AgentSettled {
            v: AGENT_PROTOCOL_VERSION,
            settled_reusable: reusable,
        };
        if host::send(&settled).is_err() || !reusable {
            return;
        }
    }
}

/// Runs the job, filling `result` as it goes; `Err` is the agent's own failure.
pub(crate) fn run_job(job: &AgentJob, result: &mut AgentResult) -> Result<(), String> {
    // Not the container's working directory: Docker would create that one root-owned over the
    // tmpfs.
    std::env::set_current_dir(WORKSPACE)
        .map_err(|error| format!("failed to enter {WORKSPACE}: {error}"))?;
    if job.compile_uid == job.run_uid || job.run_uid == 0 || job.compile_uid == 0 {
        return Err("the compile and run users must be two users other than root".to_owned());
    }
    workspace::write_files(&job.files, job.compile_uid)?;
    let budget = Arc::new(AtomicU64::new(job.output_budget.unwrap_or(u64::MAX)));
    if let Some(compile) = &job.compile {
        let context = command::Context {
            uid: job.compile_uid,
            test: None,
            count_processes: job.count_processes,
            budget: &budget,
        };
        let stage = command::run(compile, &Bytes64::default(), &context)?;
        let compiled = stage.exit_code == Some(0) && !stage.wall_timed_out && !stage.cpu_timed_out;
        host::send_stage_done(None, &stage);
        result.compile = Some(stage);
        if !compiled {
            return Ok(());
        }
        // The tests see the compiled program and nothing else the compile user left.
        workspace::clear_scratch(job.compile_uid)?;
        if job.pause_after_compile && !host::pause_for_run_limits()? {
            return Ok(());
        }
    }
    workspace::seal(job.compile_uid)?;
    for (index, stdin) in job.stdins.iter().enumerate() {
        if index > 0 {
            workspace::clear_user(job.run_uid)?;
        }
        let context = command::Context {
            uid: job.run_uid,
            test: u32::try_from(index).ok(),
            count_processes: job.count_processes,
            budget: &budget,
        };
        let stage = command::run(&job.run, stdin, &context)?;
        host::send_stage_done(context.test, &stage);
        result.runs.push(stage);
    }
    Ok(())
}
