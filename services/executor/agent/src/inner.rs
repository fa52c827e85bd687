//! A fast-mode run's inner sandbox, inside a reused container.
//!
//! For each job the agent forks a process that leaves the container's namespaces for new user,
//! mount, PID, IPC, UTS and network ones. The agent, still in the container's namespaces and
//! holding SETUID and SETGID there, writes the new user namespace's maps: inside root is
//! [`InnerSandbox::root_uid`], a host user of the run's own (never the host's root: the container
//! cannot even map uid 0), and the job's compile and run users are themselves. The run user creates
//! the namespace, so what its programs hold is counted against it. That process becomes inside root
//! and forks the first process of the new PID namespace, which mounts a fresh `/workspace`, `/tmp`,
//! `/dev/shm` and `/dev/mqueue`, brings up the loopback interface and runs the job exactly as a
//! strict-mode agent would, its programs confined further by [`crate::confine`]. Its answer goes
//! back to the agent through a pipe; when it exits, its PID namespace dies with every process in
//! it, and the namespaces with everything a program made in them (files, shared memory, message
//! queues, sockets). The agent hands the answer to the host at once and waits for that teardown
//! afterwards ([`Ending::settle`]): only then does it say whether the container may take the next
//! job.
//!
//! The container's own `/proc` stays mounted: a fresh one cannot be mounted in a user namespace
//! while Docker masks parts of it. Programs see the same `/proc` as in the strict mode; the
//! agent's processes there are another user's and not dumpable.

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::OnceLock;

use coderun_schema::agent::{AgentJob, AgentResult, InnerSandbox, AGENT_PROTOCOL_VERSION};

use crate::confine::ProgramFilter;

/// The namespaces every inner sandbox gets.
const NAMESPACES: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWNET;

/// The largest answer read back from an inner sandbox (output is streamed, not in it).
const MAX_ANSWER: u64 = 4 * 1024 * 1024;

/// Set in an inner sandbox's first process: its programs' second filter.
static PROGRAM_FILTER: OnceLock<ProgramFilter> = OnceLock::new();

/// The filter of this process's programs, when it is an inner sandbox.
pub fn program_filter() -> Option<&'static ProgramFilter> {
    PROGRAM_FILTER.get()
}

/// Whether this process is an inner sandbox's first process (the init of its PID namespace).
pub fn active() -> bool {
    PROGRAM_FILTER.get().is_some()
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn pipe() -> Result<(std::fs::File, std::fs::File), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_error("failed to create a pipe"));
    }
    // SAFETY: both fds were just opened and belong to nothing else.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

fn fork() -> Result<libc::pid_t, String> {
    // SAFETY: the calling process has one thread (every command's threads are joined before a
    // job ends), so the child may run ordinary code.
    match unsafe { libc::fork() } {
        -1 => Err(os_error("failed to fork")),
        pid => Ok(pid),
    }
}

/// Waits for `pid`; its exit code, or 128 + the signal that ended it.
fn wait_exit(pid: libc::pid_t) -> Result<i32, String> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only to the status integer it is given.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(os_error("failed to wait for the inner sandbox"));
        }
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// An inner sandbox whose answer was read: it may still be tearing down its namespaces.
pub struct Ending {
    pid: libc::pid_t,
    /// The answer came whole and reports no failure of the agent's own.
    answered: bool,
}

impl Ending {
    /// Waits for the sandbox to end; true when it ended whole and nothing of it is left, so
    /// the container may take the same tenant's next job.
    pub fn settle(self) -> bool {
        let exit = wait_exit(self.pid);
        self.answered && exit == Ok(0) && crate::reap::only_agent_left()
    }
}

/// Runs `job` in a fresh inner sandbox and returns its answer as soon as the sandbox has given
/// it, with the sandbox still ending (`None` when none was started).
pub fn run(job: &AgentJob, inner: InnerSandbox) -> (AgentResult, Option<Ending>) {
    let failed = |error: String| AgentResult {
        v: AGENT_PROTOCOL_VERSION,
        error: Some(error),
        ..Default::default()
    };
    match run_checked(job, inner) {
        Ok((Ok(result), pid)) => {
            let answered = result.error.is_none();
            (result, Some(Ending { pid, answered }))
        }
        Ok((Err(error), pid)) => (
            failed(error),
            Some(Ending {
                pid,
                answered: false,
            }),
        ),
        Err(error) => (failed(error), None),
    }
}

