//! The gateway and the prober as processes of their own, for the tests that stop one with
//! SIGTERM while it works: the binaries of the same build, pointed at a stack. A process is
//! killed when its handle is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::processes::{exited_within, service_binary};
use crate::TestStack;

/// A second gateway as a process of its own (as a second replica behind a load balancer),
/// on the stack's NATS, Redis and prefix, knowing tenant A's key.
pub struct GatewayProcess {
    pub base_url: String,
    child: Child,
    config: PathBuf,
}

impl GatewayProcess {
    /// Starts it on a free port and waits until it is ready.
    pub async fn start(stack: &TestStack) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let config = std::env::temp_dir().join(format!("coderun-gateway-{port}.toml"));
        let key_hash = coderun_gateway::auth::hash_key(crate::TENANT_A_KEY);
        std::fs::write(
            &config,
            format!(
                "[http]\nport = {port}\nworkers = 2\n\n[[tenants]]\nid = \"tenant-a\"\nkey_sha256 = [\"{key_hash}\"]\n"
            ),
        )
        .expect("the gateway's configuration");
        let child = Command::new(service_binary("coderun-gateway"))
            .arg("--config")
            .arg(&config)
            .env("CODERUN_GATEWAY__BUS__URL", stack.nats_url())
            .env("CODERUN_GATEWAY__BUS__PREFIX", stack.names.prefix())
            .env("CODERUN_GATEWAY__STORE__URL", stack.redis_url())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the gateway binary starts");
        let gateway = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            child,
            config,
        };
        let client = gateway.client();
        let ready = crate::wait_until(Duration::from_secs(20), || async {
            let languages = client.languages().await.ok()?;
            (!languages.languages.is_empty()).then_some(())
        })
        .await;
        assert!(ready.is_some(), "the gateway process never saw an executor");
        gateway
    }

    /// A client of this gateway with tenant A's key.
    pub fn client(&self) -> coderun_client::Client {
        coderun_client::Client::new(&self.base_url, crate::TENANT_A_KEY).expect("a client")
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits up to `within` for it to exit: its exit status, `None` if still running.
    pub async fn exited_within(&mut self, within: Duration) -> Option<ExitStatus> {
        exited_within(&mut self.child, within).await
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A prober process checking a stack's gateway as tenant A every second, its log (info and
/// up) kept in a file for the test to read.
pub struct ProberProcess {
    child: Child,
    pub log: PathBuf,
}

impl ProberProcess {
    /// Starts it checking `languages`; a round in progress at SIGTERM gets `grace_secs`.
    pub fn start(stack: &TestStack, languages: &[&str], grace_secs: u64) -> Self {
        let log = std::env::temp_dir().join(format!(
            "coderun-prober-{}-{}.log",
            std::process::id(),
            stack.names.prefix()
        ));
        let child = Command::new(service_binary("coderun-prober"))
            .env("CODERUN_PROBER__TARGET__BASE_URL", &stack.base_url)
            .env("CODERUN_PROBER__TARGET__API_KEY", crate::TENANT_A_KEY)
            .env("CODERUN_PROBER__PROBE__INTERVAL_SECS", "1")
            .env("CODERUN_PROBER__PROBE__LANGUAGES", languages.join(","))
            .env(
                "CODERUN_PROBER__PROBE__SHUTDOWN_GRACE_SECS",
                grace_secs.to_string(),
            )
            .env("CODERUN_PROBER__OPS__PORT", "0")
            .env("CODERUN_PROBER__WEBHOOK__PORT", "0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the prober's log"))
            .spawn()
            .expect("the prober binary starts");
        Self { child, log }
    }

    /// SIGTERM, then waits up to `within` for it to exit: its exit status, `None` if it is
    /// still running.
    pub async fn terminate_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        exited_within(&mut self.child, within).await
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ProberProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
