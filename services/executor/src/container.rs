//! The one place the sandbox's container settings are decided: network none, read-only root,
//! tmpfs workspace and /tmp with a size cap, every capability dropped but the agent's four,
//! no-new-privileges, our own seccomp profile, no log driver, a neutral host name, pids /
//! memory (swap equal) / CPU limits, nofile / fsize / core ulimits, an environment of PATH,
//! HOME and LANG only, and the agent mounted read-only as PID 1. Pure functions: unit-tested
//! without Docker.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use coderun_schema::agent::{
    AGENT_CAPABILITIES, MAX_OPEN_FILES, SANDBOX_LANG, SANDBOX_PATH, WORKSPACE,
};
use coderun_schema::catalog::{Limits, StageLimits};

use crate::config::SandboxConfig;

/// Whether `runtime` is gVisor, which differs from runc in three ways this executor handles in
/// four places: its host cgroup counts its own tasks (`host_pids_limit`, and the agent counts
/// processes), it cannot update a running container (limits go through `crate::cgroup`), and it
/// answers every seccomp refusal with EPERM (`seccomp_profile`).
pub fn is_gvisor(runtime: &str) -> bool {
    runtime == "runsc"
}

pub use crate::seccomp::{seccomp_profile, SECCOMP_PROFILE};

/// Where the agent is mounted inside every container.
pub const AGENT_MOUNT: &str = "/coderun/agent";
/// The agent's user inside the container: root, with every capability dropped except
/// `schema::agent::AGENT_CAPABILITIES` (the agent refuses to run with any other set).
/// Programs run as users of their own (`crate::users`) with none.
pub const AGENT_USER: &str = "0:0";
/// Every sandbox's host name: nothing about the host or the run.
pub const SANDBOX_HOSTNAME: &str = "sandbox";
/// Label on every sandbox container: the pool (language) it serves.
pub const LABEL_POOL: &str = "coderun.pool";
/// Label on every sandbox container: the name prefix of the deployment that made it. The run
/// a container serves is in its name (labels cannot change once a warm container is taken).
pub const LABEL_PREFIX: &str = "coderun.prefix";

/// The label naming the executor a sandbox container belongs to: another executor on the same
/// engine removes it only once that executor is gone (`crate::janitor`).
pub const LABEL_EXECUTOR: &str = "coderun.executor";
/// What one sandbox needs to know.
#[derive(Debug, Clone)]
pub struct SandboxSpec<'a> {
    pub image: &'a str,
    pub pool: &'a str,
    pub run_id: &'a str,
    /// The job's limits. The container starts with the first stage's memory and pids limits
    /// (the compile stage's, or the run stage's when nothing is compiled) and is changed to
    /// the run stage's between the stages when they differ; its fsize ulimit is the larger of
    /// the two stages'.
    pub limits: Limits,
    /// Whether the job has a compile stage.
    pub compiles: bool,
    /// The tenant whose run it is: a reused container serves one tenant only.
    pub tenant: &'a str,
    /// The isolation the tenant requires, if any.
    pub isolation: Option<crate::config::Isolation>,
}

impl SandboxSpec<'_> {
    /// The limits the container starts with: the compile stage's, or the run's.
    pub fn first_stage(&self) -> StageLimits {
        if self.compiles {
            self.limits.compile
        } else {
            self.limits.run
        }
    }

    /// The container-level limits to apply between compile and run, when they differ.
    pub fn stage_change(&self) -> Option<StageLimits> {
        let (first, run) = (self.first_stage(), self.limits.run);
        (first.memory_mb != run.memory_mb || first.pids != run.pids).then_some(run)
    }
}

/// Tasks the agent itself holds while a command runs: its main thread, the stdin writer, the
/// stdout and stderr readers and the watchdog. The pids cgroup counts them too.
pub const AGENT_TASKS: u64 = 5;
/// Host tasks gVisor's ptrace platform may use per sandboxed process, and for itself.
const RUNSC_TASKS_PER_PROCESS: u64 = 32;
const RUNSC_OWN_TASKS: u64 = 64;

