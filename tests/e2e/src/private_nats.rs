//! A nats-server with JetStream of one test's own, which the test may stop and start again:
//! for showing what the services do while NATS is away. Streams live in files of its own
//! folder, so they outlive a restart.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A nats-server process on a loopback port of its own.
pub struct PrivateNats {
    port: u16,
    dir: PathBuf,
    process: Option<Child>,
}

impl PrivateNats {
    /// Starts one on a free port and waits until it takes connections.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("coderun-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data folder");
        let mut nats = Self {
            port,
            dir,
            process: None,
        };
        nats.start_again();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops it as an operator would (SIGTERM) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &process.id().to_string()])
                .status();
            let _ = process.wait();
        }
    }

    /// Starts it again on the same port with the same streams, and waits until it takes
    /// connections.
    pub fn start_again(&mut self) {
        assert!(self.process.is_none(), "nats-server is running");
        let process = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (scripts/test.sh installs it)");
        self.process = Some(process);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the private nats-server on port {} never answered",
            self.port
        );
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
