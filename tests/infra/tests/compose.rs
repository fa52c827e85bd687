//! compose.yaml, as Debian's docker-compose reads it (its schema check, the variables a user
//! must set, the offline override): the stack the local path promises.

use std::process::Command;

use coderun_infra_tests::{python_tools, repository};
use serde_json::Value;

const REQUIRED: [(&str, &str); 4] = [
    ("CODERUN_API_KEY", "cr_test"),
    ("CODERUN_API_KEY_SHA256", "0123abcd"),
    ("CODERUN_WEBHOOK_SECRET", "whsec_test"),
    ("CODERUN_AGENT", "/usr/local/lib/coderun/coderun-agent"),
];

/// `docker-compose config` of the files, with `variables` set; (success, stdout, stderr).
fn config(files: &[&str], variables: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new("docker-compose");
    for file in files {
        command.args(["-f", file]);
    }
    command.arg("config").current_dir(repository());
    for (name, _) in REQUIRED {
        command.env_remove(name);
    }
    command.envs(variables.iter().copied());
    let output = command.output().expect("failed to run docker-compose");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The resolved configuration as JSON (PyYAML from the tools' environment reads it).
fn resolved(files: &[&str]) -> Value {
    let (ok, yaml, errors) = config(files, &REQUIRED);
    assert!(ok, "docker-compose refused {files:?}: {errors}");
    let mut python = Command::new(python_tools().join("bin/python"))
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write;
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write");
    let output = python.wait_with_output().expect("python ran");
    serde_json::from_slice(&output.stdout).expect("the configuration as JSON")
}

#[test]
fn the_stack_is_valid_and_says_which_variable_is_missing() {
    let (ok, _, errors) = config(&["compose.yaml"], &REQUIRED[1..]);
    assert!(!ok, "a stack without the prober's key must not start");
    assert!(errors.contains("CODERUN_API_KEY"), "{errors}");
    resolved(&["compose.yaml"]);
    resolved(&["compose.yaml", "compose.offline.yaml"]);
}

#[test]
fn every_part_is_there_health_checked_and_started_in_order() {
    let stack = resolved(&["compose.yaml"]);
    let services = stack["services"].as_object().expect("services");
    for name in [
        "nats",
        "redis",
        "gateway",
        "scheduler",
        "executor",
        "prober",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains_key(name), "no {name} in compose.yaml");
    }
    for name in [
        "nats",
        "redis",
        "gateway",
        "scheduler",
        "executor",
        "prober",
        "prometheus",
    ] {
        assert!(
            services[name]["healthcheck"]["test"].is_array(),
            "{name} has no health check"
        );
    }
    for name in ["gateway", "scheduler", "executor"] {
        for dependency in ["nats", "redis"] {
            assert_eq!(
                services[name]["depends_on"][dependency]["condition"], "service_healthy",
                "{name} starts after {dependency} is healthy"
            );
        }
    }
    for name in ["gateway", "scheduler", "prober"] {
        assert_eq!(services[name]["read_only"], true, "{name}");
        assert!(
            services[name].get("user").is_none(),
            "{name} keeps its image's non-root user"
        );
    }
}

#[test]
fn nats_and_redis_keep_their_data_and_nats_syncs_every_write() {
    let stack = resolved(&["compose.yaml"]);
    let services = &stack["services"];
    let mounts = |name: &str| services[name]["volumes"].to_string();
    assert!(mounts("nats").contains("nats-data"), "{}", mounts("nats"));
    assert!(mounts("redis").contains("redis-data"));
    let redis = services["redis"]["command"].to_string();
    assert!(redis.contains("appendonly"), "{redis}");
    // Without a password, Redis's protected mode refuses every client not on its loopback:
    // the services, in containers of their own, could not connect.
    assert!(redis.contains("\"--protected-mode\",\"no\""), "{redis}");
    for file in ["nats.conf", "nats-2.9.conf"] {
        let nats =
            std::fs::read_to_string(repository().join("deploy/compose").join(file)).expect("conf");
        assert!(nats.contains("store_dir: /data"), "{file}");
        // A job carries its sources and stdins: NATS's 1 MiB default would refuse large runs.
        assert!(nats.contains("max_payload: 33554432"), "{file}");
    }
    let nats =
        std::fs::read_to_string(repository().join("deploy/compose/nats.conf")).expect("conf");
    assert!(nats.contains("sync_interval: always"));
    let executor = mounts("executor");
    assert!(executor.contains("/var/run/docker.sock"), "{executor}");
    let grafana = mounts("grafana");
    assert!(
        grafana.contains("monitoring/grafana/provisioning"),
        "{grafana}"
    );
    assert!(mounts("prometheus").contains("monitoring/prometheus/rules"));
}
