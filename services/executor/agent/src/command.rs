//! Running one command: argv (never a shell) as a program user, in its own process group, with
//! rlimits for CPU time, file size, open files and core dumps, a wall-clock watchdog, and pipe
//! readers that send the output to the host as it comes and stop at the caps.
//!
//! Every thread the agent needs for a command exists before the program does, so a program
//! that fills the process limit at once (a fork bomb) cannot keep the agent from watching it.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use coderun_schema::agent::{
    AgentCommand, AgentStage, OutputStream, MAX_OPEN_FILES, SANDBOX_LANG, SANDBOX_PATH, WORKSPACE,
};
use coderun_schema::bytes64::Bytes64;

use crate::pipes::stream_pipes;
use crate::privilege::{become_program_user, DROP_FAILED};
use crate::{host, meter, reap};

/// The whole environment of every program: nothing of the host's or Docker's.
const PROGRAM_ENVIRONMENT: [(&str, &str); 3] = [
    ("PATH", SANDBOX_PATH),
    ("HOME", WORKSPACE),
    ("LANG", SANDBOX_LANG),
];

/// How one command runs, besides its argv and limits.
pub struct Context<'a> {
    /// The user (and group) it runs as.
    pub uid: u32,
    /// The test it is (index into the job's stdins); `None` for the compile command.
    pub test: Option<u32>,
    /// Count the sandbox's processes and stop at the `pids` limit (runtimes whose cgroup does
    /// not count them).
    pub count_processes: bool,
    /// Output bytes the whole job may still send.
    pub budget: &'a Arc<AtomicU64>,
}

/// Why the watchdog stopped watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchEnd {
    Exited,
    WallLimit,
    CpuLimit,
    ProcessLimit,
    OutputLimit,
}

/// A command that could not be started: exit status 127, as a shell would say.
fn not_started(reason: String) -> AgentStage {
    AgentStage {
        spawn_error: Some(reason),
        exit_code: Some(127),
        ..Default::default()
    }
}

fn spawn_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<thread::JoinHandle<T>, String> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .map_err(|error| format!("failed to start the agent's {name} thread: {error}"))
}

