//! Hostile programs are contained and get the right verdict. Each attack runs next to an
//! innocent bystander run; after each one the bystander has its right answer, the executor
//! still serves, the host is unchanged and no sandbox container is left behind.

use std::time::Instant;

use coderun_e2e::TestStack;
use coderun_schema::run::{LimitsRequest, Run, RunRequest, StageLimitsRequest, TestCase, Verdict};

/// Set in this process, where the executor runs: a sandbox must never see it.
const HOST_SECRET_NAME: &str = "CODERUN_TEST_HOST_SECRET";
const HOST_SECRET: &str = "s3cr3t-value-that-must-not-leak";

struct Attack {
    name: &'static str,
    request: RunRequest,
    /// Checks the attacked run; told the OCI runtime it ran under.
    check: fn(&Run, &str),
}

fn python(source: &str) -> RunRequest {
    RunRequest {
        language: "python".to_owned(),
        source: Some(source.to_owned()),
        ..Default::default()
    }
}

fn bash(source: &str) -> RunRequest {
    RunRequest {
        language: "bash".to_owned(),
        source: Some(source.to_owned()),
        ..Default::default()
    }
}

fn with_run_limits(mut request: RunRequest, limits: StageLimitsRequest) -> RunRequest {
    request.limits = LimitsRequest {
        compile: None,
        run: Some(limits),
    };
    request
}

fn verdict_is(run: &Run, expected: &[Verdict]) {
    assert!(
        run.verdict
            .is_some_and(|verdict| expected.contains(&verdict)),
        "expected one of {expected:?}, got {run:#?}"
    );
}

