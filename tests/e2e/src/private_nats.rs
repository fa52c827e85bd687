//! A nats-server with JetStream of one test's own, which the test may stop and start again:
//! for showing what the services do while NATS is away. Streams live in files of its own
//! folder, so they outlive a restart. [`PrivateNats::cluster`] starts three or more as one
//! JetStream cluster on loopback, for replicated streams.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A nats-server process on a loopback port of its own.
pub struct PrivateNats {
    port: u16,
    dir: PathBuf,
    /// The cluster arguments of a cluster's node (none for a server on its own).
    cluster: Vec<String>,
    process: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl PrivateNats {
    /// Starts one on a free port and waits until it takes connections.
    pub fn start() -> Self {
        Self::start_with(free_port(), Vec::new())
    }

    /// Starts `size` servers as one JetStream cluster on loopback; the first is the one to
    /// connect to. Returns once its JetStream has a leader for replicated streams.
    pub async fn cluster(size: usize) -> Vec<Self> {
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let routes = ports
            .iter()
            .map(|(_, route)| format!("nats://127.0.0.1:{route}"))
            .collect::<Vec<_>>()
            .join(",");
        let name = format!("coderun-test-{}-{}", std::process::id(), ports[0].0);
        let nodes: Vec<Self> = ports
            .iter()
            .enumerate()
            .map(|(index, (port, route))| {
                let arguments = [
                    "-n".to_owned(),
                    format!("node{index}"),
                    "--cluster_name".to_owned(),
                    name.clone(),
                    "--cluster".to_owned(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".to_owned(),
                    routes.clone(),
                ];
                Self::start_with(*port, arguments.to_vec())
            })
            .collect();
        wait_for_replicated_streams(&nodes[0].url(), size).await;
        nodes
    }

    fn start_with(port: u16, cluster: Vec<String>) -> Self {
        let dir = std::env::temp_dir().join(format!("coderun-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data folder");
        let mut nats = Self {
            port,
            dir,
            cluster,
            process: None,
        };
        nats.start_again();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL, as a crash would) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
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
            .args(&self.cluster)
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

/// Waits (up to 30 s) until a stream of `replicas` copies can be made through `url`: the
/// cluster has formed and elected its JetStream leader.
async fn wait_for_replicated_streams(url: &str, replicas: usize) {
    let client = async_nats::connect(url)
        .await
        .expect("the cluster takes connections");
    let jetstream = async_nats::jetstream::new(client);
    let config = async_nats::jetstream::stream::Config {
        name: "CLUSTER_READY".to_owned(),
        subjects: vec!["cluster.ready".to_owned()],
        num_replicas: replicas,
        ..Default::default()
    };
    for _ in 0..150 {
        if jetstream.get_or_create_stream(config.clone()).await.is_ok() {
            let _ = jetstream.delete_stream("CLUSTER_READY").await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the NATS cluster at {url} never took a stream of {replicas} replicas");
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
