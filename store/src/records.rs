//! Creating and updating run records. Each write is one Lua script, so the record, its event
//! log and its tenant's queued and running sets never disagree:
//!
//! - creating stores the record (unless its key exists), lists it among the tenant's runs,
//!   appends `queued` to its log and adds it to the tenant's queued set and its pool's — unless
//!   the tenant is at a concurrency quota or the pool at the deployment's backlog cap, checked
//!   in the same script so gateways cannot race past them;
//! - updating replaces the record unless it is terminal ("terminal is final"), appends the
//!   event given, and moves the run between the tenant's sets (and out of its pool's).
//!
//! Entries of the sets older than the records' lifetime are dropped as runs are created, so a
//! run whose record expired unfinished cannot hold a quota for ever.

use std::time::{SystemTime, UNIX_EPOCH};

use coderun_schema::messages::{RunEvent, RunEventKind, RunRecord};
use coderun_schema::names::Names;
use coderun_schema::run::RunStatus;

use crate::{listing, RunStore, StoreError, UpdateOutcome};

/// KEYS: record, tenant's runs, events, queued set, running set, pool's unstarted set. ARGV:
/// record, ttl (s), id, oldest living id, `queued` event, now (ms), max queued, max unfinished,
/// max queued in the pool (0: no limit). Returns 1 stored, 0 exists, -1 over the queued quota,
/// -2 over the concurrency quota, -3 over the pool's backlog cap.
pub(crate) const CREATE_AND_LIST: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = tonumber(ARGV[2])
local now = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - ttl * 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - ttl * 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - ttl * 1000)
local queued = redis.call('ZCARD', KEYS[4])
local running = redis.call('ZCARD', KEYS[5])
local max_queued = tonumber(ARGV[7])
local max_unfinished = tonumber(ARGV[8])
if max_queued > 0 and queued >= max_queued then return -1 end
if max_unfinished > 0 and queued + running >= max_unfinished then return -2 end
local max_backlog = tonumber(ARGV[9])
if max_backlog > 0 and redis.call('ZCARD', KEYS[6]) >= max_backlog then return -3 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('ZREMRANGEBYLEX', KEYS[2], '-', '(' .. ARGV[4])
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('RPUSH', KEYS[3], ARGV[5])
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('ZADD', KEYS[4], now, ARGV[3])
redis.call('EXPIRE', KEYS[4], ttl)
redis.call('ZADD', KEYS[6], now, ARGV[3])
redis.call('EXPIRE', KEYS[6], ttl)
return 1
"#;

/// KEYS: record, events, queued set, running set, pool's unstarted set. ARGV: record, event ('' for none), new
/// status, id, creation time (ms), the claiming job's sequence ('' for no claim). Returns
/// {outcome, seq}: outcome 1 updated, -1 terminal (left alone), 0 missing, -2 running for
/// another job (a claim refused; a run marked running by an executor that names no job, from
/// before claims, may be claimed); seq the event's place in the log (0 without one).
pub(crate) const UPDATE_UNLESS_TERMINAL: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then
  -- A record gone early (evicted, deleted) must not hold a quota or the backlog cap.
  redis.call('ZREM', KEYS[3], ARGV[4])
  redis.call('ZREM', KEYS[4], ARGV[4])
  redis.call('ZREM', KEYS[5], ARGV[4])
  return {0, 0}
end
local stored = cjson.decode(current)
local status = stored['run']['status']
if status == 'completed' or status == 'cancelled' then return {-1, 0} end
local held = stored['job_sequence']
if ARGV[6] ~= '' and status ~= 'queued' and held ~= nil and held ~= cjson.null
    and held ~= tonumber(ARGV[6]) then
  return {-2, 0}
end
if ARGV[6] ~= '' and ARGV[3] == 'running' and status == 'running'
    and held == tonumber(ARGV[6]) then
  -- The same claim again (its first reply was lost): already applied, and its `running`
  -- event is the log's last (progress is logged only once the claim is answered).
  local incoming = cjson.decode(ARGV[1])
  if incoming['run']['started_at'] == stored['run']['started_at'] then
    return {1, redis.call('LLEN', KEYS[2])}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
local seq = 0
if ARGV[2] ~= '' then
  seq = redis.call('RPUSH', KEYS[2], ARGV[2])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
if ARGV[3] == 'running' then
  redis.call('ZREM', KEYS[3], ARGV[4])
  redis.call('ZREM', KEYS[5], ARGV[4])
  redis.call('ZADD', KEYS[4], tonumber(ARGV[5]), ARGV[4])
elseif ARGV[3] ~= 'queued' then
  redis.call('ZREM', KEYS[3], ARGV[4])
  redis.call('ZREM', KEYS[5], ARGV[4])
  redis.call('ZREM', KEYS[4], ARGV[4])
end
return {1, seq}
"#;

/// The concurrency quotas a new run is checked against when it is created: its tenant's, and
/// the deployment's cap on its pool's backlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActiveQuota {
    /// The most runs of the tenant waiting for an executor at once.
    pub max_queued: Option<u32>,
    /// The most runs of the tenant accepted and not finished (queued or running) at once.
    pub max_unfinished: Option<u32>,
    /// The most runs of the run's pool (its language) waiting for an executor at once, all
    /// tenants together.
    pub max_backlog: Option<u64>,
}

