//! A redis-server of one test's own, which the test may crash and start again, or whose disk
//! it may fill: for showing what the services do while Redis is away or refuses writes. Data
//! survives a crash (append-only file, fsync on every write unless the test says otherwise),
//! as it would for a production Redis with persistence.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A redis-server process on a loopback port of its own.
pub struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    /// `appendfsync`: `always`, or `everysec` as the local stack runs it.
    appendfsync: &'static str,
    process: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port, its data in a folder of its own, and waits until it
    /// answers.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "coderun-redis-{}-{}",
            std::process::id(),
            ulid::Ulid::new()
        ));
        Self::start_in(dir, "always")
    }

    /// Starts one keeping its data in `dir` (created if missing, removed when dropped),
    /// syncing its append-only file as `appendfsync` says.
    pub fn start_in(dir: PathBuf, appendfsync: &'static str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        std::fs::create_dir_all(&dir).expect("a data folder");
        let mut redis = Self {
            port,
            dir,
            appendfsync,
            process: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL, as a crash would) and waits until it is gone.
    pub fn crash(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts it again on the same port with the same data, and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "redis-server is running");
        let process = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/test.sh installs it)");
        self.process = Some(process);
        let client = redis::Client::open(self.url()).expect("a valid URL");
        for _ in 0..100 {
            let answered = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
            if answered.is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the private redis-server on port {} never answered",
            self.port
        );
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