/// Runs one command. `Err` is the agent's own failure (the run is then an internal error);
/// anything the program did, including not starting, is in the stage.
pub fn run(
    command: &AgentCommand,
    stdin: &Bytes64,
    context: &Context<'_>,
) -> Result<AgentStage, String> {
    let limits = command.limits;
    let Some((program, args)) = command.argv.split_first() else {
        return Ok(not_started("empty command".to_owned()));
    };
    let uid = context.uid;
    let pipes = stream_pipes(uid)
        .map_err(|error| format!("failed to create the program's pipes: {error}"))?;
    let [program_stdin, program_stdout, program_stderr] = pipes.program;
    let cap = limits.output_kb.saturating_mul(1024);
    let overflowed = Arc::new(AtomicBool::new(false));

    // Threads first (see the module's comment).
    let input = stdin.as_slice().to_vec();
    let (writer_release, writer_hold) = mpsc::channel::<()>();
    let mut stdin_pipe = pipes.stdin;
    let writer = spawn_thread("stdin", move || {
        // A program that stops reading closes the pipe: that is not an error of ours.
        let _ = stdin_pipe.write_all(&input);
        drop(stdin_pipe);
        // Held until the command ends, so the agent's task count stays the same throughout.
        let _ = writer_hold.recv();
    })?;
    let reader = |pipe: std::fs::File, stream: OutputStream| {
        let (overflowed, budget, test) = (overflowed.clone(), context.budget.clone(), context.test);
        spawn_thread("output", move || {
            forward(pipe, cap, &budget, &overflowed, test, stream)
        })
    };
    let stdout_reader = reader(pipes.stdout, OutputStream::Stdout)?;
    let stderr_reader = reader(pipes.stderr, OutputStream::Stderr)?;
    let (start, started_watching) = mpsc::channel::<(Instant, meter::TreeMeter)>();
    let (done_sender, done_receiver) = mpsc::channel::<()>();
    let wall_limit = Duration::from_millis(limits.wall_ms);
    let cpu_limit_ms = limits.cpu_ms;
    let process_limit = context.count_processes.then_some(limits.pids);
    let watchdog = {
        let overflowed = overflowed.clone();
        spawn_thread("watchdog", move || {
            let (started, mut meter) = started_watching.recv().ok()?;
            let mut ended = WatchEnd::Exited;
            loop {
                meter.sample();
                let elapsed = started.elapsed();
                if elapsed >= wall_limit {
                    ended = WatchEnd::WallLimit;
                } else if meter.cpu_ms().is_some_and(|cpu| cpu > cpu_limit_ms) {
                    // The tree's CPU, not one process's: RLIMIT_CPU alone misses workers.
                    ended = WatchEnd::CpuLimit;
                } else if overflowed.load(Ordering::SeqCst) {
                    ended = WatchEnd::OutputLimit;
                } else if process_limit.is_some_and(|most| reap::other_processes() > most) {
                    ended = WatchEnd::ProcessLimit;
                }
                if ended != WatchEnd::Exited {
                    reap::kill_all_programs();
                    return Some((ended, meter));
                }
                let tick = (wall_limit - elapsed).min(Duration::from_millis(5));
                match done_receiver.recv_timeout(tick) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => {
                        meter.sample();
                        return Some((ended, meter));
                    }
                }
            }
        })?
    };

    let cpu_seconds = limits.cpu_ms.div_ceil(1000).max(1);
    let process_limit_for_user = limits.pids;
    let file_size = limits.file_size_kb.saturating_mul(1024);
    let inner_filter = crate::inner::program_filter();
    let mut process = Command::new(program);
    process
        .args(args)
        .env_clear()
        .envs(PROGRAM_ENVIRONMENT.iter().copied())
        .stdin(Stdio::from(program_stdin))
        .stdout(Stdio::from(program_stdout))
        .stderr(Stdio::from(program_stderr))
        .process_group(0);
    // SAFETY: the closure only makes async-signal-safe calls between fork and exec.
    unsafe {
        process.pre_exec(move || {
            // SIGXCPU at the soft limit, SIGKILL one second later.
            set_limit(libc::RLIMIT_CPU, cpu_seconds, cpu_seconds + 1)?;
            set_limit(libc::RLIMIT_FSIZE, file_size, file_size)?;
            set_limit(libc::RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES)?;
            set_limit(libc::RLIMIT_CORE, 0, 0)?;
            // The run's users are its own: their process count is the run's, under every
            // runtime (gVisor's kernel refuses the fork itself, long before the host's ceiling).
            set_limit(
                libc::RLIMIT_NPROC,
                process_limit_for_user,
                process_limit_for_user,
            )?;
            if inner_filter.is_some() {
                // In a reused container the kernel's OOM killer must pick a program, never
                // the agent: a run that dies of memory leaves the container able to answer.
                prefer_for_oom_kill();
            }
            become_program_user(uid)?;
            match inner_filter {
                Some(filter) => filter
                    .install()
                    .map_err(|_| std::io::Error::from_raw_os_error(DROP_FAILED)),
                None => Ok(()),
            }
        });
    }
    let oom_kills_before = meter::oom_kills();
    // The baselines are read before the program exists: read later (the watchdog may start
    // late on a loaded machine), they would hide what the program did first.
    let meter = meter::TreeMeter::start();
    let started = Instant::now();
    let spawned = process.spawn();
    // The program's pipe ends live on in the program only: the readers see EOF when it ends.
    drop(process);
    let child = match spawned {
        Ok(child) => child,
        Err(error) => {
            finish_threads(
                writer_release,
                writer,
                stdout_reader,
                stderr_reader,
                watchdog,
            );
            return if error.raw_os_error() == Some(DROP_FAILED) {
                Err(format!(
                    "failed to make {program} a program user's: refusing to run it"
                ))
            } else {
                Ok(not_started(format!("failed to start {program}: {error}")))
            };
        }
    };
    let _ = start.send((started, meter));
    let pid = child.id() as i32;
    let waited = wait_with_usage(pid);
    let wall = started.elapsed();
    let _ = done_sender.send(());
    let watched = watchdog.join().ok().flatten();
    let (ended, meter) = match watched {
        Some((ended, meter)) => (ended, Some(meter)),
        None => (WatchEnd::Exited, None),
    };
    // Whatever the program left behind dies now, so the pipes reach EOF; the tree's CPU is
    // read once they are all gone.
    reap::kill_everything_else();
    let tree_cpu_ms = meter.as_ref().and_then(meter::TreeMeter::cpu_ms);
    let stdout_truncated = stdout_reader.join().unwrap_or(false);
    let stderr_truncated = stderr_reader.join().unwrap_or(false);
    drop(writer_release);
    let _ = writer.join();
    drop(child);

    let mut stage = AgentStage {
        pids_exceeded: ended == WatchEnd::ProcessLimit,
        oom_killed: matches!((oom_kills_before, meter::oom_kills()), (Some(before), Some(after)) if after > before),
        stdout_truncated,
        stderr_truncated,
        wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
        wall_timed_out: ended == WatchEnd::WallLimit,
        ..Default::default()
    };
    match waited {
        Ok(Waited { status, usage }) => {
            stage.exit_code = status.code();
            stage.signal = status.signal();
            let cpu_us = meter::timeval_us(usage.ru_utime) + meter::timeval_us(usage.ru_stime);
            let direct_kb = u64::try_from(usage.ru_maxrss).unwrap_or(0);
            // The whole tree where the cgroup tells, never less than the direct descendants.
            stage.cpu_ms = (cpu_us / 1000).max(tree_cpu_ms.unwrap_or(0));
            stage.memory_kb = direct_kb.max(
                meter
                    .as_ref()
                    .and_then(meter::TreeMeter::peak_kb)
                    .unwrap_or(0),
            );
            stage.cpu_timed_out = ended == WatchEnd::CpuLimit
                || stage.cpu_ms > limits.cpu_ms
                || matches!(status.signal(), Some(libc::SIGXCPU));
        }
        Err(error) => stage.spawn_error = Some(format!("failed to wait for {program}: {error}")),
    }
    Ok(stage)
}