/// The answer (or why there is none) and the sandbox's process; `Err` when none was started.
fn run_checked(
    job: &AgentJob,
    inner: InnerSandbox,
) -> Result<(Result<AgentResult, String>, libc::pid_t), String> {
    if job.count_processes {
        return Err("an inner sandbox cannot count processes: its runtime is runc".to_owned());
    }
    let users = [inner.root_uid, job.compile_uid, job.run_uid];
    if users.contains(&0) || users[0] == users[1] || users[0] == users[2] {
        return Err("the inner sandbox's root and program users must differ, none root".to_owned());
    }
    let (mut unshared_read, unshared_write) = pipe()?;
    let (mapped_read, mut mapped_write) = pipe()?;
    let (mut answer_read, answer_write) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        drop((unshared_read, mapped_write, answer_read));
        let code = match leave_namespaces(job, inner, unshared_write, mapped_read, answer_write) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("coderun-agent: {error}");
                1
            }
        };
        // SAFETY: _exit ends this child without running the agent's exit handlers.
        unsafe { libc::_exit(code) }
    }
    drop((unshared_write, mapped_read, answer_write));
    let mut byte = [0u8; 1];
    let mapped = unshared_read
        .read_exact(&mut byte)
        .map_err(|error| format!("the inner sandbox did not start: {error}"))
        .and_then(|()| write_maps(pid, &users));
    if mapped.is_ok() {
        let _ = mapped_write.write_all(&[1]);
    }
    drop(mapped_write);
    // The answer ends when the first process closes its end, as it exits: the namespaces'
    // teardown that follows is waited for only after the host has the answer.
    let mut answer = Vec::new();
    let read = Read::by_ref(&mut answer_read)
        .take(MAX_ANSWER)
        .read_to_end(&mut answer);
    let result = mapped.and_then(|()| {
        read.map_err(|error| format!("failed to read the inner sandbox's answer: {error}"))?;
        serde_json::from_slice::<AgentResult>(&answer)
            .map_err(|error| format!("the inner sandbox ended without an answer: {error}"))
    });
    Ok((result, pid))
}

/// `SECBIT_NO_SETUID_FIXUP` (linux/securebits.h): a change of effective uid keeps the
/// capabilities.
const KEEP_CAPABILITIES_ACROSS_UID_CHANGES: libc::c_ulong = 1 << 2;

/// The maps of the new user namespace: inside root, and the program users as themselves.
///
/// The kernel lets a process write another's maps only when it holds CAP_SYS_ADMIN in the new
/// namespace — which, from outside, its owner (the run user) does — and SETUID and SETGID in
/// the parent. So this thread becomes the run user for the write while keeping its
/// capabilities, then root again.
fn write_maps(pid: libc::pid_t, users: &[u32; 3]) -> Result<(), String> {
    let [root, compile, run] = *users;
    let map = format!("0 {root} 1\n{compile} {compile} 1\n{run} {run} 1\n");
    // SAFETY: prctl with integer arguments touches no memory.
    if unsafe {
        libc::prctl(
            libc::PR_SET_SECUREBITS,
            KEEP_CAPABILITIES_ACROSS_UID_CHANGES,
        )
    } != 0
    {
        return Err(os_error("failed to keep the agent's capabilities"));
    }
    let written = crate::privilege::set_thread_euid(run)
        .map_err(|error| format!("failed to act as the inner sandbox's owner: {error}"))
        .and_then(|()| {
            ["uid_map", "gid_map"].iter().try_for_each(|file| {
                std::fs::write(format!("/proc/{pid}/{file}"), &map)
                    .map_err(|error| format!("failed to write the inner sandbox's {file}: {error}"))
            })
        });
    // Without its own uid and securebits the agent could not go on: give up whole.
    crate::privilege::set_thread_euid(0).expect("the agent takes back its own uid");
    // SAFETY: as above.
    if unsafe { libc::prctl(libc::PR_SET_SECUREBITS, 0) } != 0 {
        panic!(
            "the agent cannot reset its securebits: {}",
            std::io::Error::last_os_error()
        );
    }
    written
}

