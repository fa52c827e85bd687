//! Removing a user's files however a program arranged them: through directory descriptors
//! (`*at` calls, so no path grows past PATH_MAX) and with a bounded number of them open (a
//! subdirectory's entries are lifted into its parent one level at a time, so a tree thousands
//! of levels deep needs three descriptors, not thousands). Called as the user concerned, with
//! every program already dead: nothing changes under it.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

fn open_directory(parent: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: name is a valid C string; the new fd is owned by the OwnedFd alone.
    let fd = check(unsafe { libc::openat(parent, name.as_ptr(), flags) })?;
    // SAFETY: openat just returned this fd and nothing else holds it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Owner and whether it is a directory, without following a symbolic link.
fn inspect(parent: RawFd, name: &CStr) -> io::Result<(u32, bool)> {
    // SAFETY: stat is plain old data that fstatat fills.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: name and status are valid for the duration of the call.
    check(unsafe {
        libc::fstatat(
            parent,
            name.as_ptr(),
            &mut status,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok((
        status.st_uid,
        status.st_mode & libc::S_IFMT == libc::S_IFDIR,
    ))
}

/// The names in a directory, `.` and `..` left out.
fn names(directory: &OwnedFd) -> io::Result<Vec<CString>> {
    // SAFETY: dup of an open fd; fdopendir takes the duplicate over (closedir closes it).
    let stream = unsafe {
        let duplicate = check(libc::fcntl(directory.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0))?;
        let stream = libc::fdopendir(duplicate);
        if stream.is_null() {
            let error = io::Error::last_os_error();
            libc::close(duplicate);
            return Err(error);
        }
        libc::rewinddir(stream);
        stream
    };
    let mut found = Vec::new();
    loop {
        // SAFETY: stream is open; readdir's entry is valid until the next call.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name is a NUL-terminated name inside the entry.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            found.push(name.to_owned());
        }
    }
    // SAFETY: stream came from fdopendir and is closed once.
    unsafe { libc::closedir(stream) };
    Ok(found)
}

/// Gives the owner every right on directory `name` of `parent` (a program may have left it
/// with none). Only ever called on what `inspect` found to be a directory, not a link.
fn open_up(parent: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: name is a valid C string.
    check(unsafe { libc::fchmodat(parent, name.as_ptr(), 0o700, 0) }).map(drop)
}

fn unlink(parent: RawFd, name: &CStr, directory: bool) -> io::Result<()> {
    let flags = if directory { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: name is a valid C string.
    check(unsafe { libc::unlinkat(parent, name.as_ptr(), flags) }).map(drop)
}

/// Removes directory `name` of `parent` and all it holds.
fn remove_directory(parent: RawFd, name: &CStr) -> io::Result<()> {
    open_up(parent, name)?;
    let directory = open_directory(parent, name)?;
    let at = directory.as_raw_fd();
    let mut lifted = 0u64;
    loop {
        let entries = names(&directory)?;
        if entries.is_empty() {
            break;
        }
        for entry in entries {
            let (_, is_directory) = inspect(at, &entry)?;
            if !is_directory {
                unlink(at, &entry, false)?;
                continue;
            }
            // Lift its entries up here (a directory moved needs its own write permission),
            // then remove it, empty.
            open_up(at, &entry)?;
            let below = open_directory(at, &entry)?;
            for child in names(&below)? {
                if inspect(below.as_raw_fd(), &child)?.1 {
                    open_up(below.as_raw_fd(), &child)?;
                }
                let fresh = loop {
                    lifted += 1;
                    let fresh = CString::new(format!(".coderun-lifted-{lifted}"))
                        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
                    if inspect(at, &fresh).is_err() {
                        break fresh;
                    }
                };
                // SAFETY: both names are valid C strings; both fds are open directories.
                check(unsafe {
                    libc::renameat(below.as_raw_fd(), child.as_ptr(), at, fresh.as_ptr())
                })?;
            }
            drop(below);
            unlink(at, &entry, true)?;
        }
    }
    drop(directory);
    unlink(parent, name, true)
}

/// Removes every entry of `directory` that `user` owns, with all it holds. A directory that
/// does not exist (a scratch directory this runtime does not mount) has nothing to remove.
pub fn remove_owned(directory: &Path, user: u32) -> Result<(), String> {
    let failed = |error: io::Error| format!("failed to clear {}: {error}", directory.display());
    let Ok(path) = CString::new(directory.as_os_str().as_bytes()) else {
        return Err(format!("{} is not a path", directory.display()));
    };
    let top = match open_directory(libc::AT_FDCWD, &path) {
        Ok(top) => top,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(failed(error)),
    };
    for name in names(&top).map_err(failed)? {
        let (owner, is_directory) = inspect(top.as_raw_fd(), &name).map_err(failed)?;
        if owner != user {
            continue;
        }
        if is_directory {
            remove_directory(top.as_raw_fd(), &name).map_err(failed)?;
        } else {
            unlink(top.as_raw_fd(), &name, false).map_err(failed)?;
        }
    }
    Ok(())
}
