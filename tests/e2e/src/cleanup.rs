//! What a test stack leaves behind, removed whatever way the test ended: the sandbox
//! containers labelled with its prefix, its Redis keys and its NATS streams.
//!
//! Runs on a thread of its own with its own runtime, because it is called from `Drop`, which
//! may run inside the test's runtime (a panicking test unwinds there).

use coderun_schema::names::Names;

/// Removes everything of `names`' prefix; reports what it could not remove on stderr.
pub fn remove_everything(names: &Names, nats_url: &str, redis_url: &str) {
    let names = names.clone();
    let nats_url = nats_url.to_owned();
    let redis_url = redis_url.to_owned();
    let cleaned = std::thread::spawn(move || {
        remove_containers(names.prefix());
        if let Err(error) = remove_redis_keys(names.prefix(), &redis_url) {
            eprintln!("cleanup: Redis keys of {}: {error}", names.prefix());
        }
        remove_streams(&names, &nats_url);
    })
    .join();
    if cleaned.is_err() {
        eprintln!("cleanup: the cleanup thread panicked");
    }
}

/// The ids of the containers labelled with `prefix`, running or not.
pub fn containers_of(prefix: &str, including_stopped: bool) -> Vec<String> {
    docker_ps(&format!("label=coderun.prefix={prefix}"), including_stopped)
}

/// The ids of the containers `docker ps --filter <filter>` lists.
pub fn docker_ps(filter: &str, including_stopped: bool) -> Vec<String> {
    let mut command = std::process::Command::new("docker");
    command.args(["ps", "-q", "--no-trunc"]);
    if including_stopped {
        command.arg("-a");
    }
    let output = command
        .args(["--filter", filter])
        .output()
        .expect("docker ps runs");
    assert!(
        output.status.success(),
        "docker ps: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn remove_containers(prefix: &str) {
    // An executor stopped mid-way may have had a create in flight: the engine may finish it
    // after the first pass, so a pass that found some is followed by another.
    for _ in 0..5 {
        let left = containers_of(prefix, true);
        if left.is_empty() {
            return;
        }
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&left)
            .output();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

fn remove_redis_keys(prefix: &str, redis_url: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(redis_url)?;
    let mut connection = client.get_connection_with_timeout(std::time::Duration::from_secs(2))?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut connection)?;
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query(&mut connection)?;
    }
    Ok(())
}

fn remove_streams(names: &Names, nats_url: &str) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cleanup: no runtime for NATS: {error}");
            return;
        }
    };
    runtime.block_on(async {
        let servers = coderun_bus::server_list(nats_url).unwrap_or_default();
        let connect = async_nats::connect(servers.as_slice());
        let Ok(Ok(client)) = tokio::time::timeout(std::time::Duration::from_secs(2), connect).await
        else {
            eprintln!(
                "cleanup: NATS unreachable; streams of {} left",
                names.prefix()
            );
            return;
        };
        let jetstream = async_nats::jetstream::new(client);
        for stream in names.streams() {
            let _ = jetstream.delete_stream(&stream).await;
        }
    });
}
