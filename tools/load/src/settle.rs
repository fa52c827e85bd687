//! What became of every accepted run once the load is over: each is read again, waiting a
//! while for the ones not finished; one still not terminal then is lost. A run's events say
//! how many times an executor started it (`running`): more than once is a duplicated run, its
//! program possibly executed twice (a run handed back before its program was given the job
//! also counts: the events cannot tell the two apart).

use std::time::Duration;

use coderun_bench::progress::Phase;
use coderun_client::Client;
use coderun_schema::messages::RunEventKind;
use futures::StreamExt as _;
use serde::Serialize;
use tokio::time::Instant;

use crate::sender::Accepted;

/// Runs read at once.
const READERS: usize = 16;
/// Times a run's events are read before it counts as unreadable.
const EVENT_READS: usize = 3;
/// Examples of lost or duplicated runs kept for the report, at most.
const KEPT: usize = 10;

/// What became of the accepted runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settled {
    pub accepted: usize,
    /// Runs in a terminal state (whatever the verdict).
    pub finished: usize,
    /// Accepted, never terminal.
    pub lost: usize,
    /// Started by a sandbox more than once.
    pub duplicated: usize,
    /// Runs that could not be read back at all (an error or 404): counted as lost too.
    pub unreadable: usize,
    /// Ids of the first lost and duplicated runs, with why.
    pub examples: Vec<String>,
}

enum Fate {
    Finished { starts: usize },
    NotFinished,
    Unreadable(String),
}

/// Reads every run of `accepted`, giving the unfinished ones until `grace` from now.
pub async fn settle(
    client: &Client,
    accepted: &[Accepted],
    grace: Duration,
    phase: &Phase,
) -> Settled {
    let deadline = Instant::now() + grace;
    let fates: Vec<(String, Fate)> = futures::stream::iter(accepted)
        .map(|run| async move {
            let fate = fate(client, &run.id, deadline).await;
            phase.tick();
            (run.id.clone(), fate)
        })
        .buffer_unordered(READERS)
        .collect()
        .await;
    let mut settled = Settled {
        accepted: accepted.len(),
        ..Settled::default()
    };
    for (id, fate) in fates {
        let example = match fate {
            Fate::Finished { starts } => {
                settled.finished += 1;
                if starts <= 1 {
                    continue;
                }
                settled.duplicated += 1;
                format!("{id}: started {starts} times")
            }
            Fate::NotFinished => {
                settled.lost += 1;
                format!("{id}: not finished")
            }
            Fate::Unreadable(why) => {
                settled.lost += 1;
                settled.unreadable += 1;
                format!("{id}: {why}")
            }
        };
        if settled.examples.len() < KEPT {
            settled.examples.push(example);
        }
    }
    settled
}

async fn fate(client: &Client, id: &str, deadline: Instant) -> Fate {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait_ms = (left.as_millis() as u64).clamp(1, 30_000);
        match client.get_run(id, Some(wait_ms)).await {
            Ok(reply) if reply.body.status.is_terminal() => break,
            Ok(_) if left.is_zero() => return Fate::NotFinished,
            Ok(_) => {}
            Err(error) if left.is_zero() => return Fate::Unreadable(error.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let mut last_error = String::new();
    for _ in 0..EVENT_READS {
        let events = match client.run_events(id, None).await {
            Ok(reader) => reader.collect().await,
            Err(error) => Err(error),
        };
        match events {
            Ok(events) => {
                return Fate::Finished {
                    starts: events
                        .iter()
                        .filter(|event| event.data.event == RunEventKind::Running)
                        .count(),
                }
            }
            Err(error) => last_error = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Fate::Unreadable(format!("its events: {last_error}"))
}
