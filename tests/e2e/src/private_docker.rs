//! A Docker Engine of one test's own, which the test may restart: for showing what the
//! executor does when its engine goes away and comes back, without touching the engine every
//! other test uses. It listens on a socket in a folder of its own, keeps its data there, and
//! gets the language images it needs from the machine's engine (`docker save | docker load`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A dockerd process with its own socket, data and state.
pub struct PrivateDocker {
    dir: PathBuf,
    process: Option<Child>,
}

impl PrivateDocker {
    /// Starts one and waits until it answers.
    pub fn start() -> Self {
        // Short: the socket's path must fit a unix socket address.
        let dir = PathBuf::from(format!("/tmp/crd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for the engine");
        std::fs::write(dir.join("daemon.json"), "{}").expect("its configuration");
        let mut docker = Self { dir, process: None };
        docker.start_process();
        docker
    }

    /// `DOCKER_HOST` for a client of this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// A `docker` command talking to this engine.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.args(["-H", &self.host()]);
        command
    }

    /// Copies `image` from the machine's engine unless this one has it.
    pub fn load_image(&self, image: &str) {
        let has = self
            .docker()
            .args(["image", "inspect", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if has {
            return;
        }
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save starts");
        let loaded = self
            .docker()
            .arg("load")
            .stdin(save.stdout.take().expect("its output"))
            .stdout(Stdio::null())
            .status()
            .expect("docker load runs");
        assert!(
            save.wait().is_ok_and(|status| status.success()),
            "docker save {image}"
        );
        assert!(loaded.success(), "docker load of {image}");
    }

    /// Stops the engine as `systemctl restart docker` would (SIGTERM: it stops its
    /// containers, then exits), then starts it again on the same data; waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.start_process();
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &process.id().to_string()])
                .status();
            let _ = process.wait();
        }
    }

    fn start_process(&mut self) {
        assert!(self.process.is_none(), "dockerd is running");
        let log = std::fs::File::create(self.dir.join("dockerd.log")).expect("a log file");
        let process = Command::new("dockerd")
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("dockerd.pid"))
            .args(["-H", &self.host()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd starts (scripts/test.sh installs it)");
        self.process = Some(process);
        for _ in 0..300 {
            let answered = self
                .docker()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if answered {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the private dockerd never answered: {}", self.dir.display());
    }
}

impl Drop for PrivateDocker {
    fn drop(&mut self) {
        if self.process.is_some() {
            let ids = self
                .docker()
                .args(["ps", "-aq"])
                .output()
                .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
                .unwrap_or_default();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = self.docker().args(["rm", "-f"]).args(&ids).output();
            }
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
