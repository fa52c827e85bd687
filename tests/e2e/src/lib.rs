//! Test harness: [`TestStack::start`] runs a real gateway, scheduler and executor in this
//! process, against the real NATS, Redis and Docker Engine that `scripts/test.sh` starts, under
//! a name prefix of the test's own, so tests run side by side without seeing each other.
//!
//! Environment: `CODERUN_TEST_NATS_URL`, `CODERUN_TEST_REDIS_URL` (loopback defaults) and
//! `CODERUN_TEST_AGENT`, the static agent binary (scripts/test.sh builds it).
//!
//! A stack removes what it leaves behind when dropped, also when its test panics
//! ([`cleanup`]); [`private_redis`], [`private_nats`] and [`private_docker`] give a test a
//! Redis, a NATS or a Docker Engine of its own to crash or restart; the helpers
//! tests share (runtimes, catalog limits, waiting for a condition, problems) are in `support`;
//! [`observe`] reads metrics pages and runs a Prometheus of a test's own; [`processes`] runs
//! executors and schedulers as processes of their own, for tests that kill one, and
//! [`front_processes`] the gateway and the prober; [`steady_load`] keeps
//! submitting while a test breaks something.

pub mod cleanup;
pub mod front_processes;
pub mod observe;
mod options;
pub mod private_docker;
pub mod private_nats;
pub mod private_redis;
pub mod processes;
pub mod receiver;
pub mod steady_load;
mod support;

pub use options::StackOptions;
pub use support::*;

use std::path::PathBuf;
use std::time::Duration;

use coderun_client::Client;
use coderun_schema::names::Names;
use tokio_util::sync::CancellationToken;

/// The API key of the stack's first tenant.
pub const TENANT_A_KEY: &str = "test-key-tenant-a";
/// The API key of a second tenant, to prove runs are private.
pub const TENANT_B_KEY: &str = "test-key-tenant-b";
/// Tenant A's webhook signing secret (tenant B has none).
pub const TENANT_A_WEBHOOK_SECRET: &str = "whsec-test-tenant-a-0123456789";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn nats_url() -> String {
    env_or("CODERUN_TEST_NATS_URL", "nats://127.0.0.1:4222")
}