/// The container's pids limit for a command allowed `pids` tasks. Under runc it is exact: the
/// agent's own tasks are added. Under runsc the host cgroup counts the gVisor kernel's own
/// tasks and several per sandboxed process, so it is only a ceiling; the agent counts the
/// program's processes itself there (`AgentJob::count_processes`).
pub fn host_pids_limit(runtime: &str, pids: u64) -> i64 {
    let host_tasks = if is_gvisor(runtime) {
        pids.saturating_mul(RUNSC_TASKS_PER_PROCESS)
            .saturating_add(RUNSC_OWN_TASKS)
    } else {
        pids.saturating_add(AGENT_TASKS)
    };
    i64::try_from(host_tasks).unwrap_or(i64::MAX)
}

pub fn memory_bytes(limits: &StageLimits) -> i64 {
    i64::try_from(limits.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)
}

/// The container settings for one run: everything a sandbox must be (ARCHITECTURE.md, "The
/// sandbox today").
pub fn container_body(
    settings: &SandboxConfig,
    prefix: &str,
    spec: &SandboxSpec<'_>,
) -> ContainerCreateBody {
    // The container starts with the first stage's memory and pids limits; when the run
    // stage's differ, `run` changes them between the stages (see `stage_change`). The
    // fsize ulimit is the hard ceiling the agent lowers per command, so it is the larger.
    let stage = spec.first_stage();
    let memory = memory_bytes(&stage);
    let largest_file = stage.file_size_kb.max(spec.limits.run.file_size_kb);
    let file_size = i64::try_from(largest_file.saturating_mul(1024)).unwrap_or(i64::MAX);
    let tmpfs_options = format!(
        "rw,exec,nosuid,nodev,size={}m,mode=1777",
        settings.workspace_mb
    );
    let labels = HashMap::from([
        (LABEL_POOL.to_owned(), spec.pool.to_owned()),
        (LABEL_PREFIX.to_owned(), prefix.to_owned()),
    ]);
    ContainerCreateBody {
        image: Some(spec.image.to_owned()),
        entrypoint: Some(vec![AGENT_MOUNT.to_owned()]),
        cmd: Some(Vec::new()),
        // The agent runs as root with AGENT_CAPABILITIES only, and drops to the run's
        // compile or run user for every command it runs (see the agent's
        // become_program_user).
        user: Some(AGENT_USER.to_owned()),
        // No working_dir: Docker would create it root-owned over the tmpfs. The agent
        // changes into the workspace itself.
        env: Some(vec![
            format!("PATH={SANDBOX_PATH}"),
            format!("HOME={WORKSPACE}"),
            format!("LANG={SANDBOX_LANG}"),
        ]),
        hostname: Some(SANDBOX_HOSTNAME.to_owned()),
        network_disabled: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([
                (WORKSPACE.to_owned(), tmpfs_options.clone()),
                ("/tmp".to_owned(), tmpfs_options),
            ])),
            cap_drop: Some(vec!["ALL".to_owned()]),
            cap_add: Some(
                AGENT_CAPABILITIES
                    .iter()
                    .map(|(name, _)| (*name).to_owned())
                    .collect(),
            ),
            // Attach still carries the agent's lines; nothing is kept on the host's disk.
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".to_owned()),
                config: None,
            }),
            security_opt: Some(vec![
                "no-new-privileges".to_owned(),
                format!(
                    "seccomp={}",
                    seccomp_profile(settings.runtime_for(spec.pool))
                ),
            ]),
            pids_limit: Some(host_pids_limit(settings.runtime_for(spec.pool), stage.pids)),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some((settings.cpus * 1e9) as i64),
            ulimits: Some(vec![
                ResourcesUlimits {
                    name: Some("nofile".to_owned()),
                    soft: Some(MAX_OPEN_FILES as i64),
                    hard: Some(MAX_OPEN_FILES as i64),
                },
                ResourcesUlimits {
                    name: Some("fsize".to_owned()),
                    soft: Some(file_size),
                    hard: Some(file_size),
                },
                ResourcesUlimits {
                    name: Some("core".to_owned()),
                    soft: Some(0),
                    hard: Some(0),
                },
            ]),
            binds: Some(vec![format!(
                "{}:{AGENT_MOUNT}:ro",
                settings.agent_path.display()
            )]),
            runtime: Some(settings.runtime_for(spec.pool).to_owned()),
            init: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Two runs can share a pre-warmed container exactly when their container settings, labels