/// Sandbox containers of this stack that are not waiting in its warm pool: those a run left.
async fn leftover_containers(stack: &TestStack) -> Vec<String> {
    // Removal runs off the run's path, and a refill may be between creating a container and
    // adding it to the pool: give both time. Removing a gVisor sandbox full of processes has
    // taken up to ~45 s on a loaded 2-core machine.
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let leftovers = stack.containers_outside_warm_pool(true);
        if leftovers.is_empty() || Instant::now() > deadline {
            return leftovers;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn attacks() -> Vec<Attack> {
    let wall = |wall_ms| StageLimitsRequest {
        wall_ms: Some(wall_ms),
        ..Default::default()
    };
    vec![
        Attack {
            name: "fork bomb",
            request: with_run_limits(
                python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"),
                wall(2000),
            ),
            check: |run, _runtime| verdict_is(run, &[Verdict::TimeLimit, Verdict::RuntimeError, Verdict::MemoryLimit]),
        },
        Attack {
            name: "memory bomb",
            request: with_run_limits(
                python("x = []\nwhile True:\n    x.append(bytearray(10_000_000))\n"),
                StageLimitsRequest { memory_mb: Some(128), ..Default::default() },
            ),
            check: |run, _runtime| verdict_is(run, &[Verdict::MemoryLimit]),
        },
        Attack {
            name: "disk fill of the workspace and /tmp",
            request: with_run_limits(
                bash("dd if=/dev/zero of=/workspace/fill bs=1M 2>&1 | grep -o 'No space left on device'\ndd if=/dev/zero of=/tmp/fill bs=1M 2>&1 | grep -o 'No space left on device'\necho done\n"),
                StageLimitsRequest { file_size_kb: Some(65_536), ..Default::default() },
            ),
            check: |run, _runtime| {
                let out = run.stdout();
                assert_eq!(out.matches("No space left on device").count(), 2, "{run:#?}");
                assert!(out.ends_with("done\n"));
            },
        },
        Attack {
            name: "file over the size limit",
            request: bash(&format!(
                "exec head -c {} /dev/zero > big\n",
                coderun_e2e::default_limits("bash").run.file_size_kb * 1024 + 1
            )),
            check: |run, _runtime| {
                verdict_is(run, &[Verdict::RuntimeError]);
                assert_eq!(run.run.as_ref().and_then(|s| s.signal.clone()).as_deref(), Some("SIGXFSZ"), "{run:#?}");
            },
        },
        Attack {
            name: "output flood",
            request: bash("yes\n"),
            check: |run, _runtime| {
                verdict_is(run, &[Verdict::OutputLimit]);
                let stage = run.run.as_ref().expect("stage");
                assert!(stage.stdout_truncated);
                let cap = coderun_e2e::default_limits("bash").run.output_kb as usize * 1024;
                assert_eq!(stage.stdout.len(), cap, "exactly the cap is kept");
            },
        },
        Attack {
            name: "gigabytes to stderr only",
            request: bash("yes 'error error error' >&2\n"),
            check: |run, _runtime| {
                verdict_is(run, &[Verdict::OutputLimit]);
                let stage = run.run.as_ref().expect("stage");
                assert!(stage.stderr_truncated && !stage.stdout_truncated);
                let cap = coderun_e2e::default_limits("bash").run.output_kb as usize * 1024;
                assert_eq!(stage.stderr.len(), cap);
            },
        },
        Attack {
            name: "busy loop under a 1 s CPU limit",
            request: with_run_limits(
                python("while True:\n    pass\n"),
                StageLimitsRequest { cpu_ms: Some(1000), wall_ms: Some(10_000), ..Default::default() },
            ),
            check: |run, _runtime| {
                verdict_is(run, &[Verdict::TimeLimit]);
                let stage = run.run.as_ref().expect("stage");
                assert!(stage.wall_ms < 1500, "ended in under 1.5 s of wall time: {stage:?}");
                // It used about its second (rusage reads up to ~10% low on these VMs).
                assert!(stage.cpu_ms >= 800, "{stage:?}");
            },
        },
        Attack {
            name: "sleep forever",
            request: with_run_limits(bash("sleep infinity\n"), wall(1000)),
            check: |run, _runtime| {
                verdict_is(run, &[Verdict::TimeLimit]);
                assert!(run.run.as_ref().expect("stage").wall_ms < 1500);
            },
        },
        Attack {
            name: "a double-forked daemon does not outlive its test",
            request: RunRequest {
                tests: vec![
                    TestCase { stdin: "spawn".to_owned(), expected_stdout: Some("spawned".to_owned()) },
                    TestCase { stdin: "check".to_owned(), expected_stdout: Some("clean".to_owned()) },
                ],
                ..python(concat!(
                    "import os, sys, time\n",
                    "if sys.stdin.read() == 'spawn':\n",
                    "    if os.fork() == 0:\n",
                    "        os.setsid()\n",
                    "        if os.fork() == 0:\n",
                    "            time.sleep(0.5)\n",
                    "            open('/workspace/leak', 'w').write('x')\n",
                    "        os._exit(0)\n",
                    "    print('spawned')\n",
                    "else:\n",
                    "    time.sleep(1.0)\n",
                    "    print('leaked' if os.path.exists('/workspace/leak') else 'clean')\n",
                ))
            },
            check: |run, _runtime| verdict_is(run, &[Verdict::Ok]),
        },
        Attack {
            name: "network: loopback services, metadata address, DNS",
            request: python(concat!(
                "import socket\n",
                "for host, port in [('127.0.0.1', 4222), ('127.0.0.1', 6379), ('169.254.169.254', 80), ('10.0.0.1', 80)]:\n",
                "    s = socket.socket(); s.settimeout(2)\n",
                "    try:\n",
                "        s.connect((host, port)); print('connected', host, port)\n",
                "    except OSError as e:\n",
                "        print('blocked', host, port)\n",
                "try:\n",
                "    print('resolved', socket.gethostbyname('example.com'))\n",
                "except OSError:\n",
                "    print('no dns')\n",
            )),
            check: |run, _runtime| {
                let out = run.stdout();
                assert!(!out.contains("connected") && !out.contains("resolved"), "{run:#?}");
                assert_eq!(out.matches("blocked").count(), 4);
                assert!(out.contains("no dns"));
            },
        },
        Attack {
            name: "host files and the environment of PID 1",
            request: python(concat!(
                "import os\n",
                "try:\n",
                "    env = open('/proc/1/environ', 'rb').read().split(b'\\0')\n",
                "    print(sorted(e.split(b'=')[0].decode() for e in env if e))\n",
                "except PermissionError:\n",
                "    print('denied')\n",
                "print(sorted(os.environ))\n",
                "print(os.getuid(), os.geteuid())\n",
                "print(os.path.exists('/root/.cache'), os.path.exists('/var/lib/docker'))\n",
            )),
            check: |run, _runtime| {
                let out = run.stdout();
                assert!(!out.contains(HOST_SECRET) && !out.contains(HOST_SECRET_NAME), "{out}");
                let lines: Vec<&str> = out.lines().collect();
                // PID 1 is the agent, another user: its environment is not even readable.
                // gVisor lets it be read: then it holds Docker's HOSTNAME besides, nothing else.
                assert!(
                    matches!(lines[0], "denied" | "['HOME', 'LANG', 'PATH']" | "['HOME', 'HOSTNAME', 'LANG', 'PATH']"),
                    "{out}"
                );
                assert_eq!(lines[1], "['HOME', 'LANG', 'PATH']", "{out}");
                // A program user of the run's own: never root, never the old shared `nobody`.
                let ids: Vec<u32> = lines[2].split(' ').map(|id| id.parse().expect("uid")).collect();
                assert!(ids[0] == ids[1] && ids[0] >= 60_000 && ids[0] != 65_534, "{out}");
                assert_eq!(lines[3], "False False");
            },
        },
        Attack {
            name: "symlinks planted where the agent and the host might look",
            // A dozen short processes per test: under gVisor's ptrace platform on a busy
            // 2-core machine they have taken over the default 2 s of CPU, so this attack
            // gets room to finish (its point is what it reads, not how fast).
            request: with_run_limits(RunRequest {
                tests: vec![TestCase::default(), TestCase::default()],
                ..bash(concat!(
                    "echo \"leftovers $(ls -d /workspace/link* /tmp/link* 2>/dev/null | wc -l)\"\n",
                    "for target in /etc/shadow /proc/1/root /var/run/docker.sock /; do\n",
                    "  ln -sf \"$target\" \"/workspace/link$RANDOM\" 2>/dev/null\n",
                    "  ln -sf \"$target\" \"/tmp/link$RANDOM\" 2>/dev/null\n",
                    "done\n",
                    "ln -sf /etc/shadow /workspace/main.sh.new; mv -f /workspace/main.sh.new /workspace/result 2>/dev/null\n",
                    "echo \"shadow lines read $(cat /workspace/link* /tmp/link* 2>/dev/null | grep -c '^root:')\"\n",
                ))
            }, StageLimitsRequest { cpu_ms: Some(8000), wall_ms: Some(10_000), ..Default::default() }),
            check: |run, _runtime| {
                // Both tests ran the program as submitted (the agent followed no planted link
                // when it prepared the second), neither could read through a link what its
                // user may not read, and the second started without the first's links.
                verdict_is(run, &[Verdict::Ok]);
                assert_eq!(run.tests.len(), 2);
                for test in &run.tests {
                    assert_eq!(test.stdout, "leftovers 0\nshadow lines read 0\n", "{run:#?}");
                }
            },
        },
        Attack {
            name: "newlines and shell metacharacters in args",
            request: RunRequest {
                args: vec![
                    "a b".to_owned(),
                    "$(touch /tmp/coderun-pwned)".to_owned(),
                    "x\ny".to_owned(),
                    "; rm -rf / #".to_owned(),
                    "`id`".to_owned(),
                ],
                ..python(concat!(
                    "import sys, json, os\n",
                    "print(json.dumps(sys.argv[1:]))\n",
                    "print('evaluated' if os.path.exists('/tmp/coderun-pwned') else 'literal')\n",
                ))
            },
            check: |run, _runtime| {
                // Passed as they are, never through a shell (which would have run `touch`).
                assert_eq!(
                    run.stdout(),
                    "[\"a b\", \"$(touch /tmp/coderun-pwned)\", \"x\\ny\", \"; rm -rf / #\", \"`id`\"]\nliteral\n"
                );
            },
        },
        Attack {
            name: "writing to the read-only root",
            request: python(concat!(
                "import errno\n",
                "for path in ['/var/tmp/x', '/etc/x', '/usr/bin/x', '/x']:\n",
                "    try:\n",
                "        open(path, 'w').write('x'); print('wrote', path)\n",
                "    except OSError as e:\n",
                "        print(errno.errorcode[e.errno], path)\n",
            )),
            check: |run, _runtime| {
                let out = run.stdout();
                assert!(!out.contains("wrote"), "{out}");
                assert!(out.contains("EROFS /var/tmp/x"), "a world-writable directory on the root is still read-only: {out}");
            },
        },
        Attack {
            name: "signals to PID 1",
            request: python(concat!(
                "import os, signal\n",
                "for sig in [signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP, signal.SIGINT]:\n",
                "    try:\n",
                "        os.kill(1, sig); print('sent', sig.name)\n",
                "    except PermissionError:\n",
                "        print('denied', sig.name)\n",
                "print('still here')\n",
            )),
            check: |run, _runtime| {
                verdict_is(run, &[Verdict::Ok]);
                assert_eq!(run.stdout().matches("denied").count(), 4, "{run:#?}");
            },
        },
        Attack {
            name: "ptrace, mount, raw sockets, setuid",
            request: python(concat!(
                "import ctypes, os, socket\n",
                "libc = ctypes.CDLL(None, use_errno=True)\n",
                "print('ptrace', libc.ptrace(16, 1, 0, 0))\n",
                "print('mount', libc.mount(b'none', b'/workspace', b'tmpfs', 0, None))\n",
                "try:\n",
                "    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('raw socket opened')\n",
                "except OSError:\n",
                "    print('raw socket denied')\n",
                "try:\n",
                "    os.setuid(0); print('became root')\n",
                "except PermissionError:\n",
                "    print('setuid denied')\n",
                "for path in ['/workspace', '/tmp']:\n",
                "    print(path, 'nosuid' if os.statvfs(path).f_flag & os.ST_NOSUID else 'SUID HONOURED')\n",
            )),
            check: |run, runtime| {
                let out = run.stdout();
                assert!(out.contains("ptrace -1") && out.contains("mount -1"), "{out}");
                assert!(out.contains("raw socket denied") && out.contains("setuid denied"), "{out}");
                // Where programs can write, set-id bits are ignored (runc mounts the tmpfs
                // nosuid). gVisor's tmpfs drops that flag; there the seal (no set-id bit on
                // anything the compile user leaves for the run user) is what holds.
                if runtime == "runc" {
                    assert!(out.contains("/workspace nosuid") && out.contains("/tmp nosuid"), "{out}");
                }
            },
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_programs_are_contained_and_get_the_right_verdict() {
    // Set before any service starts: the executor runs in this process, so a leak of its
    // environment into a sandbox would show this value.
    std::env::set_var(HOST_SECRET_NAME, HOST_SECRET);
    for mode in coderun_e2e::sandbox_modes() {
        eprintln!("--- attacks under {mode}");
        attack_under(&mode).await;
    }
}

async fn attack_under(mode: &coderun_e2e::SandboxMode) {
    let runtime = mode.runtime.as_str();
    let stack = TestStack::start_with(coderun_e2e::StackOptions {
        languages: vec!["bash".to_owned(), "python".to_owned()],
        slots: 2,
        ..mode.options()
    })
    .await;
    let client = stack.client();
    let bystander = python("print(sum(range(10**6)))\n");
    for attack in attacks() {
        let name = format!("{} ({mode})", attack.name);
        let started = Instant::now();
        let (attacked, innocent) = tokio::join!(
            client.run_and_wait(&attack.request),
            client.run_and_wait(&bystander)
        );
        let attacked = attacked.unwrap_or_else(|error| panic!("{name}: {error}"));
        eprintln!("{name}: {:?} in {:?}", attacked.verdict, started.elapsed());
        (attack.check)(&attacked, runtime);
        let innocent = innocent.unwrap_or_else(|error| panic!("bystander of {name}: {error}"));
        assert_eq!(
            innocent.verdict,
            Some(Verdict::Ok),
            "bystander of {name}: {innocent:#?}"
        );
        assert_eq!(innocent.stdout(), "499999500000\n", "bystander of {name}");
        let cleaning = Instant::now();
        let leftovers = leftover_containers(&stack).await;
        eprintln!("{name}: containers gone after {:?}", cleaning.elapsed());
        assert!(
            leftovers.is_empty(),
            "containers left after {name}: {leftovers:?}"
        );
    }
    // Still serving after all of it.
    let after = client
        .run_and_wait(&python("print('alive')\n"))
        .await
        .expect("still serving");
    assert_eq!(after.stdout(), "alive\n");
    stack.stop().await;
}
