//! Killing what programs leave behind: every process in the sandbox but the agent.

use std::thread;
use std::time::Duration;

/// One sweep of SIGKILL to every process but the agent (daemons that left the process group
/// included). Each pid is named from /proc rather than with kill(-1): not every runtime's
/// kernel (gVisor's) spares the caller of kill(-1).
pub fn kill_all_programs() {
    // An inner sandbox's first process sees the container's /proc, whose pids are not its PID
    // namespace's; kill(-1) there reaches every process of the namespace but itself.
    let pids = if crate::inner::active() {
        None
    } else {
        other_pids()
    };
    let Some(pids) = pids else {
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

/// Whether the agent is the only process left in the container.
pub fn only_agent_left() -> bool {
    other_pids().is_some_and(|mut pids| pids.next().is_none())
}

/// Processes in the sandbox besides the agent.
pub fn other_processes() -> u64 {
    other_pids().map_or(0, |pids| pids.count() as u64)
}

/// Kills every process in the container but this one, and reaps them all. Repeats until no
/// child is left, so a fork bomb that forks between two sweeps is caught by the next one.
pub fn kill_everything_else() {
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