/// aside, are identical.
pub fn container_key(body: &ContainerCreateBody) -> String {
    let mut unlabelled = body.clone();
    unlabelled.labels = None;
    // Through a JSON value: its objects are sorted maps, so the HashMaps inside the body
    // (tmpfs) give the same key whatever their iteration order.
    serde_json::to_value(&unlabelled)
        .map(|value| value.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox_settings() -> SandboxConfig {
        SandboxConfig {
            agent_path: "/opt/agent".into(),
            runtime: "runc".to_owned(),
            runtimes: Default::default(),
            workspace_mb: 32,
            cpus: 1.0,
            warm_per_language: 0,
            warm_sizes: Default::default(),
            host_margin_secs: 5,
            engine_wait_secs: 0,
            first_program_uid: 60_000,
            max_output_mb: 32,
            isolation: crate::config::Isolation::Strict,
            isolations: Default::default(),
            reuse_max_runs: 10,
            reuse_max_secs: 60,
            reuse_idle_max: 4,
        }
    }

    #[test]
    fn container_is_locked_down_and_sized_for_its_first_stage() {
        let limits = coderun_schema::catalog::Catalog::builtin().limits.default;
        let spec = SandboxSpec {
            image: "img",
            pool: "python",
            run_id: "run_1",
            limits,
            compiles: true,
            tenant: "t",
            isolation: None,
        };
        let body = container_body_for_tests(&spec);
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.cap_add,
            Some(
                ["KILL", "SETGID", "SETUID", "SETPCAP"]
                    .map(str::to_owned)
                    .to_vec()
            )
        );
        assert_eq!(
            host.log_config.and_then(|log| log.typ).as_deref(),
            Some("none")
        );
        assert_eq!(body.hostname.as_deref(), Some(SANDBOX_HOSTNAME));
        let security = host.security_opt.expect("security options");
        assert_eq!(security[0], "no-new-privileges");
        let profile: serde_json::Value =
            serde_json::from_str(security[1].strip_prefix("seccomp=").expect("a profile"))
                .expect("the profile is JSON");
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
        let allowed = profile["syscalls"][0]["names"].to_string();
        for denied in [
            "io_uring_setup",
            "userfaultfd",
            "keyctl",
            "bpf",
            "unshare",
            "ptrace",
        ] {
            assert!(
                !allowed.contains(&format!("\"{denied}\"")),
                "{denied} is allowed"
            );
        }
        let compile_stage = limits.compile.memory_mb as i64 * 1024 * 1024;
        assert_eq!(
            host.memory,
            Some(compile_stage),
            "sized for the first stage"
        );
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(body.user.as_deref(), Some(AGENT_USER));
        assert_eq!(body.network_disabled, Some(true));
        let env = body.env.expect("env");
        assert!(env.iter().all(|entry| entry.starts_with("PATH=")
            || entry.starts_with("HOME=")
            || entry.starts_with("LANG=")));
    }

    fn container_body_for_tests(spec: &SandboxSpec<'_>) -> ContainerCreateBody {
        container_body(&sandbox_settings(), "test", spec)
    }
}

#[cfg(test)]
mod runtime_tests {
    use super::*;

    #[test]
    fn a_hardened_pool_gets_its_runtime_and_a_pids_ceiling_for_it() {
        let settings = SandboxConfig {
            agent_path: "/opt/agent".into(),
            runtime: "runc".to_owned(),
            runtimes: [("python".to_owned(), "runsc".to_owned())].into(),
            workspace_mb: 32,
            cpus: 1.0,
            warm_per_language: 0,
            warm_sizes: Default::default(),
            host_margin_secs: 5,
            engine_wait_secs: 0,
            first_program_uid: 60_000,
            max_output_mb: 32,
            isolation: crate::config::Isolation::Strict,
            isolations: Default::default(),
            reuse_max_runs: 10,
            reuse_max_secs: 60,
            reuse_idle_max: 4,
        };
        let limits = coderun_schema::catalog::Catalog::builtin().limits.default;
        let body = |pool| {
            let spec = SandboxSpec {
                image: "img",
                pool,
                run_id: "r",
                limits,
                compiles: false,
                tenant: "t",
                isolation: None,
            };
            container_body(&settings, "test", &spec)
                .host_config
                .expect("host config")
        };
        let (python, bash) = (body("python"), body("bash"));
        assert_eq!(python.runtime.as_deref(), Some("runsc"));
        assert_eq!(bash.runtime.as_deref(), Some("runc"));
        assert_eq!(
            bash.pids_limit,
            Some(limits.run.pids as i64 + AGENT_TASKS as i64)
        );
        assert_eq!(python.pids_limit, Some(limits.run.pids as i64 * 32 + 64));
    }
}
