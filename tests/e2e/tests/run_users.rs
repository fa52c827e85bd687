//! Concurrent runs on one executor are users of their own: one run holding every inotify
//! instance its user may have leaves another run's user its own (under every runtime, strict
//! mode; the fast mode's version is in fast_mode.rs).

use std::time::Duration;

use coderun_e2e::{exec_in, sandbox_modes, wait_until, StackOptions, TestStack};
use coderun_schema::run::StageLimitsRequest;

/// Holds every inotify instance its user may have, says so with `/tmp/holding`, and keeps
/// them until the test creates `/tmp/release`. (A directory, made without a descriptor: under
/// gVisor, which sets no per-user limit, the loop ends only when the descriptors run out.)
const HOG_INOTIFY: &str = "import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
held = 0
while libc.inotify_init() >= 0:
    held += 1
print(os.getuid(), held, flush=True)
os.mkdir('/tmp/holding')
while not os.path.exists('/tmp/release'):
    time.sleep(0.05)
";

/// Needs one inotify instance.
const NEED_INOTIFY: &str = "import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print(os.getuid(), 'inotify', 'ok' if libc.inotify_init() >= 0 else 'refused')
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_are_users_of_their_own() {
    for mode in sandbox_modes() {
        if mode.isolation == coderun_executor::config::Isolation::Fast {
            // The hog and the needer meet through the hog's container, which a fast run's
            // fresh /tmp hides: fast_mode.rs shows the same with two runs held side by side.
            eprintln!("{mode}: see fast_mode::concurrent_runs_of_two_tenants_have_per_user_kernel_counters_of_their_own");
            continue;
        }
        let stack = TestStack::start_with(StackOptions {
            languages: vec!["python".to_owned()],
            ..mode.options()
        })
        .await;
        let client = stack.client();
        let mut hog = coderun_e2e::source_request("python", HOG_INOTIFY);
        hog.limits.run = Some(StageLimitsRequest {
            wall_ms: coderun_e2e::max_limits("python").run.wall_ms.into(),
            ..Default::default()
        });
        let hog_id = client
            .create_run(&hog, &Default::default())
            .await
            .expect("hog")
            .body
            .id;
        // The needer starts once the hog holds everything (its sandbox has `/tmp/holding`),
        // and the hog lets go only once the needer is done.
        let hog_box = wait_until(Duration::from_secs(60), || async {
            let boxes = stack.containers_of_run(&hog_id);
            let sandbox = boxes.first()?;
            exec_in(sandbox, &["test", "-e", "/tmp/holding"]).then(|| sandbox.clone())
        })
        .await
        .unwrap_or_else(|| panic!("{mode}: the hog never held its instances"));
        let needed = client
            .run_and_wait(&coderun_e2e::source_request("python", NEED_INOTIFY))
            .await;
        // The hog may already have met its wall limit on a loaded machine: its line is printed
        // either way, and that is what is checked.
        let _ = exec_in(&hog_box, &["touch", "/tmp/release"]);
        let hogged = client
            .get_run(&hog_id, Some(60_000))
            .await
            .map(|reply| reply.body);
        let (hogged, needed) = (hogged.expect("hog"), needed.expect("needer"));
        let hog_line: Vec<&str> = hogged.stdout().split_whitespace().collect();
        let need_line: Vec<&str> = needed.stdout().split_whitespace().collect();
        assert!(
            hog_line.len() == 2 && hog_line[1].parse::<u32>().is_ok_and(|held| held >= 8),
            "{mode}: {hogged:#?}"
        );
        assert_eq!(
            need_line.get(1..),
            Some(&["inotify", "ok"][..]),
            "{mode}: {needed:#?}"
        );
        assert_ne!(
            hog_line[0], need_line[0],
            "{mode}: two runs at once, two users"
        );
        stack.stop().await;
    }
}
