//! The disk under Redis's append-only file fills up under load, then is freed: while Redis
//! cannot write, it refuses writes (`MISCONF`), and the gateway answers `503` with
//! `Retry-After` (never a 500); results the executor could not write are retried; once there
//! is room again everything resumes by itself, and every accepted run ends `ok`, started once.
//!
//! Redis keeps its files on a small tmpfs of the test's own (mounted here, as root) and syncs
//! every second, as the local stack runs it: with `appendfsync always`, Redis stops at the
//! first failed write instead (its documented behaviour), which a supervisor would restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use coderun_e2e::private_redis::PrivateRedis;
use coderun_e2e::steady_load::SteadyLoad;
use coderun_e2e::{StackOptions, TestStack};

/// How long the disk stays full.
const FULL_FOR: Duration = Duration::from_secs(4);

/// A tmpfs of `size` mounted on a new folder, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("coderun-disk-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("a mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            mounted.success(),
            "could not mount a tmpfs (this test needs root, as scripts/test.sh runs it)"
        );
        Self { dir }
    }

    /// Fills what is left with one file; its path.
    fn fill(&self) -> PathBuf {
        let filler = self.dir.join("filler");
        // dd stops with "No space left on device": the disk is full, as wanted.
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", filler.display()))
            .stderr(std::process::Stdio::null())
            .status();
        filler
    }

    fn free(filler: &Path) {
        std::fs::remove_file(filler).expect("the filler is removed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_redis_is_a_503_and_everything_resumes_once_freed() {
    let disk = SmallDisk::mount("32m");
    let redis = PrivateRedis::start_in(disk.dir.join("redis"), "everysec");
    let stack = TestStack::start_with(StackOptions {
        languages: vec!["bash".to_owned()],
        redis_url: redis.url(),
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let load = SteadyLoad::start(&client, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let filler = disk.fill();
    tokio::time::sleep(FULL_FOR / 2).await;
    let while_full = load.accepted_so_far();
    let ready_while_full = client
        .ready()
        .await
        .map(|health| health.status)
        .map_err(|error| error.status());
    tokio::time::sleep(FULL_FOR / 2).await;
    let accepted_while_full = load.accepted_so_far() - while_full;
    SmallDisk::free(&filler);
    let accepting_again = load.accepts_more(10, Duration::from_secs(30)).await;
    let submitted = load.stop().await;
    let settled = submitted.settle(&client, Duration::from_secs(90)).await;
    println!(
        "Redis's disk full for {:?} under load: {settled}; refused {} x 503 ({} with Retry-After), \
         other {:?}; accepted in the second half of the outage: {accepted_while_full}; \
         gateway readiness while full: {ready_while_full:?}; accepting again: {accepting_again}",
        FULL_FOR,
        submitted.unavailable,
        submitted.unavailable_with_retry_after,
        submitted.other
    );
    assert!(
        submitted.unavailable > 0,
        "nothing was refused while the disk was full"
    );
    submitted.assert_refusals_say_when();
    assert!(
        accepting_again,
        "runs were not accepted again once the disk had room"
    );
    settled.assert_every_run_ok_once();
    stack.stop().await;
    drop(redis);
}
