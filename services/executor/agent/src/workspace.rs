//! The workspace and the scratch directories between stages and tests.
//!
//! The files are written as the compile user, who alone compiles. Before the tests, everything
//! that user left in the workspace is sealed (read-only to everyone else, no set-id bits) and
//! whatever it left in the scratch directories is removed. A test runs as another user, who
//! can add files to the workspace but change nothing there; before each further test the agent
//! removes everything that user owns in the workspace, `/tmp`, `/dev/shm` and `/dev/mqueue`,
//! and its System V IPC objects, so every test starts from the same post-compile workspace.
//!
//! All of it is done as the user concerned (never with the agent's own rights), without
//! following a symbolic link, so whatever a program planted can only lead the agent to what
//! that program could have done itself.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use coderun_schema::agent::{AgentFile, WORKSPACE};
use coderun_schema::file_names::{file_name_problem, file_set_problems};

use crate::privilege::as_user;
use crate::remove::remove_owned;

/// Directories every program may write to besides the workspace, emptied between users.
const SCRATCH: [&str; 3] = ["/tmp", "/dev/shm", "/dev/mqueue"];

/// Writes the job's files below the workspace (the working directory), as `owner`.
pub fn write_files(files: &[AgentFile], owner: u32) -> Result<(), String> {
    if let Some((index, problem)) =
        file_set_problems(files.iter().map(|file| file.path.as_str())).first()
    {
        return Err(format!(
            "refusing file path {:?}: {problem}",
            files[*index].path
        ));
    }
    as_user(owner, || files.iter().try_for_each(write_file))
        .map_err(|error| format!("failed to become the compile user: {error}"))?
}

fn write_file(file: &AgentFile) -> Result<(), String> {
    if let Some(problem) = file_name_problem(&file.path) {
        return Err(format!("refusing file path {:?}: {problem}", file.path));
    }
    let path = Path::new(&file.path);
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("failed to create {}: {error}", parent.display()))?;
    }
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|error| format!("failed to create {}: {error}", file.path))?;
    handle
        .write_all(file.content.as_slice())
        .map_err(|error| format!("failed to write {}: {error}", file.path))
}

/// Makes everything `owner` has in the workspace readable by all and writable by `owner` only,
/// without set-id or sticky bits: the compiled program, as the tests will find it.
pub fn seal(owner: u32) -> Result<(), String> {
    as_user(owner, || seal_below(Path::new(WORKSPACE), owner))
        .map_err(|error| format!("failed to become the compile user: {error}"))?
}

fn seal_below(directory: &Path, owner: u32) -> Result<(), String> {
    // Listed whole before descending, so no directory stays open below this one.
    let paths: Vec<_> = std::fs::read_dir(directory)
        .and_then(|entries| {
            entries
                .map(|entry| entry.map(|entry| entry.path()))
                .collect()
        })
        .map_err(|error| format!("failed to list {}: {error}", directory.display()))?;
    for path in paths {
        let metadata = std::fs::symlink_metadata(&path)
            .map_err(|error| format!("failed to inspect {}: {error}", path.display()))?;
        if metadata.uid() != owner || metadata.file_type().is_symlink() {
            continue;
        }
        let executable = metadata.is_dir() || metadata.mode() & 0o100 != 0;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|error| format!("failed to seal {}: {error}", path.display()))?;
        if metadata.is_dir() {
            seal_below(&path, owner)?;
        }
    }
    Ok(())
}

/// Removes everything `user` owns in the workspace and the scratch directories, and its IPC
/// objects. Fails if anything of the user's cannot be removed: the next test must not see it.
pub fn clear_user(user: u32) -> Result<(), String> {
    clear(user, &[WORKSPACE, SCRATCH[0], SCRATCH[1], SCRATCH[2]])
}

/// Removes what `user` left in the scratch directories and its IPC objects, leaving the
/// workspace as it is (the compile stage's output).
pub fn clear_scratch(user: u32) -> Result<(), String> {
    clear(user, &SCRATCH)
}

fn clear(user: u32, directories: &[&str]) -> Result<(), String> {
    as_user(user, || {
        for directory in directories {
            remove_owned(Path::new(directory), user)?;
        }
        remove_ipc_objects(user);
        Ok(())
    })
    .map_err(|error| format!("failed to become user {user}: {error}"))?
}

/// Removes the System V shared memory segments, semaphore sets and message queues `user`
/// created or owns (where the runtime lists them in /proc/sysvipc).
/// A /proc/sysvipc table, the column of its ids, and how to remove one.
type IpcTable = (&'static str, &'static str, fn(i32));

fn remove_ipc_objects(user: u32) {
    let tables: [IpcTable; 3] = [
        ("shm", "shmid", remove_shm),
        ("sem", "semid", remove_sem),
        ("msg", "msqid", remove_msg),
    ];
    for (table, id_column, remove) in tables {
        let Ok(text) = std::fs::read_to_string(format!("/proc/sysvipc/{table}")) else {
            continue;
        };
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        let column = |name: &str| header.iter().position(|field| *field == name);
        let (Some(id), Some(uid), Some(cuid)) = (column(id_column), column("uid"), column("cuid"))
        else {
            continue;
        };
        for line in lines {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let number = |at: usize| fields.get(at).and_then(|value| value.parse::<u32>().ok());
            if number(uid) == Some(user) || number(cuid) == Some(user) {
                if let Some(object) = fields.get(id).and_then(|value| value.parse().ok()) {
                    remove(object);
                }
            }
        }
    }
}

fn remove_shm(id: i32) {
    // SAFETY: IPC_RMID ignores the buffer argument.
    unsafe {
        libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
    }
}

fn remove_sem(id: i32) {
    // SAFETY: IPC_RMID takes no further argument.
    unsafe {
        libc::semctl(id, 0, libc::IPC_RMID);
    }
}

fn remove_msg(id: i32) {
    // SAFETY: IPC_RMID ignores the buffer argument.
    unsafe {
        libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut());
    }
}
