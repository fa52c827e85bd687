//! Executors and schedulers as processes of their own, for the tests that kill one (`kill -9`)
//! or stop one (SIGTERM) while it works: the binaries of the same build, pointed at a stack's
//! NATS, Redis and prefix. A process is killed when its handle is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::{agent_path, program_uid_base, TestStack};

/// The `coderun-executor` binary beside this test's (`cargo test --workspace --all-targets`,
/// which `scripts/test.sh` runs, builds it).
pub fn executor_binary() -> PathBuf {
    service_binary("coderun-executor")
}

pub(crate) fn service_binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let profile = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary sits in <target>/<profile>/deps");
    let binary = profile.join(name);
    assert!(
        binary.is_file(),
        "{} is missing: run the suite with scripts/test.sh (it builds every binary)",
        binary.display()
    );
    binary
}

/// SIGTERM to `child`, then waits for it to exit; its exit code.
fn terminate(child: &mut Child) -> Option<i32> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().ok().and_then(|status| status.code())
}

/// Waits up to `within` for `child` to exit: its exit status, `None` if it still runs.
pub(crate) async fn exited_within(
    child: &mut Child,
    within: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The process id in the scheduler lease's holder (`scheduler-<pid>-<random>`), once a
/// scheduler holds it.
pub async fn active_scheduler_pid(bus: &coderun_bus::Bus) -> Option<u32> {
    let bucket = bus.names().scheduler_lease_bucket();
    let store = bus.jetstream().get_key_value(bucket).await.ok()?;
    let holder = store.get("active").await.ok()??;
    String::from_utf8_lossy(&holder)
        .split('-')
        .nth(1)?
        .parse()
        .ok()
}

/// Two scheduler processes for `stack` (lease `lease_ms`): the first holds the lease when
/// this returns, the second is on standby; and a bus to read the lease with.
pub async fn two_schedulers(
    stack: &TestStack,
    lease_ms: u64,
) -> (coderun_bus::Bus, SchedulerProcess, SchedulerProcess) {
    let bus = coderun_bus::Bus::connect(stack.nats_url(), stack.names.clone(), "lease-reader")
        .await
        .expect("NATS is up");
    let first = SchedulerProcess::start(stack, lease_ms);
    let active = crate::wait_until(std::time::Duration::from_secs(20), || {
        active_scheduler_pid(&bus)
    })
    .await
    .expect("a scheduler takes the lease");
    assert_eq!(active, first.pid(), "the first scheduler holds the lease");
    let second = SchedulerProcess::start(stack, lease_ms);
    (bus, first, second)
}

/// A scheduler process for a stack (its lease `lease_ms`), the stack's own scheduler left out
/// ([`crate::StackOptions::in_process_scheduler`]).
pub struct SchedulerProcess {
    child: Child,
}

impl SchedulerProcess {
    pub fn start(stack: &TestStack, lease_ms: u64) -> Self {
        let child = Command::new(service_binary("coderun-scheduler"))
            .env("CODERUN_SCHEDULER__BUS__URL", stack.nats_url())
            .env("CODERUN_SCHEDULER__BUS__PREFIX", stack.names.prefix())
            .env("CODERUN_SCHEDULER__STORE__URL", stack.redis_url())
            .env("CODERUN_SCHEDULER__SUBMIT__ACK_WAIT_SECS", "2")
            .env("CODERUN_SCHEDULER__LEADER__LEASE_MS", lease_ms.to_string())
            .env("CODERUN_SCHEDULER__OPS__PORT", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the scheduler binary starts");
        Self { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits for it to exit; its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        terminate(&mut self.child)
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// A stack with no executor of its own and two executor processes of `slots` slots each
/// serving `language`, named `<first>-<prefix>` and `<second>-<prefix>`, both live.
pub async fn stack_with_two_executors(
    language: &str,
    first: &str,
    second: &str,
    slots: u32,
    ack_wait_secs: u64,
) -> (TestStack, ExecutorProcess, ExecutorProcess) {
    let stack = TestStack::start_with(crate::StackOptions {
        languages: vec![language.to_owned()],
        in_process_executor: false,
        ..crate::StackOptions::default()
    })
    .await;
    let prefix = stack.names.prefix().to_owned();
    let start = |name: &str| {
        let id = format!("{name}-{prefix}");
        ExecutorProcess::start(&stack, &id, &[language], slots, ack_wait_secs)
    };
    let (first, second) = (start(first), start(second));
    stack.wait_for_languages().await;
    (stack, first, second)
}

/// An executor process serving `languages` for a stack.
pub struct ExecutorProcess {
    pub id: String,
    /// Its ops listener (`/metrics`, `/healthz`, `/readyz`).
    pub ops_url: String,
    child: Child,
}

impl ExecutorProcess {
    /// Starts an executor named `id` with `slots` slots, in the strict mode (each run in a
    /// container named for it), its jobs coming back to NATS `ack_wait_secs` after it stops
    /// acknowledging them.
    pub fn start(
        stack: &TestStack,
        id: &str,
        languages: &[&str],
        slots: u32,
        ack_wait_secs: u64,
    ) -> Self {
        Self::start_with_env(stack, id, languages, slots, ack_wait_secs, &[])
    }

    /// As [`ExecutorProcess::start`], with more environment variables (`DOCKER_HOST` for an
    /// engine of the test's own).
    pub fn start_with_env(
        stack: &TestStack,
        id: &str,
        languages: &[&str],
        slots: u32,
        ack_wait_secs: u64,
        extra: &[(&str, String)],
    ) -> Self {
        let ops_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(executor_binary())
            .envs(extra.iter().map(|(key, value)| (*key, value.as_str())))
            .env("CODERUN_EXECUTOR__WORKER__ID", id)
            .env("CODERUN_EXECUTOR__BUS__URL", stack.nats_url())
            .env("CODERUN_EXECUTOR__BUS__PREFIX", stack.names.prefix())
            .env("CODERUN_EXECUTOR__STORE__URL", stack.redis_url())
            .env("CODERUN_EXECUTOR__WORKER__SLOTS", slots.to_string())
            .env("CODERUN_EXECUTOR__WORKER__LANGUAGES", languages.join(","))
            .env("CODERUN_EXECUTOR__WORKER__HEARTBEAT_INTERVAL_MS", "500")
            .env(
                "CODERUN_EXECUTOR__WORKER__ACK_WAIT_SECS",
                ack_wait_secs.to_string(),
            )
            .env("CODERUN_EXECUTOR__SANDBOX__AGENT_PATH", agent_path())
            .env("CODERUN_EXECUTOR__SANDBOX__ISOLATION", "strict")
            .env("CODERUN_EXECUTOR__SANDBOX__WARM_PER_LANGUAGE", "1")
            .env("CODERUN_EXECUTOR__SANDBOX__WORKSPACE_MB", "32")
            .env(
                "CODERUN_EXECUTOR__SANDBOX__FIRST_PROGRAM_UID",
                program_uid_base().to_string(),
            )
            .env("CODERUN_EXECUTOR__OPS__PORT", ops_port.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the executor binary starts");
        Self {
            id: id.to_owned(),
            ops_url: format!("http://127.0.0.1:{ops_port}"),
            child,
        }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The label filter of its containers, for `docker ps`.
    pub fn label(&self) -> String {
        format!("label=coderun.executor={}", self.id)
    }

    /// SIGTERM, then waits for it to exit; its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        terminate(&mut self.child)
    }
}

impl Drop for ExecutorProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}
