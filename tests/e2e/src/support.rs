//! What the end-to-end tests share besides the stack: the OCI runtimes to cover, the
//! catalog's limits, running a command in a sandbox, waiting for a condition, and reading a
//! problem answer.

use std::time::Duration;

/// The OCI runtimes the Docker engine has, from `docker info`.
pub fn docker_runtimes() -> Vec<String> {
    let output = std::process::Command::new("docker")
        .args([
            "info",
            "--format",
            "{{range $name, $_ := .Runtimes}}{{$name}} {{end}}",
        ])
        .output()
        .expect("docker info runs");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The runtimes the sandbox tests cover: runc always, and runsc (gVisor) too.
///
/// runsc is required under CI (`CI=true`) and when `CODERUN_TEST_RUNSC=1` (`scripts/test.sh`
/// sets it unless told `CODERUN_TEST_RUNSC=0`): without it in the engine, the test fails.
/// Elsewhere a missing runsc, or `CODERUN_TEST_RUNSC=0`, is a skip printed on stderr, never a
/// silent pass.
pub fn sandbox_runtimes() -> Vec<String> {
    let setting = std::env::var("CODERUN_TEST_RUNSC").unwrap_or_default();
    let under_ci = std::env::var("CI").as_deref() == Ok("true");
    let available = docker_runtimes();
    let has_runsc = available.iter().any(|runtime| runtime == "runsc");
    assert!(
        !(under_ci && setting == "0"),
        "CI=true but CODERUN_TEST_RUNSC=0: CI runs every sandbox test under runsc too"
    );
    assert!(
        has_runsc || !(under_ci || setting == "1"),
        "runsc is required (CI={under_ci}, CODERUN_TEST_RUNSC={setting:?}) but the Docker \
         engine has no runsc runtime (has {available:?})"
    );
    let mut runtimes = vec!["runc".to_owned()];
    if setting == "0" {
        eprintln!("SKIPPED under runsc: CODERUN_TEST_RUNSC=0 (this test ran under runc only)");
    } else if !has_runsc {
        eprintln!("SKIPPED under runsc: the Docker engine has no runsc runtime (runc only)");
    } else {
        runtimes.push("runsc".to_owned());
    }
    runtimes
}

/// One way the sandbox tests run programs: an OCI runtime and an isolation mode.
#[derive(Debug, Clone)]
pub struct SandboxMode {
    pub runtime: String,
    pub isolation: coderun_executor::config::Isolation,
}

impl SandboxMode {
    /// Stack options with this runtime and isolation, the rest default.
    pub fn options(&self) -> crate::StackOptions {
        crate::StackOptions {
            runtime: self.runtime.clone(),
            isolation: self.isolation,
            ..Default::default()
        }
    }
}

impl std::fmt::Display for SandboxMode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let isolation = match self.isolation {
            coderun_executor::config::Isolation::Strict => "strict",
            coderun_executor::config::Isolation::Fast => "fast",
        };
        write!(formatter, "{}/{isolation}", self.runtime)
    }
}

/// The modes the attack, hardening and sandbox tests cover: every runtime of
/// [`sandbox_runtimes`] in the strict mode, and runc in the fast mode too. runsc has no fast
/// mode (an executor runs a runsc pool strict: gVisor gives an inner sandbox no mount
/// namespace), which is printed, not silently left out.
pub fn sandbox_modes() -> Vec<SandboxMode> {
    use coderun_executor::config::Isolation;
    let mut modes = Vec::new();
    for runtime in sandbox_runtimes() {
        modes.push(SandboxMode {
            runtime: runtime.clone(),
            isolation: Isolation::Strict,
        });
        if runtime == "runc" {
            modes.push(SandboxMode {
                runtime,
                isolation: Isolation::Fast,
            });
        } else {
            eprintln!("NOT RUN: {runtime}/fast (an executor runs {runtime} pools strict)");
        }
    }
    modes
}

/// A run of one source file, everything else default.
pub fn source_request(language: &str, source: &str) -> coderun_schema::run::RunRequest {
    coderun_schema::run::RunRequest {
        language: language.to_owned(),
        source: Some(source.to_owned()),
        ..Default::default()
    }
}

/// A language's default limits in the catalog: tests read them, never repeat them.
pub fn default_limits(language: &str) -> coderun_schema::catalog::Limits {
    let catalog = coderun_schema::catalog::Catalog::builtin();
    let spec = catalog.find(language).expect("a catalog language");
    catalog.default_limits(spec)
}

/// A language's maximum limits in the catalog.
pub fn max_limits(language: &str) -> coderun_schema::catalog::Limits {
    let catalog = coderun_schema::catalog::Catalog::builtin();
    let spec = catalog.find(language).expect("a catalog language");
    catalog.max_limits(spec)
}

