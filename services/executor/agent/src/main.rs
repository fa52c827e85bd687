//! The in-container agent: PID 1 of every sandbox.
//!
//! It reads one [`AgentJob`] as a JSON line on stdin, writes the files into the workspace (the
//! `/workspace` tmpfs), runs the compile command once and the run command once per
//! stdin, and writes one [`AgentResult`] as a JSON line on stdout. Then it exits and the
//! container is gone.
//!
//! Each command runs with argv (never a shell), in its own process group, with rlimits for CPU
//! time, file size and open files, a wall-clock timer, and pipe readers that stop at the output
//! cap. After each command every other process in the container is killed, so nothing a
//! program started outlives it.
//!
//! `unsafe` is allowed here alone: rlimits, wait4 and kill are system calls std does not wrap.
#![allow(unsafe_code)]

use std::io::{BufRead, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

mod meter;

use coderun_schema::agent::{
    AgentCommand, AgentFile, AgentJob, AgentPaused, AgentResult, AgentResume, AgentStage,
    SANDBOX_PATH, WORKSPACE,
};
use coderun_schema::bytes64::Bytes64;
use coderun_schema::catalog::StageLimits;
use coderun_schema::run::is_plain_relative_path;

const PROTOCOL_VERSION: u32 = 1;
/// The user and group programs run as (`nobody` / `nogroup`).
const PROGRAM_ID: libc::uid_t = 65534;
/// The whole environment of every program: nothing of the host's or Docker's.
const PROGRAM_ENVIRONMENT: [(&str, &str); 3] = [
    ("PATH", SANDBOX_PATH),
    ("HOME", WORKSPACE),
    ("LANG", "C.UTF-8"),
];
/// Open files a program may hold.
const MAX_OPEN_FILES: u64 = 256;

fn main() {
    let result = match read_job() {
        Ok(job) => run_job(&job),
        Err(error) => AgentResult {
            v: PROTOCOL_VERSION,
            error: Some(error),
            ..Default::default()
        },
    };
    // If the host is gone there is nobody to tell; exit either way.
    let _ = write_line(&result);
}

/// Writes one protocol message to the host: a JSON line on stdout.
fn write_line<T: serde::Serialize>(message: &T) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, message)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// Reads one protocol message from the host: a JSON line on stdin (`what` names it in errors).
fn read_line<T: serde::de::DeserializeOwned>(what: &str) -> Result<T, String> {
    let mut line = Vec::new();
    std::io::stdin()
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|error| format!("failed to read {what}: {error}"))?;
    serde_json::from_slice(&line).map_err(|error| format!("{what} is not valid: {error}"))
}

fn read_job() -> Result<AgentJob, String> {
    read_line("the job")
}

/// Tells the host the compile stage is over and waits for its word to run.
fn pause_for_run_limits() -> Result<bool, String> {
    let paused = AgentPaused {
        v: PROTOCOL_VERSION,
        paused_after_compile: true,
    };
    write_line(&paused).map_err(|error| format!("failed to tell the host: {error}"))?;
    let resume: AgentResume = read_line("the host's word")?;
    Ok(resume.proceed)
}

fn run_job(job: &AgentJob) -> AgentResult {
    let mut result = AgentResult {
        v: PROTOCOL_VERSION,
        ..Default::default()
    };
    // Not the container's working directory: Docker would create that one root-owned over the
    // tmpfs, and nobody could write to it.
    if let Err(error) = std::env::set_current_dir(WORKSPACE) {
        result.error = Some(format!("failed to enter {WORKSPACE}: {error}"));
        return result;
    }
    for file in &job.files {
        if let Err(error) = write_file(file) {
            result.error = Some(error);
            return result;
        }
    }
    if let Some(compile) = &job.compile {
        let stage = run_command(compile, &Bytes64::default(), job.count_processes);
        let compiled = stage.exit_code == Some(0) && !stage.wall_timed_out && !stage.cpu_timed_out;
        result.compile = Some(stage);
        if !compiled {
            return result;
        }
        if job.pause_after_compile {
            match pause_for_run_limits() {
                Ok(true) => {}
                Ok(false) => return result,
                Err(error) => {
                    result.error = Some(error);
                    return result;
                }
            }
        }
    }
    for stdin in &job.stdins {
        result
            .runs
            .push(run_command(&job.run, stdin, job.count_processes));
    }
    result
}