/// The forked process: leaves the container's namespaces, waits for its maps, becomes inside
/// root and runs the PID namespace's first process; exits as that process did.
fn leave_namespaces(
    job: &AgentJob,
    inner: InnerSandbox,
    mut unshared: std::fs::File,
    mut mapped: std::fs::File,
    answer: std::fs::File,
) -> Result<i32, String> {
    // The run user creates the namespaces: the kernel charges the per-user counters of
    // everything inside (inotify instances, message-queue bytes, pending signals, processes)
    // to the creator, which must be neither the host's root nor another run's user. (Inside
    // root is another user: mapping the creator as inside root would take CAP_SETFCAP.)
    let creator = job.run_uid;
    // SAFETY: these calls take integers (or a null list) only.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(creator, creator, creator) != 0
            || libc::setresuid(creator, creator, creator) != 0
        {
            return Err(os_error("failed to become the inner sandbox's user"));
        }
    }
    // Set after the change of user, which clears both.
    stay_tied_and_undumpable()?;
    // SAFETY: unshare and prctl take integers only.
    unsafe {
        if libc::unshare(NAMESPACES) != 0 {
            return Err(os_error("failed to create the inner sandbox's namespaces"));
        }
        // Until the maps are written: its /proc files are then the creator's, whom the agent
        // becomes to write them (see `write_maps`). Nothing else runs as the creator yet.
        if libc::prctl(libc::PR_SET_DUMPABLE, 1) != 0 {
            return Err(os_error(
                "failed to open the inner sandbox's maps to the agent",
            ));
        }
    }
    unshared
        .write_all(&[1])
        .map_err(|error| format!("failed to tell the agent: {error}"))?;
    let mut byte = [0u8; 1];
    mapped
        .read_exact(&mut byte)
        .map_err(|_| "the agent could not map the inner sandbox's users".to_owned())?;
    // SAFETY: these calls take integers only.
    unsafe {
        if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
            return Err(os_error("failed to become the inner sandbox's root"));
        }
    }
    stay_tied_and_undumpable()?;
    let pid = fork()?;
    if pid == 0 {
        let code = first_process(job, inner, answer);
        // SAFETY: _exit ends the PID namespace's first process, and so the namespace.
        unsafe { libc::_exit(code) }
    }
    drop(answer);
    wait_exit(pid)
}

/// The first process of the new PID namespace: prepares the fresh directories and runs the
/// job; its answer goes to `answer`.
fn first_process(job: &AgentJob, inner: InnerSandbox, mut answer: std::fs::File) -> i32 {
    let mut result = AgentResult {
        v: AGENT_PROTOCOL_VERSION,
        ..Default::default()
    };
    // The parent-death signal lasts until this process first acts as a program user (a
    // change of user clears it): if the forked process dies before that, so does this one;
    // after it, the agent finds the sandbox unfinished and the container is not reused.
    let prepared = stay_tied_and_undumpable()
        .and_then(|()| prepare(inner))
        .map(|()| {
            let _ = PROGRAM_FILTER.set(ProgramFilter::new());
        });
    if let Err(error) = prepared.and_then(|()| crate::run_job(job, &mut result)) {
        result.error = Some(error);
    }
    let written = serde_json::to_vec(&result)
        .map_err(std::io::Error::other)
        .and_then(|bytes| answer.write_all(&bytes));
    i32::from(written.is_err())
}

/// Dies with the parent; not dumpable (programs can neither ptrace it nor read its /proc
/// files, which belong to the host's root).
fn stay_tied_and_undumpable() -> Result<(), String> {
    // SAFETY: prctl with integer arguments touches no memory.
    let failed = unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
            || libc::prctl(libc::PR_SET_DUMPABLE, 0) != 0
    };
    if failed {
        return Err(os_error("failed to set up an inner sandbox process"));
    }
    Ok(())
}

fn mount(
    source: &str,
    target: &str,
    kind: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), String> {
    let c = |text: &str| std::ffi::CString::new(text).map_err(|error| error.to_string());
    let (source_c, target_c, kind_c, data_c) = (c(source)?, c(target)?, c(kind)?, c(data)?);
    // SAFETY: every pointer is a valid NUL-terminated string for the duration of the call.
    let mounted = unsafe {
        libc::mount(
            source_c.as_ptr(),
            target_c.as_ptr(),
            kind_c.as_ptr(),
            flags,
            data_c.as_ptr().cast(),
        )
    };
    if mounted == 0 {
        Ok(())
    } else {
        Err(os_error(&format!("failed to mount {kind} on {target}")))
    }
}

/// Fresh directories for the run, and a loopback interface that is up (as in a container with
/// network none).
fn prepare(inner: InnerSandbox) -> Result<(), String> {
    // Nothing mounted here may reach the container's mount namespace.
    mount("none", "/", "", libc::MS_REC | libc::MS_PRIVATE, "")?;
    let scratch = format!("size={}m,mode=1777", inner.scratch_mb);
    let plain = libc::MS_NOSUID | libc::MS_NODEV;
    mount("tmpfs", "/workspace", "tmpfs", plain, &scratch)?;
    mount("tmpfs", "/tmp", "tmpfs", plain, &scratch)?;
    mount(
        "tmpfs",
        "/dev/shm",
        "tmpfs",
        plain | libc::MS_NOEXEC,
        &scratch,
    )?;
    // Queues made through this path belong to the run's IPC namespace, not the container's.
    mount(
        "mqueue",
        "/dev/mqueue",
        "mqueue",
        plain | libc::MS_NOEXEC,
        "",
    )?;
    crate::loopback::bring_up()
}
