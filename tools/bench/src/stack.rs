//! The bench's own coderun stack: the four release binaries started as child processes with
//! generated configuration files in a private temporary directory, their logs beside them;
//! waited for until the gateway lists the languages the bench needs and the prober has done
//! its first round; stopped by pid at the end, with everything of its prefix removed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bollard::Docker;

use crate::args::Args;
use crate::leftovers;
use crate::stack_config::StackSettings;

/// The languages the sequential phases need served.
pub const NEEDED_LANGUAGES: &[&str] = &["python", "c", "java"];
/// How long the stack may take to serve them (the executor warms every language first).
const START_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the prober's first round may take.
const PROBER_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a service has to stop on SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// One service process.
struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// A stack being started, running, or stopped.
pub struct Stack {
    pub settings: StackSettings,
    /// The private directory of the configuration files and logs.
    pub dir: PathBuf,
    binaries: PathBuf,
    executor_env: Vec<(String, String)>,
    services: Vec<Service>,
    pub docker: Docker,
}

impl Stack {
    /// Picks the prefix, key and ports and writes the configuration files; starts nothing.
    pub fn prepare(args: &Args) -> anyhow::Result<Self> {
        let agent = args.agent_path()?;
        let binaries = args.services_dir()?;
        for name in ["scheduler", "executor", "gateway", "prober"] {
            let binary = binaries.join(format!("coderun-{name}"));
            anyhow::ensure!(
                binary.is_file(),
                "{} is missing: build the release binaries (scripts/bench.sh does) or pass --bin-dir",
                binary.display()
            );
        }
        let docker = Docker::connect_with_local_defaults().context("failed to reach Docker")?;
        let settings = StackSettings::new(&args.nats_url, &args.redis_url, &agent, args.slots)
            .context("failed to find free ports")?;
        let dir = std::env::temp_dir().join(format!("coderun-{}", settings.prefix));
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        for (name, text) in [
            ("gateway", settings.gateway()),
            ("scheduler", settings.scheduler()),
            ("executor", settings.executor()),
            ("prober", settings.prober()),
        ] {
            std::fs::write(dir.join(format!("{name}.toml")), text)?;
        }
        Ok(Self {
            settings,
            dir,
            binaries,
            executor_env: args.executor_env.clone(),
            services: Vec::new(),
            docker,
        })
    }

    /// Starts the scheduler and waits until it is ready, then executor and gateway; waits
    /// until the needed languages are served, then starts the prober and waits for its first
    /// round.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        // The scheduler first, alone: services that create the same JetStream stream at the
        // same moment can collide (NATS answers one of them "subjects overlap").
        self.spawn("scheduler")?;
        let ready = format!(
            "http://127.0.0.1:{}/readyz",
            self.settings.ports.scheduler_ops
        );
        let deadline = Instant::now() + START_TIMEOUT;
        while !answers_ok(&ready).await {
            self.check_alive()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "the scheduler was not ready within {} s; logs in {}",
                START_TIMEOUT.as_secs(),
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for name in ["executor", "gateway"] {
            self.spawn(name)?;
        }
        let client = self.client()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.check_alive()?;
            if let Ok(list) = client.languages().await {
                let served: Vec<&str> = list.languages.iter().map(|l| l.id.as_str()).collect();
                if NEEDED_LANGUAGES
                    .iter()
                    .all(|needed| served.contains(needed))
                {
                    break;
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the stack did not serve {NEEDED_LANGUAGES:?} within {} s (are the images built? \
                 scripts/images.sh); logs in {}",
                START_TIMEOUT.as_secs(),
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.spawn("prober")?;
        let metrics = format!(
            "http://127.0.0.1:{}/metrics",
            self.settings.ports.prober_ops
        );
        let deadline = Instant::now() + PROBER_TIMEOUT;
        while prober_rounds(&metrics).await < 1 {
            self.check_alive()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "the prober finished no round within {} s; logs in {}",
                PROBER_TIMEOUT.as_secs(),
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }

    fn spawn(&mut self, name: &'static str) -> anyhow::Result<()> {
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(self.binaries.join(format!("coderun-{name}")));
        command
            .arg("--config")
            .arg(self.dir.join(format!("{name}.toml")))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        // Only the bench decides the services' configuration: no CODERUN_ variable of the
        // caller's (an up.sh setting, the bench's own agent variable) reaches them.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CODERUN_") {
                command.env_remove(key);
            }
        }
        // Plain text in the log files.
        command.env("NO_COLOR", "1");
        if name == "executor" {
            command.envs(self.executor_env.iter().map(|(key, value)| (key, value)));
        }
        let child = command
            .spawn()
            .with_context(|| format!("failed to start coderun-{name}"))?;
        self.services.push(Service { name, child, log });
        Ok(())
    }

    /// An error naming the first service that has exited, and its log.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for service in &mut self.services {
            if let Some(status) = service.child.try_wait()? {
                anyhow::bail!(
                    "coderun-{} exited ({status}); its log: {}",
                    service.name,
                    service.log.display()
                );
            }
        }
        Ok(())
    }

    /// A client of the stack's gateway as the bench's tenant.
    pub fn client(&self) -> anyhow::Result<coderun_client::Client> {
        Ok(coderun_client::Client::new(
            &self.settings.gateway_url(),
            &self.settings.api_key,
        )?)
    }

    /// Each service's name and pid.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.services
            .iter()
            .map(|service| (service.name.to_owned(), service.child.id()))
            .collect()
    }

    /// Stops the services (SIGTERM, then SIGKILL after a while), removes the prefix's
    /// containers, streams and keys, and the directory unless `keep_logs`. Problems are
    /// printed, not returned: this runs on every way out.
    pub async fn stop(&mut self, keep_logs: bool) -> bool {
        for service in &self.services {
            let _ = Command::new("kill")
                .args(["-TERM", &service.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for service in &mut self.services {
            while matches!(service.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if matches!(service.child.try_wait(), Ok(None)) {
                eprintln!("coderun-{} did not stop in time: killed", service.name);
                let _ = service.child.kill();
                let _ = service.child.wait();
            }
        }
        self.services.clear();
        let prefix = self.settings.prefix.clone();
        let mut removed = true;
        let left = leftovers::remove_containers(&self.docker, &prefix).await;
        if left > 0 {
            removed = false;
            eprintln!("containers labelled coderun.prefix={prefix} could not all be removed");
        }
        if let Err(error) = leftovers::remove_streams(&self.settings.nats_url, &prefix).await {
            removed = false;
            eprintln!("the NATS streams of {prefix} were left: {error:#}");
        }
        if let Err(error) = leftovers::remove_keys(&self.settings.redis_url, &prefix).await {
            removed = false;
            eprintln!("the Redis keys of {prefix}:* were left: {error:#}");
        }
        if keep_logs {
            eprintln!("the stack's configuration and logs: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        removed
    }
}

impl Drop for Stack {
    /// The last resort when `stop` was not reached (a panic): no service outlives the bench.
    fn drop(&mut self) {
        for service in &mut self.services {
            let _ = service.child.kill();
            let _ = service.child.wait();
        }
    }
}

/// A GET that gives up after two seconds: a listener that accepts and never answers must not
/// hold the start-up past its deadline.
async fn get(url: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
}

/// Whether `url` answers a success status.
async fn answers_ok(url: &str) -> bool {
    get(url)
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// `coderun_probe_rounds_total` from the prober's metrics; 0 when it cannot be read.
async fn prober_rounds(metrics_url: &str) -> u64 {
    let Ok(response) = get(metrics_url).await else {
        return 0;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("coderun_probe_rounds_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |rounds| rounds as u64)
}