/// Writes one file of the job below the working directory, refusing any path that could
/// leave it.
fn write_file(file: &AgentFile) -> Result<(), String> {
    if !is_plain_relative_path(&file.path) {
        return Err(format!("refusing file path {:?}", file.path));
    }
    let path = Path::new(&file.path);
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("failed to create {}: {error}", parent.display()))?;
        // Programs run as another user and may write next to their sources (class files,
        // caches): every directory is world-writable and sticky, like the workspace itself.
        for directory in parent.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o1777))
                .map_err(|error| format!("failed to open up {}: {error}", directory.display()))?;
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let mut handle = options
        .open(path)
        .map_err(|error| format!("failed to create {}: {error}", file.path))?;
    handle
        .write_all(file.content.as_slice())
        .map_err(|error| format!("failed to write {}: {error}", file.path))
}

/// Reads a pipe until EOF, keeping at most `cap` bytes. Returns the bytes and whether more
/// was offered; on overflow it raises `overflowed` and stops reading.
fn read_capped(mut pipe: impl Read, cap: usize, overflowed: Arc<AtomicBool>) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) | Err(_) => return (kept, false),
            Ok(read) => {
                let room = cap.saturating_sub(kept.len());
                if read > room {
                    kept.extend_from_slice(&buffer[..room]);
                    overflowed.store(true, Ordering::SeqCst);
                    return (kept, true);
                }
                kept.extend_from_slice(&buffer[..read]);
            }
        }
    }
}