pub fn redis_url() -> String {
    env_or("CODERUN_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

/// A first program uid no other stack of any test process uses: stacks side by side are like
/// executors on one host, which must not share users (their process counts would mix).
pub fn program_uid_base() -> u32 {
    static STACKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let stack = STACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 64;
    let process = std::process::id() % 4096;
    200_000 + (process * 64 + stack) * 512
}

/// The agent binary to mount; a missing one is a set-up error with a clear message.
pub fn agent_path() -> PathBuf {
    let path = std::env::var_os("CODERUN_TEST_AGENT")
        .map(PathBuf::from)
        .expect("CODERUN_TEST_AGENT is not set: run the suite with scripts/test.sh");
    assert!(
        path.is_file(),
        "CODERUN_TEST_AGENT={} is not a file",
        path.display()
    );
    path
}

/// A running gateway + scheduler + executor under a prefix of its own.
pub struct TestStack {
    pub base_url: String,
    pub names: Names,
    /// The executor's pre-warmed containers and warm/cold counters.
    pub warm: std::sync::Arc<coderun_executor::warm::WarmStore>,
    /// The executor's idle fast-mode containers, kept for their tenants' next runs.
    pub reused: std::sync::Arc<coderun_executor::reuse::ReuseStore>,
    /// The scheduler's ops listener (`/metrics`, `/healthz`, `/readyz`).
    pub scheduler_ops_url: String,
    /// The executor's ops listener.
    pub executor_ops_url: String,
    redis_url: String,
    nats_url: String,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(StackOptions::default()).await
    }

    pub async fn start_with(options: StackOptions) -> Self {
        let prefix = format!(
            "test_{}",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        );
        let names = Names::new(prefix.clone()).expect("valid prefix");
        let shutdown = CancellationToken::new();
        let bus = coderun_bus::BusConfig {
            url: options.nats_url.clone(),
            prefix: prefix.clone(),
            stream_replicas: options.stream_replicas,
        };

        let mut executor_config: coderun_executor::config::Config =
            coderun_boot_defaults(coderun_executor::config::DEFAULTS);
        executor_config.bus = bus.clone();
        executor_config.store.url = options.redis_url.clone();
        executor_config.worker.slots = options.slots;
        executor_config.worker.max_deliver = options.max_deliver;
        executor_config.worker.languages = options.languages.clone();
        executor_config.worker.heartbeat_interval_ms = 500;
        // Within the 30 s a dropped stack waits for its services to drain.
        executor_config.worker.drain_timeout_secs = 20;
        executor_config.sandbox.agent_path = options.agent_path.clone();
        executor_config.sandbox.runtime = options.runtime.clone();
        executor_config.sandbox.isolation = options.isolation;
        executor_config.sandbox.warm_per_language = options.warm_per_language;
        executor_config.sandbox.warm_sizes = options.warm_sizes.clone();
        executor_config.sandbox.first_program_uid = program_uid_base();
        // Below the largest file a run may write, so filling the disk meets the tmpfs cap.
        executor_config.sandbox.workspace_mb = 32;
        executor_config.ops.port = 0;
        let executor = if options.in_process_executor {
            let executor = coderun_executor::Application::build(executor_config)
                .await
                .expect("executor starts");
            Some(executor)
        } else {
            None
        };
        let warm = executor
            .as_ref()
            .map_or_else(Default::default, |executor| executor.warm_store());
        let reused = executor
            .as_ref()
            .map_or_else(Default::default, |executor| executor.reuse_store());
        let executor_ops_url = executor.as_ref().map_or_else(String::new, |executor| {
            format!("http://127.0.0.1:{}", executor.ops_port())
        });

        let mut scheduler_config: coderun_scheduler::config::Config =
            coderun_boot_defaults(coderun_scheduler::config::DEFAULTS);
        scheduler_config.bus = bus.clone();
        scheduler_config.store.url = options.redis_url.clone();
        scheduler_config.webhooks.allow = options.callback_allow.clone();
        scheduler_config.webhooks.secrets =
            [("tenant-a".to_owned(), TENANT_A_WEBHOOK_SECRET.to_owned())].into();
        // Retries within a test's patience.
        scheduler_config.webhooks.first_retry_ms = 200;
        scheduler_config.webhooks.max_retry_ms = 1000;
        scheduler_config.webhooks.give_up_after_secs = 20;
        scheduler_config.webhooks.attempt_timeout_secs = 3;
        scheduler_config.ops.port = 0;
        scheduler_config.metrics.queue_poll_secs = 1;
        let scheduler = coderun_scheduler::Application::build(scheduler_config)
            .await
            .expect("scheduler starts");
        let scheduler_ops_url = format!("http://127.0.0.1:{}", scheduler.ops_port());

        let mut gateway_config: coderun_gateway::config::Config =
            coderun_boot_defaults(coderun_gateway::config::DEFAULTS);
        gateway_config.http.port = 0;
        gateway_config.http.workers = 2;
        gateway_config.bus = bus.clone();
        gateway_config.store.url = options.redis_url.clone();
        gateway_config.runs.callback_allow = options.callback_allow.clone();
        gateway_config.runs.max_backlog = options.max_backlog;
        let mut tenant_a = tenant("tenant-a", TENANT_A_KEY);
        if let Some((per_second, burst)) = options.tenant_a_rate {
            tenant_a.requests_per_second = Some(per_second);
            tenant_a.burst = Some(burst);
        }
        tenant_a.concurrent_runs = options.tenant_a_concurrent_runs;
        tenant_a.queued_runs = options.tenant_a_queued_runs;
        gateway_config.tenants = vec![tenant_a, tenant("tenant-b", TENANT_B_KEY)];
        let gateway = coderun_gateway::Application::build(gateway_config)
            .await
            .expect("gateway starts");
        let base_url = format!("http://127.0.0.1:{}", gateway.port());

        let mut tasks = vec![tokio::spawn(gateway.run(shutdown.clone()))];
        if options.in_process_scheduler {
            tasks.push(tokio::spawn(scheduler.run(shutdown.clone())));
        }
        let in_process_executor = executor.is_some();
        if let Some(executor) = executor {
            tasks.push(tokio::spawn(executor.run(shutdown.clone())));
        }
        let stack = Self {
            base_url,
            names,
            warm,
            reused,
            scheduler_ops_url,
            executor_ops_url,
            redis_url: options.redis_url,
            nats_url: options.nats_url,
            shutdown,
            tasks,
        };
        if in_process_executor {
            stack.wait_for_languages().await;
        }
        stack
    }

    /// A client with tenant A's key.
    pub fn client(&self) -> Client {
        self.client_with_key(TENANT_A_KEY)
    }

    pub fn client_with_key(&self, key: &str) -> Client {
        Client::new(&self.base_url, key).expect("valid client")
    }

    /// The Redis of the stack's services.
    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    /// The NATS of the stack's services.
    pub fn nats_url(&self) -> &str {
        &self.nats_url
    }

    /// Waits until the gateway has heard an executor (up to 10 s).
    pub async fn wait_for_languages(&self) {
        // As tenant B, which never has a request rate: tenant A's is the test's to spend.
        let client = self.client_with_key(TENANT_B_KEY);
        for _ in 0..100 {
            if let Ok(list) = client.languages().await {
                if !list.languages.is_empty() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the gateway never saw an executor heartbeat");
    }

    /// Ids of this stack's sandbox containers: every one, or only the running ones.
    pub fn containers(&self, including_stopped: bool) -> Vec<String> {
        cleanup::containers_of(self.names.prefix(), including_stopped)
    }

    /// Ids of the running containers of one run: a sandbox carries its run's id in its name
    /// from the moment the run takes it (shortly after the run is marked `running`).
    pub fn containers_of_run(&self, run_id: &str) -> Vec<String> {
        cleanup::docker_ps(&format!("name={run_id}"), false)
    }

    /// Ids of this stack's sandbox containers that are not waiting in its warm pool (nor,
    /// in the fast mode, idle for their tenant's next run).
    pub fn containers_outside_warm_pool(&self, including_stopped: bool) -> Vec<String> {
        let mut warm = self.warm.ids();
        warm.extend(self.reused.ids());
        self.containers(including_stopped)
            .into_iter()
            .filter(|id| !warm.contains(id))
            .collect()
    }

    /// Stops the services (draining runs in flight) and checks that no sandbox container of
    /// this stack is left (warm ones included); dropping the stack then removes its keys and
    /// streams.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        // Awaited in place: if one fails, `Drop` still finds the others to stop.
        for task in &mut self.tasks {
            let outcome = tokio::time::timeout(Duration::from_secs(90), task).await;
            match outcome {
                Ok(Ok(Ok(()))) => {}
                other => panic!("a service did not stop cleanly: {other:?}"),
            }
        }
        self.tasks.clear();
        let left = self.containers(true);
        assert!(
            left.is_empty(),
            "sandbox containers left after the executor stopped: {left:?}"
        );
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        // After `stop` there is nothing left to stop. After a panic the services are told to
        // stop and given time to drain (the executor removes its containers, warm ones too),
        // as long as the runtime still drives them; whatever is left is removed regardless.
        self.shutdown.cancel();
        let drain = || {
            let started = std::time::Instant::now();
            while !self.tasks.iter().all(|task| task.is_finished())
                && started.elapsed() < Duration::from_secs(30)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        // On a runtime worker, hand its queued tasks to the others while this thread waits.
        let on_worker = tokio::runtime::Handle::try_current().is_ok_and(|handle| {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        if on_worker && !self.tasks.is_empty() {
            tokio::task::block_in_place(drain);
        } else {
            drain();
        }
        for task in &self.tasks {
            task.abort();
        }
        cleanup::remove_everything(&self.names, &self.nats_url, &self.redis_url);
    }
}

fn tenant(id: &str, key: &str) -> coderun_gateway::config::TenantConfig {
    coderun_gateway::config::TenantConfig {
        id: id.to_owned(),
        key_sha256: vec![coderun_gateway::auth::hash_key(key)],
        max_limits: Default::default(),
        ..Default::default()
    }
}

/// A service's committed defaults, parsed as its config type.
pub(crate) fn coderun_boot_defaults<T: serde::de::DeserializeOwned>(defaults: &str) -> T {
    toml::from_str(defaults).expect("committed defaults fit the config type")
}
