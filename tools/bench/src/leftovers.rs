//! What the bench's stack leaves behind, removed at the end whatever way the bench ended: the
//! containers labelled with its prefix (the executor's and the churn's), its NATS streams
//! and its Redis keys.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use bollard::Docker;
use coderun_executor::container::LABEL_PREFIX;
use coderun_schema::names::Names;

/// Listing every container labelled with `prefix`, running or not.
pub fn containers_of(prefix: &str) -> ListContainersOptions {
    ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL_PREFIX}={prefix}")],
        )])),
        ..Default::default()
    }
}

/// Removes every container labelled with `prefix`, running or not; returns how many are left.
pub async fn remove_containers(docker: &Docker, prefix: &str) -> usize {
    let options = containers_of(prefix);
    let remove = RemoveContainerOptions {
        force: true,
        v: true,
        link: false,
    };
    // A create the engine was still finishing may show up after a first pass.
    let mut left = 0;
    for _ in 0..5 {
        let Ok(containers) = docker.list_containers(Some(options.clone())).await else {
            return usize::MAX;
        };
        left = containers.len();
        if left == 0 {
            return 0;
        }
        for id in containers
            .iter()
            .filter_map(|container| container.id.as_deref())
        {
            let _ = docker.remove_container(id, Some(remove.clone())).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    left
}

/// Deletes the prefix's streams; a NATS that cannot be reached is reported.
pub async fn remove_streams(nats_url: &str, prefix: &str) -> anyhow::Result<()> {
    let names = Names::new(prefix.to_owned()).map_err(anyhow::Error::msg)?;
    let client =
        tokio::time::timeout(Duration::from_secs(3), async_nats::connect(nats_url)).await??;
    let jetstream = async_nats::jetstream::new(client);
    for stream in names.streams() {
        let _ = jetstream.delete_stream(&stream).await;
    }
    Ok(())
}

/// Every Redis key of the prefix (`<prefix>:*`), read with SCAN.
pub async fn keys_of(
    connection: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut cursor: u64 = 0;
    let mut all = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(connection)
            .await?;
        all.extend(keys);
        if next == 0 {
            return Ok(all);
        }
        cursor = next;
    }
}

/// Deletes the prefix's Redis keys.
pub async fn remove_keys(redis_url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    for keys in keys_of(&mut connection, prefix).await?.chunks(1000) {
        let _: i64 = redis::cmd("UNLINK")
            .arg(keys)
            .query_async(&mut connection)
            .await?;
    }
    Ok(())
}
