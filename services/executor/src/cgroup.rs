//! Changing a running container's memory and pids limits through the host's cgroup files, for
//! a runtime whose engine cannot update a container: gVisor's runsc has no `update`, so Docker
//! refuses, yet its sandbox lives in the cgroup Docker made for it. Only host paths are
//! touched (`/proc/<pid>/cgroup` of the container's first process and `/sys/fs/cgroup`), never
//! anything inside the sandbox.

use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Where a process's memory and pids limits live.
#[derive(Debug, PartialEq, Eq)]
enum Limits {
    /// cgroup v1: one directory per controller.
    V1 { memory: PathBuf, pids: PathBuf },
    /// cgroup v2: one directory for all.
    V2(PathBuf),
}

/// The limit files of the cgroup(s) of a process, from its `/proc/<pid>/cgroup` text.
fn locate(proc_cgroup: &str, root: &Path) -> Option<Limits> {
    let mut memory = None;
    let mut pids = None;
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let relative = path.trim_start_matches('/');
        match controllers {
            "" => unified = Some(root.join(relative)),
            list if list.split(',').any(|c| c == "memory") => {
                memory = Some(root.join("memory").join(relative));
            }
            list if list.split(',').any(|c| c == "pids") => {
                pids = Some(root.join("pids").join(relative));
            }
            _ => {}
        }
    }
    match (memory, pids, unified) {
        (Some(memory), Some(pids), _) => Some(Limits::V1 { memory, pids }),
        (None, None, Some(unified)) => Some(Limits::V2(unified)),
        _ => None,
    }
}

fn write(path: &Path, value: impl std::fmt::Display) -> Result<(), String> {
    std::fs::write(path, value.to_string())
        .map_err(|error| format!("failed to write {}: {error}", path.display()))
}

fn read_number(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether host process `pid` still lives in the cgroup of container `id` (the engine names a
/// container's cgroup after its id, under cgroup v1 and v2 alike).
pub fn is_process_of(pid: i64, id: &str) -> bool {
    !id.is_empty()
        && std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|text| text.lines().any(|line| line.contains(id)))
}

/// Sets the memory (swap equal to it: none beyond) and pids limits of process `pid`'s cgroup.
pub fn apply(pid: i64, memory: i64, pids: i64) -> Result<(), String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|error| format!("failed to read the cgroup of process {pid}: {error}"))?;
    match locate(&text, Path::new(CGROUP_ROOT)) {
        Some(Limits::V1 {
            memory: dir,
            pids: pids_dir,
        }) => {
            let limit = dir.join("memory.limit_in_bytes");
            let with_swap = dir.join("memory.memsw.limit_in_bytes");
            // memory ≤ memory+swap at every moment: lower memory first, raise it last.
            let lowering = read_number(&limit).is_some_and(|current| memory < current);
            let swap_accounted = with_swap.exists();
            if lowering || !swap_accounted {
                write(&limit, memory)?;
            }
            if swap_accounted {
                write(&with_swap, memory)?;
                if !lowering {
                    write(&limit, memory)?;
                }
            }
            write(&pids_dir.join("pids.max"), pids)
        }
        Some(Limits::V2(dir)) => {
            write(&dir.join("memory.max"), memory)?;
            write(&dir.join("memory.swap.max"), 0)?;
            write(&dir.join("pids.max"), pids)
        }
        None => Err(format!("process {pid} has no memory and pids cgroup")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_found_for_both_cgroup_versions() {
        let v1 = "12:pids:/docker/abc\n9:memory:/docker/abc\n1:name=systemd:/docker/abc\n";
        assert_eq!(
            locate(v1, Path::new("/cg")),
            Some(Limits::V1 {
                memory: "/cg/memory/docker/abc".into(),
                pids: "/cg/pids/docker/abc".into()
            })
        );
        let v2 = "0::/system.slice/docker-abc.scope\n";
        assert_eq!(
            locate(v2, Path::new("/cg")),
            Some(Limits::V2("/cg/system.slice/docker-abc.scope".into()))
        );
        assert_eq!(locate("3:cpu:/x\n", Path::new("/cg")), None);
    }
}
