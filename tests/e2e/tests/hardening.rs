//! The sandbox's hardening, each point shown with a real run under every runtime (runc, and
//! runsc unless `CODERUN_TEST_RUNSC=0`): what a program holds (no capabilities, seccomp,
//! no-new-privs, a neutral host name), what one test can leave for the next (nothing), how a C
//! fork bomb and an output flood end, the images' set-id programs, and how
//! containers are named and logged.

use std::time::Duration;

use coderun_e2e::{sandbox_modes, SandboxMode, StackOptions, TestStack};
use coderun_schema::catalog::Catalog;
use coderun_schema::run::{LimitsRequest, Run, RunRequest, StageLimitsRequest, TestCase, Verdict};

use coderun_e2e::source_request as request;

fn with_tests(mut request: RunRequest, stdins: &[&str]) -> RunRequest {
    request.tests = stdins
        .iter()
        .map(|stdin| TestCase {
            stdin: (*stdin).to_owned(),
            expected_stdout: None,
        })
        .collect();
    request
}

async fn stack_for(mode: &SandboxMode, languages: &[&str]) -> TestStack {
    TestStack::start_with(StackOptions {
        languages: languages.iter().map(|id| (*id).to_owned()).collect(),
        ..mode.options()
    })
    .await
}

/// What a program holds, asked of the kernel (prctl works the same under every runtime; gVisor's
/// /proc/self/status has no NoNewPrivs or CapAmb line), three system calls our seccomp
/// profile refuses though Docker's default allows them, and two it must allow under every
/// runtime (gVisor knows `pselect6` by another name).
const STATUS_PROGRAM: &str = "import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
print('seccomp mode', libc.prctl(21, 0, 0, 0, 0))
print('no_new_privs', libc.prctl(39, 0, 0, 0, 0))
print('ambient', sum(libc.prctl(47, 1, cap, 0, 0) == 1 for cap in range(41)))
fields = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines() if ':' in line)
for name in ['CapInh', 'CapPrm', 'CapEff', 'CapBnd']:
    print(name, fields.get(name, '?').strip())
def outcome(result):
    return 'allowed' if result >= 0 else errno.errorcode.get(ctypes.get_errno())
for name, number, args in [('io_uring_setup', 425, (1, None)), ('userfaultfd', 323, (0,)), ('keyctl', 250, (0, 0))]:
    print(name, outcome(libc.syscall(number, *args)))
# A new user namespace, by every door: clone3 (its flags cannot be filtered), unshare.
clone_args = ctypes.create_string_buffer(88)
ctypes.c_uint64.from_buffer(clone_args, 0).value = 0x10000000
ctypes.c_uint64.from_buffer(clone_args, 32).value = 17
print('clone3 newuser', outcome(libc.syscall(435, clone_args, 88)))
print('unshare newuser', outcome(libc.syscall(272, 0x10000000)))
print('vsock', outcome(libc.socket(40, 1, 0)))
# Waiting on file descriptors, as programs blocked on a pipe do (glibc's select is pselect6).
no_wait = ctypes.create_string_buffer(16)
print('select', outcome(libc.syscall(23, 0, None, None, None, no_wait)))
print('pselect6', outcome(libc.syscall(270, 0, None, None, None, no_wait, None)))
print('hostname', socket.gethostname())
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_holds_no_capability_and_runs_under_our_seccomp_profile_and_no_new_privs() {
    for mode in sandbox_modes() {
        let stack = stack_for(&mode, &["python"]).await;
        let run = stack
            .client()
            .run_and_wait(&request("python", STATUS_PROGRAM))
            .await
            .expect("run");
        assert_eq!(run.verdict, Some(Verdict::Ok), "{mode}: {run:#?}");
        let expected = [
            "seccomp mode 2",
            "no_new_privs 1",
            "ambient 0",
            "CapInh 0000000000000000",
            "CapPrm 0000000000000000",
            "CapEff 0000000000000000",
            "CapBnd 0000000000000000",
            "io_uring_setup EPERM",
            "userfaultfd EPERM",
            "keyctl EPERM",
            "clone3 newuser ENOSYS",
            "unshare newuser EPERM",
            "vsock EPERM",
            "select allowed",
            "pselect6 allowed",
            "hostname sandbox",
        ];
        assert_eq!(run.stdout().lines().collect::<Vec<_>>(), expected, "{mode}");
        stack.stop().await;
    }
}