/// Becomes the unprivileged program user. The agent itself runs as the container's root with
/// only CAP_SETUID, CAP_SETGID and CAP_KILL, so a program (uid 65534, no capabilities) can neither
/// signal, ptrace nor otherwise tamper with the agent that reports on it. When the agent
/// already runs unprivileged (an older container setting), it stays as it is.
fn drop_to_program_user() -> std::io::Result<()> {
    // SAFETY: getuid/setgroups/setgid/setuid are async-signal-safe and touch no memory of ours.
    unsafe {
        if libc::getuid() != 0 {
            return Ok(());
        }
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(PROGRAM_ID) != 0
            || libc::setuid(PROGRAM_ID) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sets this thread's effective (and so file-system) uid. The raw system call changes the
/// calling thread only; libc's wrapper would change every thread of the agent.
fn set_thread_euid(uid: libc::uid_t) -> std::io::Result<()> {
    let unchanged = libc::c_long::from(-1i32);
    // SAFETY: setresuid takes three integers and touches no memory.
    let result = unsafe {
        libc::syscall(
            libc::SYS_setresuid,
            unchanged,
            libc::c_long::from(uid),
            unchanged,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A pipe (read end, write end) whose inode belongs to the program user, so the program can
/// also open its standard streams by name (`/dev/stdin`, `/proc/self/fd/1`), as many programs
/// do; a pipe of the agent's (root, mode 0600) could only be used through the inherited fd.
/// Opening by name needs the fd already or ptrace rights over a holder, so nothing more is
/// exposed. The agent's real and saved uid stay 0, so it takes its capabilities back at once.
fn program_pipe() -> std::io::Result<(std::fs::File, std::fs::File)> {
    // SAFETY: getuid has no preconditions.
    let privileged = unsafe { libc::getuid() } == 0;
    if privileged {
        set_thread_euid(PROGRAM_ID)?;
    }
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into a valid two-element array.
    let created = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    let error = std::io::Error::last_os_error();
    if privileged {
        // Without its uid the agent could not stop or measure what it runs: give up whole.
        #[allow(clippy::expect_used)]
        set_thread_euid(0).expect("the agent takes back its own uid");
    }
    if created != 0 {
        return Err(error);
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nothing else.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

/// The program's stdin, stdout and stderr pipes: the program's ends and the agent's.
struct StreamPipes {
    program: [std::fs::File; 3],
    stdin: std::fs::File,
    stdout: std::fs::File,
    stderr: std::fs::File,
}

fn stream_pipes() -> std::io::Result<StreamPipes> {
    let (stdin_read, stdin) = program_pipe()?;
    let (stdout, stdout_write) = program_pipe()?;
    let (stderr, stderr_write) = program_pipe()?;
    Ok(StreamPipes {
        program: [stdin_read, stdout_write, stderr_write],
        stdin,
        stdout,
        stderr,
    })
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

/// One sweep of SIGKILL to every process but the agent (daemons that left the process group
/// included). Each pid is named from /proc rather than with kill(-1): not every runtime's
/// kernel (gVisor's) spares the caller of kill(-1).
fn kill_all_programs() {
    let Some(pids) = other_pids() else {
        // No /proc to read: fall back to kill(-1), which Linux never turns on its caller.
        // SAFETY: kill has no memory effects.
        unsafe {
            libc::kill(-1, libc::SIGKILL);
        }
        return;
    };
    for pid in pids {
        // SAFETY: kill has no memory effects; a pid gone since the listing yields ESRCH.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Every process in the sandbox but the agent, from /proc; `None` if /proc cannot be read.
fn other_pids() -> Option<impl Iterator<Item = libc::pid_t>> {
    let own = std::process::id();
    let entries = std::fs::read_dir("/proc").ok()?;
    Some(entries.flatten().filter_map(move |entry| {
        let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
        (pid != own).then_some(pid as libc::pid_t)
    }))
}

/// Processes in the sandbox besides the agent.
fn other_processes() -> u64 {
    other_pids().map_or(0, |pids| pids.count() as u64)
}

/// Kills every process in the container but this one, and reaps them all. Repeats until no
/// child is left, so a fork bomb that forks between two sweeps is caught by the next one.
fn kill_everything_else() {
    loop {
        kill_all_programs();
        // SAFETY: waitpid writes only to the status integer it is given.
        unsafe {
            let mut status = 0;
            loop {
                match libc::waitpid(-1, &mut status, libc::WNOHANG) {
                    reaped if reaped > 0 => continue,
                    0 => break,
                    _ => return,
                }
            }
        }
        thread::sleep(Duration::from_millis(1));
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

/// A command that could not be started: exit status 127, as a shell would say.
fn not_started(reason: String) -> AgentStage {
    AgentStage {
        spawn_error: Some(reason),
        exit_code: Some(127),
        ..Default::default()
    }
}

fn run_command(command: &AgentCommand, stdin: &Bytes64, count_processes: bool) -> AgentStage {
    let limits: StageLimits = command.limits;
    let Some((program, args)) = command.argv.split_first() else {
        return AgentStage {
            spawn_error: Some("empty command".to_owned()),
            ..Default::default()
        };
    };
    let cpu_seconds = limits.cpu_ms.div_ceil(1000).max(1);
    let file_size = limits.file_size_kb.saturating_mul(1024);
    let pipes = match stream_pipes() {
        Ok(pipes) => pipes,
        Err(error) => return not_started(format!("failed to create the program's pipes: {error}")),
    };
    let [program_stdin, program_stdout, program_stderr] = pipes.program;
    let mut process = Command::new(program);
    process
        .args(args)
        .env_clear()
        .envs(PROGRAM_ENVIRONMENT.iter().copied())
        .stdin(Stdio::from(program_stdin))
        .stdout(Stdio::from(program_stdout))
        .stderr(Stdio::from(program_stderr))
        .process_group(0);
    // SAFETY: the closure only calls async-signal-safe setrlimit between fork and exec.
    unsafe {
        process.pre_exec(move || {
            // SIGXCPU at the soft limit, SIGKILL one second later.
            set_limit(libc::RLIMIT_CPU, cpu_seconds, cpu_seconds + 1)?;
            set_limit(libc::RLIMIT_FSIZE, file_size, file_size)?;
            set_limit(libc::RLIMIT_NOFILE, MAX_OPEN_FILES, MAX_OPEN_FILES)?;
            set_limit(libc::RLIMIT_CORE, 0, 0)?;
            drop_to_program_user()?;
            Ok(())
        });
    }
    let oom_kills_before = meter::oom_kills();
    // The baselines are read before the program exists: read later (the watchdog thread may
    // start late on a loaded machine), they would hide what the program did first.
    let mut meter = meter::TreeMeter::start();
    let started = Instant::now();
    let spawned = process.spawn();
    // The program's pipe ends live on in the program only: the readers see EOF when it ends.
    drop(process);
    let child = match spawned {
        Ok(child) => child,
        Err(error) => return not_started(format!("failed to start {program}: {error}")),
    };
    let pid = child.id() as i32;
    let cap = usize::try_from(limits.output_kb.saturating_mul(1024)).unwrap_or(usize::MAX);
    let overflowed = Arc::new(AtomicBool::new(false));

    let input = stdin.as_slice().to_vec();
    // The writer stays alive until the command ends, so the agent holds the same number of
    // tasks (AGENT_TASKS on the host side) for the command's whole life.
    let (writer_release, writer_hold) = mpsc::channel::<()>();
    let mut stdin_pipe = pipes.stdin;
    let writer = thread::spawn(move || {
        // A program that stops reading closes the pipe: that is not an error of ours.
        let _ = stdin_pipe.write_all(&input);
        drop(stdin_pipe);
        let _ = writer_hold.recv();
    });
    let stdout_reader = {
        let (pipe, overflowed) = (pipes.stdout, overflowed.clone());
        thread::spawn(move || read_capped(pipe, cap, overflowed))
    };
    let stderr_reader = {
        let (pipe, overflowed) = (pipes.stderr, overflowed.clone());
        thread::spawn(move || read_capped(pipe, cap, overflowed))
    };

    // The watchdog kills the group at the wall limit or as soon as output overflows.
    let (done_sender, done_receiver) = mpsc::channel::<()>();
    let wall_limit = Duration::from_millis(limits.wall_ms);
    let cpu_limit_ms = limits.cpu_ms;
    let process_limit = count_processes.then_some(limits.pids);
    let watchdog = {
        let overflowed = overflowed.clone();
        thread::spawn(move || {
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
                } else if process_limit.is_some_and(|most| other_processes() > most) {
                    ended = WatchEnd::ProcessLimit;
                }
                if ended != WatchEnd::Exited {
                    kill_all_programs();
                    return (ended, meter);
                }
                let tick = (wall_limit - elapsed).min(Duration::from_millis(5));
                match done_receiver.recv_timeout(tick) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => {
                        meter.sample();
                        return (ended, meter);
                    }
                }
            }
        })
    };

    let waited = wait_with_usage(pid);
    let wall = started.elapsed();
    let _ = done_sender.send(());
    let (ended, meter) = watchdog
        .join()
        .unwrap_or_else(|_| (WatchEnd::Exited, meter::TreeMeter::start()));
    let wall_timed_out = ended == WatchEnd::WallLimit;
    // Whatever the program left behind dies now, so the pipes reach EOF; the tree's CPU is
    // read once they are all gone.
    kill_everything_else();
    let tree_cpu_ms = meter.cpu_ms();
    let (stdout, stdout_truncated) = stdout_reader.join().unwrap_or_default();
    let (stderr, stderr_truncated) = stderr_reader.join().unwrap_or_default();
    drop(writer_release);
    let _ = writer.join();
    drop(child);

    let mut stage = AgentStage {
        pids_exceeded: ended == WatchEnd::ProcessLimit,
        oom_killed: matches!((oom_kills_before, meter::oom_kills()), (Some(before), Some(after)) if after > before),
        stdout: Bytes64(stdout),
        stderr: Bytes64(stderr),
        stdout_truncated,
        stderr_truncated,
        wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX),
        wall_timed_out,
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
            stage.memory_kb = direct_kb.max(meter.peak_kb().unwrap_or(0));
            stage.cpu_timed_out = ended == WatchEnd::CpuLimit
                || stage.cpu_ms > limits.cpu_ms
                || matches!(status.signal(), Some(libc::SIGXCPU));
        }
        Err(error) => stage.spawn_error = Some(format!("failed to wait for {program}: {error}")),
    }
    stage
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