/// A run of `source` that may take as long as its language allows: for tests that cancel it,
/// or need it to hold its slot, while it waits.
pub fn long_running(language: &str, source: &str) -> coderun_schema::run::RunRequest {
    let mut request = coderun_schema::run::RunRequest {
        language: language.to_owned(),
        source: Some(source.to_owned()),
        ..Default::default()
    };
    request.limits.run = Some(coderun_schema::run::StageLimitsRequest {
        wall_ms: Some(max_limits(language).run.wall_ms),
        ..Default::default()
    });
    request
}

/// Runs `command` inside a running sandbox container (as the container's own user) and says
/// whether it succeeded: for tests to observe or signal a program from outside. Gives up after
/// 20 s (the engine can hang on a container that is being removed) and reports a failure.
pub fn exec_in(container: &str, command: &[&str]) -> bool {
    let child = std::process::Command::new("docker")
        .args(["exec", container])
        .args(command)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Calls `probe` until it answers `Some`, or `limit` passes (then `None`): tests wait for a
/// condition, never for a duration.
pub async fn wait_until<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if started.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The problem+json body of an error answer, checking its content type.
pub fn problem_of(response: &coderun_client::RawResponse) -> coderun_schema::problem::Problem {
    assert_eq!(
        response.content_type.as_deref(),
        Some("application/problem+json"),
        "status {} body {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    serde_json::from_slice(&response.body).expect("a problem body")
}

/// The virtual environment with the Python tools the API tests drive (`scripts/test.sh`
/// installs it and sets `CODERUN_TEST_PYTHON_TOOLS`). Required under CI; elsewhere its absence
/// is a skip printed on stderr, and `None`.
pub fn python_tools(test: &str) -> Option<std::path::PathBuf> {
    let under_ci = std::env::var("CI").as_deref() == Ok("true");
    match std::env::var_os("CODERUN_TEST_PYTHON_TOOLS") {
        Some(path) => Some(path.into()),
        None => {
            assert!(
                !under_ci,
                "CI=true but CODERUN_TEST_PYTHON_TOOLS is not set: run the suite with scripts/test.sh"
            );
            eprintln!(
                "SKIPPED {test}: CODERUN_TEST_PYTHON_TOOLS is not set (scripts/test.sh sets it)"
            );
            None
        }
    }
}

/// Runs a python `source` and waits for it, sending `traceparent` as a client that traces its
/// calls would; returns the finished run's id.
pub async fn run_traced(
    client: &coderun_client::Client,
    source: &str,
    traceparent: &str,
) -> String {
    let body = serde_json::json!({ "language": "python", "source": source });
    let response = client
        .send_raw(
            reqwest::Method::POST,
            "/v1/runs?wait=true",
            Some("application/json"),
            body.to_string().into_bytes(),
            &[("traceparent", traceparent)],
        )
        .await
        .expect("answers");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let run: serde_json::Value = serde_json::from_slice(&response.body).expect("a run");
    run["id"].as_str().expect("an id").to_owned()
}

/// How many times a finished run was started: the `running` events of its event stream (one,
/// unless its job was delivered again after its executor died).
pub async fn times_started(client: &coderun_client::Client, id: &str) -> usize {
    let events = client
        .run_events(id, None)
        .await
        .expect("the event stream")
        .collect()
        .await
        .expect("events");
    events
        .iter()
        .filter(|event| event.data.event == coderun_schema::messages::RunEventKind::Running)
        .count()
}

/// Every run of `ids`, once all are terminal (each read with a short long-poll); `None` when
/// one is still queued or running after `timeout`.
pub async fn wait_all_terminal(
    client: &coderun_client::Client,
    ids: &[String],
    timeout: std::time::Duration,
) -> Option<Vec<coderun_schema::run::Run>> {
    wait_until(timeout, || async {
        let mut runs = Vec::new();
        for id in ids {
            let run = client.get_run(id, Some(1_000)).await.ok()?.body;
            if !run.status.is_terminal() {
                return None;
            }
            runs.push(run);
        }
        Some(runs)
    })
    .await
}

/// Creates a run of each of `sources` in `language` (without waiting); their ids, in order.
pub async fn create_runs(
    client: &coderun_client::Client,
    language: &str,
    sources: impl IntoIterator<Item = String>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for source in sources {
        let request = coderun_schema::run::RunRequest {
            language: language.to_owned(),
            source: Some(source),
            ..Default::default()
        };
        let created = client
            .create_run(&request, &coderun_client::CreateOptions::default())
            .await
            .expect("accepted");
        ids.push(created.body.id);
    }
    ids
}

/// How many of `ids` are running now; `None` when one cannot be read.
pub async fn count_running(client: &coderun_client::Client, ids: &[String]) -> Option<usize> {
    let mut running = 0;
    for id in ids {
        let run = client.get_run(id, None).await.ok()?.body;
        running += usize::from(run.status == coderun_schema::run::RunStatus::Running);
    }
    Some(running)
}