const TAMPER_C: &str = r#"#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
static const char *did(int ok) { return ok ? "done" : "refused"; }
int main(void) {
  char mode[16] = {0};
  if (!fgets(mode, sizeof mode, stdin)) return 2;
  if (strncmp(mode, "tamper", 6) == 0) {
    printf("chmod %s\n", did(chmod("main", 0777) == 0));
    printf("rename %s\n", did(rename("main", "moved") == 0));
    printf("unlink %s\n", did(unlink("main") == 0));
    printf("source %s\n", did(fopen("main.c", "a") != NULL));
    FILE *files[] = {fopen("/workspace/left", "w"), fopen("/tmp/left", "w"), fopen("/dev/shm/left", "w")};
    for (int i = 0; i < 3; i++) if (files[i]) fclose(files[i]);
    mkdir("/workspace/dir", 0700);
    FILE *inner = fopen("/workspace/dir/inner", "w");
    if (inner) fclose(inner);
    chmod("/workspace/dir", 0500);
    printf("shm %s\n", shmget(0xc0de, 4096, IPC_CREAT | 0666) >= 0 ? "made" : "failed");
    return 0;
  }
  printf("left %d %d %d %d\n", access("/workspace/left", F_OK) == 0, access("/tmp/left", F_OK) == 0,
         access("/dev/shm/left", F_OK) == 0, access("/workspace/dir", F_OK) == 0);
  printf("shm %s\n", shmget(0xc0de, 0, 0) >= 0 ? "seen" : "gone");
  printf("original\n");
  return 0;
}
"#;

const TAMPER_PYTHON: &str = "import os, sys
if sys.stdin.read() == 'tamper':
    for name, act in [('write', lambda: open('main.py', 'a').write('print(1)')),
                      ('rename', lambda: os.rename('main.py', 'x.py')),
                      ('unlink', lambda: os.remove('main.py'))]:
        try:
            act(); print(name, 'done')
        except OSError:
            print(name, 'refused')
    for path in ['left', '/tmp/left', '/dev/shm/left']:
        open(path, 'w').write('x')
    # A tree far deeper than PATH_MAX, its top closed to everyone.
    os.chdir('/tmp')
    for _ in range(2500):
        os.mkdir('deep')
        os.chdir('deep')
    os.chdir('/tmp')
    os.chmod('deep', 0)
