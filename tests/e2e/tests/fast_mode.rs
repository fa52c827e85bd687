//! The fast isolation mode under runc: containers reused for one tenant, a fresh inner sandbox
//! per run, and nothing one run leaves visible to the next.

use coderun_e2e::{StackOptions, TestStack};
use coderun_executor::config::Isolation;
use coderun_schema::run::RunRequest;

fn python(source: &str) -> RunRequest {
    serde_json::from_value(serde_json::json!({"language": "python", "source": source}))
        .expect("a valid request")
}

async fn fast_stack() -> TestStack {
    TestStack::start_with(StackOptions {
        isolation: Isolation::Fast,
        languages: vec!["python".to_owned()],
        slots: 1,
        warm_per_language: 1,
        ..StackOptions::default()
    })
    .await
}

#[tokio::test]
async fn nothing_one_run_leaves_is_visible_to_the_next() {
    let stack = fast_stack().await;
    let client = stack.client();
    let leave = r#"
import subprocess
open('/tmp/left', 'w').write('x')
open('/dev/shm/left', 'w').write('x')
open('/workspace/left', 'w').write('x')
daemon = "import socket, time; s = socket.socket(socket.AF_UNIX); s.bind('\\0coderun-left'); s.listen(1); time.sleep(300)"
subprocess.Popen(['python3', '-c', daemon], start_new_session=True)
subprocess.Popen(['sleep', '300'], start_new_session=True)
import time; time.sleep(0.3)
print(open('/proc/1/stat').read().split()[21])
"#;
    let first = client
        .run_and_wait(&python(leave))
        .await
        .expect("first run");
    let agent_started = first
        .run
        .as_ref()
        .map(|run| run.stdout.clone())
        .unwrap_or_default();
    assert_eq!(
        first.verdict.map(|v| format!("{v:?}")),
        Some("Ok".to_owned()),
        "{first:?}"
    );
    let look = r#"
import os, socket
found = [p for p in ['/tmp/left', '/dev/shm/left', '/workspace/left'] if os.path.exists(p)]
procs = [p for p in os.listdir('/proc') if p.isdigit()]
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('\0coderun-left'); found.append('abstract socket')
except OSError:
    pass
sleepers = [p for p in procs if b'sleep' in open(f'/proc/{p}/cmdline','rb').read()]
print(found, sleepers)
print(open('/proc/1/stat').read().split()[21])
"#;
    for _ in 0..3 {
        let next = client.run_and_wait(&python(look)).await.expect("next run");
        let stdout = next
            .run
            .as_ref()
            .map(|run| run.stdout.clone())
            .unwrap_or_default();
        // The same container (its agent started at the same time), and nothing left in it.
        assert_eq!(stdout, format!("[] []\n{agent_started}"), "{next:?}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_program_in_an_inner_sandbox_cannot_make_namespaces_or_mount() {
    let stack = fast_stack().await;
    let client = stack.client();
    let probe = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
user = libc.unshare(0x10000000)
mount = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
print(user, mount, os.getuid() != 0, os.getpid() < 10)
# When the container's first process (the agent) started: the same for every run that reused
# the container.
print(open('/proc/1/stat').read().split()[21])
"#;
    let mut agents_started = Vec::new();
    for _ in 0..3 {
        let run = client.run_and_wait(&python(probe)).await.expect("run");
        let stdout = run
            .run
            .as_ref()
            .map(|run| run.stdout.clone())
            .unwrap_or_default();
        let (confined, agent) = stdout.split_once('\n').expect("two lines");
        assert_eq!(confined, "-1 -1 True True", "{run:?}");
        agents_started.push(agent.to_owned());
    }
    agents_started.dedup();
    assert_eq!(
        agents_started.len(),
        1,
        "one container served every run: {agents_started:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_runs_of_two_tenants_have_per_user_kernel_counters_of_their_own() {
    let stack = TestStack::start_with(StackOptions {
        isolation: Isolation::Fast,
        languages: vec!["python".to_owned()],
        slots: 2,
        ..StackOptions::default()
    })
    .await;
    // Each run holds 100 inotify instances (the kernel allows 128 per user by default) for a
    // while: charged to one user for both, the second run would get fewer.
    let hog = r#"
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
started = time.time()
held = [fd for fd in (libc.inotify_init() for _ in range(100)) if fd >= 0]
time.sleep(2)
print(len(held), os.getuid(), started, time.time())
"#;
    let (a, b) = (
        stack.client(),
        stack.client_with_key(coderun_e2e::TENANT_B_KEY),
    );
    let (request_a, request_b) = (python(hog), python(hog));
    let (first, second) = tokio::join!(a.run_and_wait(&request_a), b.run_and_wait(&request_b));
    let mut lines = Vec::new();
    for run in [
        first.expect("tenant A's run"),
        second.expect("tenant B's run"),
    ] {
        let stdout = run
            .run
            .as_ref()
            .map(|run| run.stdout.clone())
            .unwrap_or_default();
        let fields: Vec<String> = stdout.split_whitespace().map(str::to_owned).collect();
        assert_eq!(fields.first().map(String::as_str), Some("100"), "{run:?}");
        assert_eq!(fields.len(), 4, "{run:?}");
        lines.push(fields);
    }
    let times = |fields: &[String]| -> (f64, f64) {
        (
            fields[2].parse().expect("a start time"),
            fields[3].parse().expect("an end time"),
        )
    };
    let ((start_a, end_a), (start_b, end_b)) = (times(&lines[0]), times(&lines[1]));
    assert!(
        start_a < end_b && start_b < end_a,
        "the two runs held their instances at the same time: {lines:?}"
    );
    assert_ne!(lines[0][1], lines[1][1], "two runs at once, two users");
    stack.stop().await;
}