/// What creating a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Stored,
    /// A record with this id exists; nothing changed.
    Exists,
    /// The tenant has `max_queued` runs waiting; nothing changed.
    OverQueued,
    /// The tenant has `max_unfinished` runs not finished; nothing changed.
    OverConcurrent,
    /// The run's pool has `max_backlog` runs waiting; nothing changed.
    OverBacklog,
}

pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

fn status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued => "queued",
        RunStatus::Running => "running",
        RunStatus::Completed => "completed",
        RunStatus::Cancelled => "cancelled",
    }
}

impl RunStore {
    /// Stores a new record and lists it among its tenant's runs; refuses to replace an
    /// existing one. Returns whether it was stored.
    pub async fn create(&self, record: &RunRecord) -> Result<bool, StoreError> {
        Ok(self.create_within(record, ActiveQuota::default()).await? == Created::Stored)
    }

    /// Stores a new record (with its `queued` event) unless its id exists or its tenant is at
    /// a quota.
    pub async fn create_within(
        &self,
        record: &RunRecord,
        quota: ActiveQuota,
    ) -> Result<Created, StoreError> {
        let mut connection = self.connection.clone();
        let value = serde_json::to_string(record)?;
        let event = serde_json::to_string(&RunEvent::with_run(&record.run, RunEventKind::Queued))?;
        let tenant = &record.tenant;
        let outcome: i64 = self
            .create_script
            .key(self.names.run_key(&record.run.id))
            .key(self.names.tenant_runs_key(tenant))
            .key(self.names.run_events_key(&record.run.id))
            .key(self.names.tenant_queued_key(tenant))
            .key(self.names.tenant_running_key(tenant))
            .key(
                self.names
                    .pool_unstarted_key(&Names::pool_of(&record.run.language)),
            )
            .arg(value)
            .arg(self.ttl.as_secs().max(1))
            .arg(&record.run.id)
            .arg(listing::oldest_living_id(self.ttl))
            .arg(event)
            .arg(unix_millis())
            .arg(quota.max_queued.unwrap_or(0))
            .arg(quota.max_unfinished.unwrap_or(0))
            .arg(quota.max_backlog.unwrap_or(0))
            .invoke_async(&mut connection)
            .await?;
        Ok(match outcome {
            1 => Created::Stored,
            -1 => Created::OverQueued,
            -2 => Created::OverConcurrent,
            -3 => Created::OverBacklog,
            _ => Created::Exists,
        })
    }

    /// Replaces a record unless the stored one is already terminal; keeps its TTL.
    pub async fn update(&self, record: &RunRecord) -> Result<UpdateOutcome, StoreError> {
        Ok(self.update_and_log(record, None).await?.0)
    }

    /// Replaces a record unless the stored one is already terminal, and appends an event of
    /// `kind` carrying the run to its log in the same step. Returns the event with its place in
    /// the log, ready to publish, when the record was updated.
    pub async fn update_and_log(
        &self,
        record: &RunRecord,
        kind: Option<RunEventKind>,
    ) -> Result<(UpdateOutcome, Option<RunEvent>), StoreError> {
        self.write(record, kind, None).await
    }

    /// Marks a run `running` for the job its `job_sequence` names, logging `running`: only if
    /// it is `queued`, or `running` for that same job (a retry of this write, or the job
    /// delivered again after its executor died). A run running for another job answers
    /// [`UpdateOutcome::HeldByAnotherJob`] and is left alone: that job is a duplicate.
    pub async fn claim_for_job(
        &self,
        record: &RunRecord,
    ) -> Result<(UpdateOutcome, Option<RunEvent>), StoreError> {
        let claim = record.job_sequence.unwrap_or(0);
        self.write(record, Some(RunEventKind::Running), Some(claim))
            .await
    }

    async fn write(
        &self,
        record: &RunRecord,
        kind: Option<RunEventKind>,
        claim: Option<u64>,
    ) -> Result<(UpdateOutcome, Option<RunEvent>), StoreError> {
        let mut connection = self.connection.clone();
        let value = serde_json::to_string(record)?;
        let mut event = kind.map(|kind| RunEvent::with_run(&record.run, kind));
        let encoded = match &event {
            Some(event) => serde_json::to_string(event)?,
            None => String::new(),
        };
        let created_ms = (record.run.created_at.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
        let (outcome, seq): (i64, u64) = self
            .update_script
            .key(self.names.run_key(&record.run.id))
            .key(self.names.run_events_key(&record.run.id))
            .key(self.names.tenant_queued_key(&record.tenant))
            .key(self.names.tenant_running_key(&record.tenant))
            .key(
                self.names
                    .pool_unstarted_key(&Names::pool_of(&record.run.language)),
            )
            .arg(value)
            .arg(encoded)
            .arg(status_name(record.run.status))
            .arg(&record.run.id)
            .arg(created_ms)
            .arg(claim.map_or(String::new(), |sequence| sequence.to_string()))
            .invoke_async(&mut connection)
            .await?;
        let outcome = match outcome {
            1 => UpdateOutcome::Updated,
            -1 => UpdateOutcome::AlreadyTerminal,
            -2 => UpdateOutcome::HeldByAnotherJob,
            _ => UpdateOutcome::Missing,
        };
        if let Some(event) = &mut event {
            event.seq = (seq > 0).then_some(seq);
        }
        Ok((outcome, event.filter(|_| outcome == UpdateOutcome::Updated)))
    }
}