else:
    print('left', [os.path.exists(p) for p in ['left', '/tmp/left', '/dev/shm/left', '/tmp/deep']])
    print('original')
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_cannot_change_the_program_or_leave_anything_for_the_next() {
    for mode in sandbox_modes() {
        let runtime = mode.runtime.as_str();
        let stack = stack_for(&mode, &["c", "python"]).await;
        let client = stack.client();
        let c = client
            .run_and_wait(&with_tests(request("c", TAMPER_C), &["tamper", "check"]))
            .await
            .expect("c");
        assert_eq!(c.verdict, Some(Verdict::Ok), "{mode}: {c:#?}");
        assert_eq!(
            c.tests[0].stdout,
            "chmod refused\nrename refused\nunlink refused\nsource refused\nshm made\n",
            "{mode}: the compiled program and its source are not the test's to change"
        );
        // gVisor lists no System V IPC objects in /proc/sysvipc, so the agent cannot find them
        // to remove there: a known gap (ARCHITECTURE.md), said here out loud.
        let shm = if runtime == "runsc" {
            eprintln!(
                "NOTE: under runsc a test's System V IPC objects are not removed; not checked"
            );
            c.tests[1].stdout.lines().nth(1).unwrap_or("")
        } else {
            "shm gone"
        };
        assert_eq!(
            c.tests[1].stdout,
            format!("left 0 0 0 0\n{shm}\noriginal\n"),
            "{mode}: the second test starts from the post-compile workspace"
        );
        let python = client
            .run_and_wait(&with_tests(
                request("python", TAMPER_PYTHON),
                &["tamper", "check"],
            ))
            .await
            .expect("python");
        assert_eq!(python.verdict, Some(Verdict::Ok), "{mode}: {python:#?}");
        assert_eq!(
            python.tests[0].stdout, "write refused\nrename refused\nunlink refused\n",
            "{mode}"
        );
        assert_eq!(
            python.tests[1].stdout, "left [False, False, False, False]\noriginal\n",
            "{mode}"
        );
        stack.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_fork_bomb_never_ends_as_an_internal_error() {
    let mut bomb = request(
        "c",
        "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n",
    );
    bomb.limits.run = Some(StageLimitsRequest {
        wall_ms: Some(2000),
        ..Default::default()
    });
    for mode in sandbox_modes() {
        let stack = stack_for(&mode, &["c"]).await;
        for attempt in 0..3 {
            let run = stack.client().run_and_wait(&bomb).await.expect("bomb");
            eprintln!("{mode} fork bomb {attempt}: {:?}", run.verdict);
            assert!(
                matches!(
                    run.verdict,
                    Some(Verdict::TimeLimit | Verdict::RuntimeError | Verdict::MemoryLimit)
                ),
                "{mode}: {run:#?}"
            );
        }
        stack.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_flood_is_an_output_limit_even_in_little_memory() {
    for mode in sandbox_modes() {
        let runtime = mode.runtime.as_str();
        // Both streams at the largest cap (16 MiB at the catalog's 8 MiB) against far less
        // memory (gVisor's own kernel needs some more of it).
        let output_kb = coderun_e2e::max_limits("bash").run.output_kb;
        let cap = output_kb as usize * 1024;
        let memory_mb = if runtime == "runsc" { 128 } else { 24 };
        let mut flood = request("bash", "yes & yes >&2\nwait\n");
        flood.limits = LimitsRequest {
            compile: None,
            run: Some(StageLimitsRequest {
                output_kb: Some(output_kb),
                memory_mb: Some(memory_mb),
                ..Default::default()
            }),
        };
        let stack = stack_for(&mode, &["bash"]).await;
        let accepted = stack
            .client()
            .create_run(&flood, &Default::default())
            .await
            .expect("flood")
            .body;
        let run: Run = stack
            .client()
            .get_run(&accepted.id, Some(60_000))
            .await
            .expect("finished")
            .body;
        let summary = format!("{mode}: {:?} {:?} {:?}", run.status, run.verdict, run.error);
        let stage = run.run.as_ref().expect(&summary);
        assert_eq!(run.verdict, Some(Verdict::OutputLimit), "{summary}");
        assert!(stage.stdout_truncated || stage.stderr_truncated, "{mode}");
        assert!(stage.stdout.len() <= cap && stage.stderr.len() <= cap);
        assert_eq!(
            stage.stdout.len().max(stage.stderr.len()),
            cap,
            "{mode}: a stream is kept up to its cap"
        );
        stack.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_language_image_holds_a_set_id_program() {
    for language in Catalog::builtin().languages {
        let output = std::process::Command::new("docker")
            .args(["run", "--rm", "--network", "none", "--entrypoint", "find"])
            .arg(&language.image)
            .args(["/", "-xdev", "-perm", "/6000", "-type", "f"])
            .output()
            .expect("docker run");
        assert!(output.status.success(), "{}: {output:?}", language.id);
        let found = String::from_utf8_lossy(&output.stdout);
        assert!(
            found.trim().is_empty(),
            "{}: set-id programs:\n{found}",
            language.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_container_is_named_for_it_and_keeps_no_log() {
    for mode in sandbox_modes() {
        let stack = stack_for(&mode, &["bash"]).await;
        let client = stack.client();
        let accepted = client
            .create_run(
                &request(
                    "bash",
                    "for i in 1 2 3 4 5 6; do echo $i; sleep 0.5; done\n",
                ),
                &Default::default(),
            )
            .await
            .expect("accepted")
            .body;
        // A fast container serves many runs and keeps the name it was made with (renaming it
        // for every run would cost the engine a call per run): there, every container of the
        // stack is checked instead.
        let fast = mode.isolation == coderun_executor::config::Isolation::Fast;
        let mut inspected = None;
        for _ in 0..100 {
            let output = std::process::Command::new("docker")
                .args(["ps", "-q", "--filter", &format!("name={}", accepted.id)])
                .output()
                .expect("docker ps");
            let id = match String::from_utf8_lossy(&output.stdout).trim() {
                _ if fast => stack.containers(false).join(" "),
                named => named.to_owned(),
            };
            if !id.is_empty() {
                let format = "{{.Name}} {{.HostConfig.LogConfig.Type}} {{.Config.Hostname}}";
                let output = std::process::Command::new("docker")
                    .args(["inspect", "--format", format])
                    .args(id.split(' '))
                    .output()
                    .expect("docker inspect");
                inspected = Some(String::from_utf8_lossy(&output.stdout).trim().to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let inspected = inspected.expect("the run's container is found by its run id");
        for container in inspected.lines() {
            let fields: Vec<&str> = container.split(' ').collect();
            assert!(
                fast || fields[0].contains(&accepted.id),
                "{mode}: {inspected}"
            );
            assert_eq!(fields[1..], ["none", "sandbox"], "{mode}: {inspected}");
        }
        let run = client
            .get_run(&accepted.id, Some(20_000))
            .await
            .expect("done")
            .body;
        assert_eq!(
            run.stdout(),
            "1\n2\n3\n4\n5\n6\n",
            "{mode}: attach still carries it all: {run:#?}"
        );
        stack.stop().await;
    }
}

#[test]
fn the_engines_runc_has_the_fd_leak_fix() {
    let output = std::process::Command::new("docker")
        .args(["info", "--format", "{{.RuncCommit.ID}}"])
        .output()
        .expect("docker info");
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    // Debian backported the CVE-2024-21626 fix as 1.1.5+ds1-1+deb12u1; upstream has it from 1.1.12.
    let debian_fixed = version
        .strip_prefix("1.1.5+ds1-1+deb12u")
        .and_then(|update| update.parse::<u32>().ok())
        .is_some_and(|update| update >= 1);
    let upstream: Vec<u32> = version
        .split(['.', '+', '-', ' '])
        .take(3)
        .map_while(|part| part.parse().ok())
        .collect();
    let upstream_fixed = upstream.len() == 3 && upstream > vec![1, 1, 11];
    assert!(
        debian_fixed || upstream_fixed,
        "runc {version:?} lacks the CVE-2024-21626 fix"
    );
}
