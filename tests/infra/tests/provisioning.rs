//! The executor's provisioning script, shared by the AMI recipe and the Lima VM, renders a
//! whole executor host under another root: what it can do on a machine that is not one.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use coderun_infra_tests::repository;

fn provision(root: &std::path::Path, cloud: &str) -> std::process::Output {
    let artifacts = root.join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts");
    for binary in ["coderun-executor", "coderun-agent"] {
        std::fs::write(artifacts.join(binary), "#!/bin/sh\n").expect("a stand-in binary");
    }
    provision_from(&artifacts, root, cloud)
}

/// Runs provision.sh for `cloud` with `artifacts`, rendering the host under `root`/host.
fn provision_from(
    artifacts: &std::path::Path,
    root: &std::path::Path,
    cloud: &str,
) -> std::process::Output {
    Command::new("bash")
        .arg(repository().join("deploy/executor/provision.sh"))
        .args(["--cloud", cloud, "--artifacts"])
        .arg(artifacts)
        .arg("--root")
        .arg(root.join("host"))
        .output()
        .expect("failed to run provision.sh")
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_script_renders_an_aws_executor_host_and_a_lima_one_alike() {
    for cloud in ["aws", "lima"] {
        let root =
            std::env::temp_dir().join(format!("coderun-provision-{cloud}-{}", std::process::id()));
        let output = provision(&root, cloud);
        assert!(
            output.status.success(),
            "{cloud}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let host = root.join("host");
        assert_eq!(mode(&host.join("usr/local/bin/coderun-executor")), 0o755);
        assert_eq!(
            mode(&host.join("usr/local/lib/coderun/coderun-agent")),
            0o555,
            "the agent is mounted into sandboxes: nobody may write it"
        );
        let daemon =
            std::fs::read_to_string(host.join("etc/docker/daemon.json")).expect("daemon.json");
        let daemon: serde_json::Value = serde_json::from_str(&daemon).expect("daemon.json is JSON");
        assert_eq!(daemon["runtimes"]["runsc"]["path"], "/usr/bin/runsc");
        let runsc_arguments = daemon["runtimes"]["runsc"]["runtimeArgs"].to_string();
        assert!(
            runsc_arguments.contains("\"--network=none\""),
            "gVisor with a network stack: {runsc_arguments}"
        );
        assert_eq!(daemon["log-driver"], "none");
        let unit =
            std::fs::read_to_string(host.join("etc/systemd/system/coderun-executor.service"))
                .expect("the executor's unit");
        assert!(
            unit.contains("KillSignal=SIGTERM")
                && unit.contains("EnvironmentFile=/etc/coderun/executor.env")
        );
        let watcher = host.join("etc/systemd/system/coderun-drain-watch.service");
        assert_eq!(
            watcher.exists(),
            cloud == "aws",
            "{cloud}: the drain watcher is AWS's alone"
        );
        // On AWS the units log to files the CloudWatch agent ships (its configuration, with the
        // environment's log group, comes from the instance's user data).
        let log_file = host.join("etc/systemd/system/coderun-executor.service.d/log-file.conf");
        if cloud == "aws" {
            let drop_in = std::fs::read_to_string(&log_file).expect("the executor's log drop-in");
            assert!(drop_in.contains("StandardOutput=append:/var/log/coderun/executor.log"));
            assert!(
                host.join("etc/logrotate.d/coderun").exists(),
                "logs never rotated"
            );
        } else {
            assert!(!log_file.exists(), "{cloud}: the executor logs to journald");
        }
        std::fs::remove_dir_all(&root).ok();
    }
}

/// `scripts/release.sh` lays the executor's files out as in its image (what the Lima VM is
/// pointed at): the script installs them from there too.
#[test]
fn the_release_scripts_layout_is_provisioned_like_the_flat_artifacts() {
    let root = std::env::temp_dir().join(format!("coderun-provision-tree-{}", std::process::id()));
    let artifacts = root.join("artifacts");
    for (path, content) in [
        (
            "usr/local/bin/coderun-service",
            "#!/bin/sh\necho executor\n",
        ),
        (
            "usr/local/lib/coderun/coderun-agent",
            "#!/bin/sh\necho agent\n",
        ),
    ] {
        let file = artifacts.join(path);
        std::fs::create_dir_all(file.parent().expect("a folder")).expect("folders");
        std::fs::write(file, content).expect("a stand-in binary");
    }
    let output = provision_from(&artifacts, &root, "lima");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let installed = |path: &str| std::fs::read_to_string(root.join("host").join(path)).ok();
    assert_eq!(
        installed("usr/local/bin/coderun-executor").as_deref(),
        Some("#!/bin/sh\necho executor\n")
    );
    assert_eq!(
        installed("usr/local/lib/coderun/coderun-agent").as_deref(),
        Some("#!/bin/sh\necho agent\n")
    );
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn bad_arguments_are_refused_with_exit_code_2() {
    let output = Command::new("bash")
        .arg(repository().join("deploy/executor/provision.sh"))
        .args(["--cloud", "gcp", "--artifacts", "/"])
        .output()
        .expect("failed to run provision.sh");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--cloud"));
}

#[test]
fn the_lima_vm_and_the_ami_recipe_run_the_same_script() {
    let lima =
        std::fs::read_to_string(repository().join("lima/executor.yaml")).expect("lima template");
    assert!(lima.contains("deploy/executor/provision.sh") && lima.contains("--cloud lima"));
    let image =
        std::fs::read_to_string(repository().join("terraform/modules/executor_fleet/image.tf"))
            .expect("the image recipe");
    assert!(image.contains("provision.sh --artifacts") && image.contains("--cloud aws"));
    let user_data = std::fs::read_to_string(
        repository().join("terraform/modules/executor_fleet/executor.env.tftpl"),
    )
    .expect("the executor's user data");
    for shipped in [
        "/var/log/coderun/executor.log",
        "/var/log/coderun/drain-watch.log",
    ] {
        assert!(
            user_data.contains(shipped),
            "the CloudWatch agent does not ship {shipped}"
        );
    }
}
