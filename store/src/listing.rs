//! A tenant's runs, newest first, a page at a time.
//!
//! The index is a sorted set of run ids, all of score 0, so Redis orders it by the ids
//! themselves: `run_<ULID>`, and a ULID's text sorts by its creation time. A page is read
//! with `ZREVRANGEBYLEX` from just below the cursor (the last id of the previous page), then
//! the records with one `MGET`. Ids older than the records' lifetime are dropped when a run is
//! added; a record that expired meanwhile is skipped.

use std::time::{Duration, SystemTime};

use coderun_schema::messages::RunRecord;

use crate::{webhooks, RunStore, StoreError};

/// The smallest run id a run created `ttl` ago could have: every id below it has expired.
pub(crate) fn oldest_living_id(ttl: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let oldest = now.saturating_sub(ttl).as_millis() as u64;
    format!("run_{}", ulid::Ulid::from_parts(oldest, 0))
}

/// One page of a tenant's runs.
#[derive(Debug, Clone, Default)]
pub struct RunPage {
    /// Newest first.
    pub records: Vec<RunRecord>,
    /// The id to pass as the next page's cursor, when older runs follow.
    pub next_cursor: Option<String>,
}

impl RunStore {
    /// Up to `limit` of `tenant`'s runs older than `cursor` (or the newest), newest first.
    pub async fn list(
        &self,
        tenant: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RunPage, StoreError> {
        let mut connection = self.connection.clone();
        let below = cursor.map_or_else(|| "+".to_owned(), |id| format!("({id}"));
        let mut ids: Vec<String> = redis::cmd("ZREVRANGEBYLEX")
            .arg(self.names.tenant_runs_key(tenant))
            .arg(below)
            .arg("-")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1)
            .query_async(&mut connection)
            .await?;
        let more = ids.len() > limit;
        ids.truncate(limit);
        if ids.is_empty() {
            return Ok(RunPage::default());
        }
        let keys: Vec<String> = ids
            .iter()
            .flat_map(|id| [self.names.run_key(id), self.names.run_webhook_key(id)])
            .collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await?;
        let mut records = Vec::new();
        let mut values = values.into_iter();
        while let (Some(record), Some(webhook)) = (values.next(), values.next()) {
            records.extend(webhooks::merged(record, webhook)?);
        }
        Ok(RunPage {
            records,
            next_cursor: more.then(|| ids.last().cloned()).flatten(),
        })
    }
}

impl RunStore {
    /// The ids of every tenant's runs in `status` (`queued` or `running`), created before
    /// `created_before` (Unix milliseconds) when given; read from the tenants' queued and
    /// running sets, found with `SCAN`. Any other status has no such set: none.
    pub async fn runs_in_state(
        &self,
        status: coderun_schema::run::RunStatus,
        created_before: Option<u64>,
    ) -> Result<Vec<String>, StoreError> {
        use coderun_schema::run::RunStatus;
        let pattern = match status {
            RunStatus::Queued => self.names.tenant_queued_key("*"),
            RunStatus::Running => self.names.tenant_running_key("*"),
            _ => return Ok(Vec::new()),
        };
        let mut connection = self.connection.clone();
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await?;
            keys.extend(found);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let upper = created_before.map_or("+inf".to_owned(), |before| format!("({before}"));
        let mut ids = Vec::new();
        for key in keys {
            let found: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(&upper)
                .query_async(&mut connection)
                .await?;
            ids.extend(found);
        }
        Ok(ids)
    }
}
