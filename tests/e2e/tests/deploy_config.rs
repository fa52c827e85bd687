//! The production NATS configuration (`deploy/nats/production.conf`) is one the server accepts,
//! and keeps what the durability of runs depends on. The NATS here is Debian's 2.9: lines for
//! 2.10 and later are marked `# 2.10+`, checked to be there, and left out of the server's own
//! check.

use std::process::Command;

const CONFIG: &str = include_str!("../../../deploy/nats/production.conf");

#[test]
fn the_production_nats_configuration_is_valid_and_durable() {
    let newer_only: Vec<&str> = CONFIG
        .lines()
        .filter(|line| line.contains("# 2.10+"))
        .collect();
    assert_eq!(
        newer_only
            .iter()
            .map(|line| line.trim())
            .collect::<Vec<_>>(),
        ["sync_interval: always # 2.10+"],
        "every write synced before its acknowledgement"
    );
    let routes = CONFIG
        .lines()
        .filter(|line| line.trim().starts_with("nats-route://"))
        .count();
    assert_eq!(routes, 3, "three servers");
    assert!(CONFIG.contains("store_dir:"), "JetStream on file storage");

    let older = CONFIG
        .lines()
        .filter(|line| !line.contains("# 2.10+"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = std::env::temp_dir().join(format!("coderun-nats-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let path = dir.join("production.conf");
    std::fs::write(&path, older).expect("the file");
    let checked = Command::new("nats-server")
        .arg("-t")
        .arg("-c")
        .arg(&path)
        .envs([
            ("SERVER_NAME", "nats-1"),
            ("NATS_1", "nats-1.internal"),
            ("NATS_2", "nats-2.internal"),
            ("NATS_3", "nats-3.internal"),
        ])
        .output()
        .expect("nats-server runs (scripts/test.sh installs it)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        checked.status.success(),
        "nats-server refuses it: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
}
