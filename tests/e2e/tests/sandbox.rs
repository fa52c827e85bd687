//! The sandbox measures what a program did accurately, and a run with default limits starts
//! in a pre-warmed container: no create and no start on its path.

use std::sync::atomic::Ordering;

use coderun_e2e::TestStack;
use coderun_schema::run::{LimitsRequest, RunRequest, StageLimitsRequest, Verdict};

fn c_program(source: &str) -> RunRequest {
    RunRequest {
        language: "c".to_owned(),
        source: Some(source.to_owned()),
        ..Default::default()
    }
}

/// A C program that allocates `mib` MiB and touches every page of it.
fn touching(mib: u32) -> RunRequest {
    c_program(&format!(
        "#include <stdlib.h>\nint main(void) {{ size_t n = {mib}u << 20; volatile char *p = malloc(n);\n  for (size_t i = 0; i < n; i += 4096) p[i] = 1;\n  return p[n - 4096] == 1 ? 0 : 1; }}\n"
    ))
}

fn within(value: u64, target: u64, share: f64) -> bool {
    let target = target as f64;
    (value as f64) >= target * (1.0 - share) && (value as f64) <= target * (1.0 + share)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measurements_are_accurate_and_memory_limits_hold() {
    let stack = TestStack::start().await;
    let client = stack.client();

    // About one second of CPU: spin until the process's own CPU clock says so.
    let spin = c_program(concat!(
        "#include <time.h>\n",
        "int main(void) { struct timespec t; volatile unsigned long n = 0;\n",
        "  do { n++; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); } while (t.tv_sec < 1);\n",
        "  return 0; }\n"
    ));
    let run = client.run_and_wait(&spin).await.expect("spin");
    let stage = run.run.as_ref().expect("stage");
    assert_eq!(run.verdict, Some(Verdict::Ok), "{run:#?}");
    assert!(
        within(stage.cpu_ms, 1000, 0.10),
        "cpu_ms {} is 1000 ± 10%",
        stage.cpu_ms
    );

    // 100 MiB, every page touched.
    let touch = touching(100);
    let run = client.run_and_wait(&touch).await.expect("touch");
    let stage = run.run.as_ref().expect("stage");
    assert_eq!(run.verdict, Some(Verdict::Ok), "{run:#?}");
    assert!(
        within(stage.memory_kb, 100 * 1024, 0.10),
        "memory_kb {} is 102400 ± 10%",
        stage.memory_kb
    );

    // 200 MiB under a 128 MiB limit.
    let mut hungry = touching(200);
    hungry.limits = LimitsRequest {
        compile: None,
        run: Some(StageLimitsRequest {
            memory_mb: Some(128),
            ..Default::default()
        }),
    };
    let run = client.run_and_wait(&hungry).await.expect("hungry");
    assert_eq!(run.verdict, Some(Verdict::MemoryLimit), "{run:#?}");
    assert_eq!(
        run.run.as_ref().and_then(|s| s.verdict),
        Some(Verdict::MemoryLimit)
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_are_runtime_errors_with_the_signal_name() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let python = RunRequest {
        language: "python".to_owned(),
        source: Some(
            "import ctypes\nprint('before', flush=True)\nctypes.string_at(0)\n".to_owned(),
        ),
        ..Default::default()
    };
    let c = c_program("#include <stdio.h>\nint main(void) { volatile int *p = 0; puts(\"before\"); fflush(stdout); return *p; }\n");
    let abort = c_program("#include <stdlib.h>\nint main(void) { abort(); }\n");
    for (request, signal) in [(python, "SIGSEGV"), (c, "SIGSEGV"), (abort, "SIGABRT")] {
        let run = client.run_and_wait(&request).await.expect("run");
        let stage = run.run.as_ref().expect("stage");
        assert_eq!(run.verdict, Some(Verdict::RuntimeError), "{run:#?}");
        assert_eq!(stage.signal.as_deref(), Some(signal), "{run:#?}");
        assert_eq!(stage.exit_code, None, "a signal, not an exit status");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_and_memory_are_of_the_whole_process_tree() {
    let stack = TestStack::start().await;
    let client = stack.client();

    // Three busy workers: RLIMIT_CPU alone would give each its own second.
    let mut workers = RunRequest {
        language: "bash".to_owned(),
        source: Some("for i in 1 2 3; do (while :; do :; done) & done\nwait\n".to_owned()),
        ..Default::default()
    };
    workers.limits.run = Some(StageLimitsRequest {
        cpu_ms: Some(1000),
        wall_ms: Some(20_000),
        ..Default::default()
    });
    let run = client.run_and_wait(&workers).await.expect("workers");
    let stage = run.run.as_ref().expect("stage");
    assert_eq!(run.verdict, Some(Verdict::TimeLimit), "{run:#?}");
    assert!(stage.cpu_ms >= 1000 && stage.cpu_ms < 1500, "{stage:?}");
    assert!(
        stage.wall_ms < 10_000,
        "stopped on the tree's CPU, not the wall: {stage:?}"
    );

    // Two processes of 60 MiB each: the peak is their sum, not the larger one.
    let pair = c_program(concat!(
        "#include <stdlib.h>\n#include <unistd.h>\n#include <sys/wait.h>\n",
        "int main(void) { size_t n = 60u << 20; pid_t child = fork();\n",
        "  volatile char *p = malloc(n); for (size_t i = 0; i < n; i += 4096) p[i] = 1;\n",
        "  sleep(1); if (child) waitpid(child, 0, 0); return 0; }\n"
    ));
    let run = client.run_and_wait(&pair).await.expect("pair");
    let stage = run.run.as_ref().expect("stage");
    assert_eq!(run.verdict, Some(Verdict::Ok), "{run:#?}");
    assert!(
        within(stage.memory_kb, 120 * 1024, 0.10),
        "memory_kb {} is 122880 ± 10%: {run:#?}",
        stage.memory_kb
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limits_take_a_warm_container_and_others_get_exactly_their_own() {
    let stack = TestStack::start_with(coderun_e2e::StackOptions {
        warm_per_language: 1,
        warm_sizes: [("python".to_owned(), 3)].into(),
        ..Default::default()
    })
    .await;
    let client = stack.client();
    assert_eq!(
        stack.warm.total(),
        5,
        "bash 1 + c 1 + python 3, warm before serving"
    );
    let stats = &stack.warm.stats;
    let (warm_before, cold_before) = (
        stats.warm_takes.load(Ordering::SeqCst),
        stats.cold_starts.load(Ordering::SeqCst),
    );

    let hello = RunRequest {
        language: "python".to_owned(),
        source: Some("print('Hello, World!')\n".to_owned()),
        ..Default::default()
    };
    let run = client.run_and_wait(&hello).await.expect("hello");
    assert_eq!(run.run.as_ref().expect("stage").stdout, "Hello, World!\n");
    assert_eq!(
        stats.warm_takes.load(Ordering::SeqCst),
        warm_before + 1,
        "took a warm container"
    );
    assert_eq!(
        stats.cold_starts.load(Ordering::SeqCst),
        cold_before,
        "created nothing on the path"
    );

    // Other limits: a container made for exactly them (a 64 MiB run cannot use 100 MiB).
    let mut tight = RunRequest {
        source: Some("x = bytearray(100 * 1024 * 1024)\nprint(len(x))\n".to_owned()),
        ..hello.clone()
    };
    tight.limits.run = Some(StageLimitsRequest {
        memory_mb: Some(64),
        ..Default::default()
    });
    let run = client.run_and_wait(&tight).await.expect("tight");
    assert_eq!(run.verdict, Some(Verdict::MemoryLimit), "{run:#?}");
    assert_eq!(
        stats.cold_starts.load(Ordering::SeqCst),
        cold_before + 1,
        "a container of its own"
    );

    // The pool refills after each take.
    for _ in 0..50 {
        if stack.warm.total() == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stack.warm.total(), 5, "refilled");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_limit_holds_under_every_runtime() {
    let spawn = |children: u32| {
        RunRequest {
        language: "python".to_owned(),
        source: Some(format!(
            "import os, time\nkids = []\nfor _ in range({children}):\n    pid = os.fork()\n    if pid == 0:\n        time.sleep(1)\n        os._exit(0)\n    kids.append(pid)\nfor kid in kids:\n    os.waitpid(kid, 0)\nprint(len(kids))\n"
        )),
        limits: LimitsRequest {
            compile: None,
            run: Some(StageLimitsRequest {
                pids: Some(8),
                ..Default::default()
            }),
        },
        ..Default::default()
    }
    };
    for mode in coderun_e2e::sandbox_modes() {
        let stack = TestStack::start_with(coderun_e2e::StackOptions {
            languages: vec!["python".to_owned()],
            ..mode.options()
        })
        .await;
        let client = stack.client();
        let within_limit = client.run_and_wait(&spawn(4)).await.expect("run");
        assert_eq!(
            within_limit.verdict,
            Some(Verdict::Ok),
            "{mode}: {within_limit:#?}"
        );
        assert_eq!(within_limit.run.as_ref().expect("stage").stdout, "4\n");
        let over_limit = client.run_and_wait(&spawn(20)).await.expect("run");
        assert_eq!(
            over_limit.verdict,
            Some(Verdict::RuntimeError),
            "{mode}: {over_limit:#?}"
        );
        assert_ne!(
            over_limit.run.as_ref().expect("stage").stdout,
            "20\n",
            "{mode}"
        );
        stack.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_open_their_standard_streams_by_name_under_each_runtime() {
    let catalog = coderun_schema::catalog::Catalog::builtin();
    let sql = catalog.find("sql").expect("sql is in the catalog");
    for mode in coderun_e2e::sandbox_modes() {
        let stack = TestStack::start_with(coderun_e2e::StackOptions {
            languages: vec!["python".to_owned(), "sql".to_owned()],
            warm_per_language: 0,
            ..mode.options()
        })
        .await;
        let client = stack.client();
        // `/dev/stdin` idioms, as in many languages; SQL loads stdin through it.
        let python = RunRequest {
            language: "python".to_owned(),
            source: Some(
                "data = open('/dev/stdin').read()\nwith open('/dev/stdout', 'w') as out:\n    \
                 out.write(data.upper())\n"
                    .to_owned(),
            ),
            stdin: "by name\n".to_owned(),
            ..Default::default()
        };
        let sql_echo = RunRequest {
            language: "sql".to_owned(),
            source: Some(sql.echo_stdin.clone()),
            stdin: "one\n\nthree\n".to_owned(),
            ..Default::default()
        };
        for (request, expected) in [(python, "BY NAME\n"), (sql_echo, "one\n\nthree\n")] {
            let run = client.run_and_wait(&request).await.expect("run");
            assert_eq!(run.verdict, Some(Verdict::Ok), "{mode}: {run:#?}");
            assert_eq!(run.run.as_ref().expect("stage").stdout, expected, "{mode}");
        }
        stack.stop().await;
    }
}
