//! The production NATS configuration (`deploy/nats/production.conf`) keeps what the durability
//! of runs depends on, and nats-server runs it: started here on loopback ports and a folder of
//! the test's own, it dials the routes its environment names (a variable inside a string would
//! never be expanded, and `nats-server -t` alone would not say so). The NATS here is Debian's
//! 2.9: lines for 2.10 and later are marked `# 2.10+`, checked to be there, and left out of
//! what the server is given.

use std::process::{Command, Stdio};
use std::time::Duration;

use coderun_e2e::observe::free_port;

const CONFIG: &str = include_str!("../../../deploy/nats/production.conf");

#[test]
fn the_production_nats_configuration_is_durable_and_forms_its_cluster() {
    let newer_only: Vec<&str> = CONFIG
        .lines()
        .filter(|line| line.contains("# 2.10+"))
        .map(str::trim)
        .collect();
    assert_eq!(
        newer_only,
        ["sync_interval: always # 2.10+"],
        "every write synced before its acknowledgement"
    );
    assert!(
        CONFIG.contains("store_dir: /data/jetstream"),
        "JetStream on file storage"
    );

    let dir = std::env::temp_dir().join(format!("coderun-nats-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let (client, http, route) = (free_port(), free_port(), free_port());
    let (second, third) = (free_port(), free_port());
    let runnable = CONFIG
        .lines()
        .filter(|line| !line.contains("# 2.10+"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("0.0.0.0:4222", &format!("127.0.0.1:{client}"))
        .replace("0.0.0.0:8222", &format!("127.0.0.1:{http}"))
        .replace("0.0.0.0:6222", &format!("127.0.0.1:{route}"))
        .replace(
            "/data/jetstream",
            &dir.join("jetstream").display().to_string(),
        );
    let path = dir.join("production.conf");
    std::fs::write(&path, runnable).expect("the file");
    let log = dir.join("nats.log");
    let routes = [route, second, third].map(|port| format!("nats-route://127.0.0.1:{port}"));
    let mut server = Command::new("nats-server")
        .arg("-c")
        .arg(&path)
        .arg("-l")
        .arg(&log)
        .env("SERVER_NAME", "nats-1")
        .envs(["ROUTE_1", "ROUTE_2", "ROUTE_3"].into_iter().zip(&routes))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nats-server runs (scripts/test.sh installs it)");
    let dialled = format!("127.0.0.1:{second}");
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&dialled) || server.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = server.try_wait().ok().flatten();
    let _ = server.kill();
    let output = server.wait_with_output().expect("its output");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        exited,
        None,
        "nats-server refused the configuration: {}{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains(&dialled) && !text.contains("no such host"),
        "nats-server did not dial the routes it was given:\n{text}"
    );
}
