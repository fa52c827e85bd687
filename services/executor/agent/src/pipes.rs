//! The program's standard streams: three pipes whose inodes belong to the program's user.

use std::os::fd::FromRawFd;

use crate::privilege::as_user;

/// The program's stdin, stdout and stderr pipes: the program's ends and the agent's.
pub struct StreamPipes {
    pub program: [std::fs::File; 3],
    pub stdin: std::fs::File,
    pub stdout: std::fs::File,
    pub stderr: std::fs::File,
}

pub fn stream_pipes(uid: u32) -> std::io::Result<StreamPipes> {
    let (stdin_read, stdin) = program_pipe(uid)?;
    let (stdout, stdout_write) = program_pipe(uid)?;
    let (stderr, stderr_write) = program_pipe(uid)?;
    Ok(StreamPipes {
        program: [stdin_read, stdout_write, stderr_write],
        stdin,
        stdout,
        stderr,
    })
}

/// A pipe (read end, write end) whose inode belongs to the program's user, so the program can
/// also open its standard streams by name (`/dev/stdin`, `/proc/self/fd/1`), as many programs
/// do; a pipe of the agent's (root, mode 0600) could only be used through the inherited fd.
/// Opening by name needs the fd already or ptrace rights over a holder, so nothing more is
/// exposed.
fn program_pipe(uid: u32) -> std::io::Result<(std::fs::File, std::fs::File)> {
    let mut fds = [0; 2];
    let created = as_user(uid, || {
        // SAFETY: pipe2 writes two fds into a valid two-element array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    })?;
    created?;
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nothing else.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}
