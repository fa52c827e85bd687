//! The second seccomp filter of a program in an inner sandbox.
//!
//! A fast-mode container's own profile allows `unshare` and `mount`: the agent needs them to
//! build each run's inner sandbox. Its programs must not have them, so before exec every
//! program of an inner sandbox gets this filter on top of the container's (filters stack; the
//! stricter answer wins): the system calls that make or enter namespaces and change mounts
//! fail with EPERM, and a system call of another architecture ends the process. Everything
//! else is left to the container's profile.

/// `AUDIT_ARCH_X86_64` and `AUDIT_ARCH_AARCH64` (linux/audit.h): the architecture a filter
/// is written for.
#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7;

/// Offsets in `struct seccomp_data`.
const SYSCALL_NUMBER: u32 = 0;
const ARCHITECTURE: u32 = 4;

/// What a program of an inner sandbox may never call, whatever the container's profile says.
fn denied() -> Vec<libc::c_long> {
    vec![
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
    ]
}

/// A compiled filter, built before any program is forked: installing it allocates nothing.
pub struct ProgramFilter {
    instructions: Vec<libc::sock_filter>,
}

fn statement(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump_if_equal(k: u32, if_equal: u8, otherwise: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: if_equal,
        jf: otherwise,
        k,
    }
}

impl ProgramFilter {
    pub fn new() -> Self {
        let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
        let ret = libc::BPF_RET | libc::BPF_K;
        let mut instructions = vec![
            statement(load, ARCHITECTURE),
            jump_if_equal(NATIVE_ARCH, 1, 0),
            statement(ret, libc::SECCOMP_RET_KILL_PROCESS),
            statement(load, SYSCALL_NUMBER),
        ];
        for call in denied() {
            // Equal: skip the allow below to the refusal; otherwise go on to the next test.
            instructions.push(jump_if_equal(call as u32, 0, 1));
            instructions.push(statement(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32));
        }
        instructions.push(statement(ret, libc::SECCOMP_RET_ALLOW));
        Self { instructions }
    }

    /// Installs the filter on the calling thread (between fork and exec: async-signal-safe,
    /// no allocation). Needs no-new-privileges set first.
    pub fn install(&self) -> std::io::Result<()> {
        let program = libc::sock_fprog {
            len: self.instructions.len() as u16,
            filter: self.instructions.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points at instructions that live as long as `self`; the kernel
        // copies them.
        let installed = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            )
        };
        if installed == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denied_call_has_a_refusal_and_the_rest_is_allowed() {
        let filter = ProgramFilter::new();
        let refusals = filter
            .instructions
            .iter()
            .filter(|instruction| instruction.k == libc::SECCOMP_RET_ERRNO | libc::EPERM as u32)
            .count();
        assert_eq!(refusals, denied().len());
        let last = filter.instructions.last().expect("a last instruction");
        assert_eq!(last.k, libc::SECCOMP_RET_ALLOW);
    }
}
