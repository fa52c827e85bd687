//! A run's event log: a Redis list of `RunEvent` JSON, oldest first, expiring with the record.
//! State changes are appended by the record scripts (`records`); progress (`compiled`, `test`)
//! is appended here. An event's place in the list, from 1, is its `seq`: the id a client
//! resumes a stream from.

use coderun_schema::messages::RunEvent;

use crate::{RunStore, StoreError};

/// KEYS: record, events. ARGV: event. Appends only while the record exists and its log has
/// not ended (`completed` is always the last event), with the record's lifetime. Returns the
/// event's place (0 when nothing was appended).
pub(crate) const APPEND: &str = r#"
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
local last = redis.call('LINDEX', KEYS[2], -1)
if last and string.find(last, '"kind":"completed"', 1, true) then return 0 end
local seq = redis.call('RPUSH', KEYS[2], ARGV[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return seq
"#;

/// The most events read in one go.
const PAGE: isize = 256;

impl RunStore {
    /// Appends a progress event to a run's log; returns it with its `seq`, or `None` when the
    /// run's record is gone.
    pub async fn append_event(&self, mut event: RunEvent) -> Result<Option<RunEvent>, StoreError> {
        let mut connection = self.connection.clone();
        let encoded = serde_json::to_string(&event)?;
        let seq: u64 = self
            .append_script
            .key(self.names.run_key(&event.run_id))
            .key(self.names.run_events_key(&event.run_id))
            .arg(encoded)
            .invoke_async(&mut connection)
            .await?;
        if seq == 0 {
            return Ok(None);
        }
        event.seq = Some(seq);
        Ok(Some(event))
    }

    /// The last event of a run's log, with its `seq`, if the log has any.
    pub async fn last_event(&self, run_id: &str) -> Result<Option<RunEvent>, StoreError> {
        let mut connection = self.connection.clone();
        let key = self.names.run_events_key(run_id);
        let (length, last): (u64, Option<String>) = redis::pipe()
            .cmd("LLEN")
            .arg(&key)
            .cmd("LINDEX")
            .arg(&key)
            .arg(-1)
            .query_async(&mut connection)
            .await?;
        let Some(last) = last else {
            return Ok(None);
        };
        let mut event: RunEvent = serde_json::from_str(&last)?;
        event.seq = Some(length);
        Ok(Some(event))
    }

    /// The events of a run's log after the first `after`, in order, each with its `seq`
    /// (at most a few hundred; ask again from the last one for more).
    pub async fn events_after(
        &self,
        run_id: &str,
        after: u64,
    ) -> Result<Vec<RunEvent>, StoreError> {
        let mut connection = self.connection.clone();
        let start = isize::try_from(after).unwrap_or(isize::MAX);
        let stop = start.saturating_add(PAGE - 1);
        let values: Vec<String> = redis::cmd("LRANGE")
            .arg(self.names.run_events_key(run_id))
            .arg(start)
            .arg(stop)
            .query_async(&mut connection)
            .await?;
        values
            .iter()
            .zip(after.saturating_add(1)..)
            .map(|(value, seq)| {
                let mut event: RunEvent = serde_json::from_str(value)?;
                event.seq = Some(seq);
                Ok(event)
            })
            .collect()
    }
}
