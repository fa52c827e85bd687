//! Who the agent is, and who its programs become.
//!
//! The agent is the container's root holding exactly [`AGENT_CAPABILITIES`]; it checks that at
//! start and refuses to run anything otherwise, so a mistake in the container settings can
//! never make a program run as the agent. Each program becomes a user of the host's choosing
//! with no capabilities at all (an empty bounding set too) and no way to gain one. The agent
//! itself is not dumpable, so programs can neither ptrace it nor read its /proc files.

use coderun_schema::agent::AGENT_CAPABILITIES;

/// The errno a failed drop of privileges reports through `spawn`: no exec failure ever
/// returns it, so the agent can tell "could not become the program's user" from "no such
/// program" and answer with an error of its own, never run the program.
pub const DROP_FAILED: i32 = libc::ENOTRECOVERABLE;

/// The highest capability number probed when emptying a bounding set.
const LAST_CAPABILITY: libc::c_ulong = 63;

/// Checks that the agent is root with exactly its capabilities, and makes it undumpable.
pub fn check_agent() -> Result<(), String> {
    // SAFETY: these getters have no preconditions.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    if uid != 0 || euid != 0 {
        return Err(format!(
            "the agent runs as uid {uid} (effective {euid}), not root: it cannot give programs a user of their own"
        ));
    }
    let expected = AGENT_CAPABILITIES
        .iter()
        .fold(0u64, |mask, (_, number)| mask | 1 << number);
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|error| format!("failed to read the agent's status: {error}"))?;
    for set in ["CapEff", "CapPrm"] {
        let held = capability_set(&status, set)
            .ok_or_else(|| format!("the agent's status has no {set}"))?;
        if held != expected {
            return Err(format!(
                "the agent holds capabilities {held:#x} ({set}), expected exactly {expected:#x}"
            ));
        }
    }
    // The workspace rules rest on the kernel refusing a hard link to another user's file (a
    // test could otherwise keep state in a link the agent does not own). gVisor always refuses.
    if std::fs::read_to_string("/proc/sys/fs/protected_hardlinks")
        .is_ok_and(|value| value.trim() == "0")
    {
        return Err(
            "the host allows hard links to other users' files (fs.protected_hardlinks = 0)"
                .to_owned(),
        );
    }
    // SAFETY: prctl with integer arguments touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(format!(
            "failed to make the agent undumpable: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// A capability set (`CapEff:` and the like) from /proc/self/status.
fn capability_set(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        u64::from_str_radix(value.trim(), 16).ok()
    })
}

/// Becomes `uid`/`gid` for good: between fork and exec of a program, so only calls that are
/// async-signal-safe and allocate nothing. Any failure is [`DROP_FAILED`].
pub fn become_program_user(uid: libc::uid_t) -> std::io::Result<()> {
    let failed = || Err(std::io::Error::from_raw_os_error(DROP_FAILED));
    // SAFETY: every call takes integers (or a null list) and touches no memory of ours.
    unsafe {
        for capability in 0..=LAST_CAPABILITY {
            let dropped = libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) == 0;
            // EINVAL: the kernel knows no capability of that number.
            if !dropped && *libc::__errno_location() != libc::EINVAL {
                return failed();
            }
        }
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(uid, uid, uid) != 0
            || libc::setresuid(uid, uid, uid) != 0
            || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        {
            return failed();
        }
        // Trust nothing: the ids must all be the program's now.
        let (mut real, mut effective, mut saved) = (0, 0, 0);
        if libc::getresuid(&mut real, &mut effective, &mut saved) != 0
            || [real, effective, saved] != [uid; 3]
            || libc::getegid() != uid
        {
            return failed();
        }
    }
    Ok(())
}

/// Sets this thread's effective (and so file-system) uid. The raw system call changes the
/// calling thread only; libc's wrapper would change every thread of the agent. The real and
/// saved uid stay 0, so the thread can take its capabilities back.
pub fn set_thread_euid(uid: libc::uid_t) -> std::io::Result<()> {
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

/// Runs `work` on this thread as `uid`: what it creates is that user's, and the kernel checks
/// its permissions as that user's (the agent's capabilities are suspended meanwhile).
pub fn as_user<T>(uid: libc::uid_t, work: impl FnOnce() -> T) -> std::io::Result<T> {
    set_thread_euid(uid)?;
    let result = work();
    // Without its uid the agent could not stop or measure what it runs: give up whole.
    set_thread_euid(0).expect("the agent takes back its own uid");
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::capability_set;

    #[test]
    fn capability_sets_are_read_by_name() {
        let status =
            "CapInh:\t0000000000000000\nCapPrm:\t00000000000001e0\nCapEff:\t00000000000001e0\n";
        assert_eq!(capability_set(status, "CapEff"), Some(0x1e0));
        assert_eq!(capability_set(status, "CapAmb"), None);
    }
}