/// Lets the command's threads end when the program never started.
fn finish_threads<A, B, C, D>(
    writer_release: mpsc::Sender<()>,
    writer: thread::JoinHandle<A>,
    stdout_reader: thread::JoinHandle<B>,
    stderr_reader: thread::JoinHandle<C>,
    watchdog: thread::JoinHandle<D>,
) {
    drop(writer_release);
    let _ = (
        writer.join(),
        stdout_reader.join(),
        stderr_reader.join(),
        watchdog.join(),
    );
}

/// Reads a pipe until EOF and sends what it reads to the host, at most `cap` bytes and no more
/// than the job's remaining `budget`. Returns whether more was offered; on overflow it raises
/// `overflowed` (the watchdog then stops the command) and stops reading.
fn forward(
    mut pipe: impl Read,
    cap: u64,
    budget: &AtomicU64,
    overflowed: &AtomicBool,
    test: Option<u32>,
    stream: OutputStream,
) -> bool {
    let mut sent = 0u64;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = match pipe.read(&mut buffer) {
            Ok(0) | Err(_) => return false,
            Ok(read) => read,
        };
        let wanted = read as u64;
        let allowed = take_budget(budget, wanted.min(cap.saturating_sub(sent)));
        if allowed > 0 && host::send_output(test, stream, &buffer[..allowed as usize]).is_err() {
            // The host is gone: nobody will read the rest either.
            return false;
        }
        sent += allowed;
        if allowed < wanted {
            overflowed.store(true, Ordering::SeqCst);
            return true;
        }
    }
}

/// Takes up to `wanted` bytes from the budget; returns how many it got.
fn take_budget(budget: &AtomicU64, wanted: u64) -> u64 {
    let previous = budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            Some(left.saturating_sub(wanted))
        })
        .unwrap_or(0);
    previous.min(wanted)
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads a valid rlimit struct and has no other effect on memory.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes the calling process the OOM killer's first choice (async-signal-safe; best effort:
/// it only changes which process the kernel picks). The process is made dumpable first, so
/// its /proc files are its own user's (the inner sandbox's root) rather than the host root's;
/// the change to the program's user that follows makes it undumpable again until exec.
fn prefer_for_oom_kill() {
    const PATH: &[u8] = b"/proc/self/oom_score_adj\0";
    const MOST: &[u8] = b"1000";
    // SAFETY: prctl takes integers; a NUL-terminated path and a valid buffer; the fd is
    // closed at once.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 1);
        let fd = libc::open(PATH.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, MOST.as_ptr().cast(), MOST.len());
            libc::close(fd);
        }
    }
}

struct Waited {
    status: std::process::ExitStatus,
    usage: libc::rusage,
}

fn wait_with_usage(pid: i32) -> std::io::Result<Waited> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it and the status integer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are valid for the duration of the call.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited == pid {
            return Ok(Waited {
                status: std::process::ExitStatus::from_raw(status),
                usage,
            });
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::take_budget;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn the_budget_is_shared_and_never_overdrawn() {
        let budget = AtomicU64::new(10);
        assert_eq!(take_budget(&budget, 4), 4);
        assert_eq!(take_budget(&budget, 8), 6);
        assert_eq!(take_budget(&budget, 1), 0);
        assert_eq!(budget.load(Ordering::SeqCst), 0);
    }
}
