//! The scheduler's fair queues: per pool, one list of run ids per tenant, the tenants with runs
//! waiting, and the runs being released to the jobs stream.
//!
//! A run goes through three places, each step one script, so a scheduler that dies between two
//! steps leaves every run somewhere a successor looks:
//! 1. [`FairQueues::enqueue`]: into its tenant's list (once: the pool's `queued` set guards it);
//! 2. [`FairQueues::take`]: off the list into `releasing` (run id → pool);
//! 3. [`FairQueues::released`]: out of `releasing`, once its job is stored in the jobs stream.
//!
//! [`FairQueues::releasing`] lists what step 3 has not seen: a scheduler that takes over
//! publishes those jobs again (the jobs stream's duplicate window and the executor's check of
//! the record keep a job from running twice).
//!
//! Step 3 (and a run released straight from the submit stream) leaves a marker beside the
//! record, living as long as it: a submission delivered again after its run was released is
//! not queued a second time, whenever it comes. The scripts answer each pool's backlog as
//! they change it, so the scheduler's count never drifts from Redis's.

use std::collections::BTreeMap;

use coderun_schema::names::Names;

use crate::counted::CountedConnection;
use crate::StoreError;

/// KEYS: pool's queued set, tenant's list, pool's waiting tenants, the run's released marker,
/// the pools with queues. ARGV: run id, tenant, now (ms), pool. {1 if queued (0 if it was
/// queued or released already), the pool's backlog}.
const ENQUEUE: &str = r"
local queued = 0
if redis.call('EXISTS', KEYS[4]) == 0 and redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], 'NX', tonumber(ARGV[3]), ARGV[2])
  redis.call('SADD', KEYS[5], ARGV[4])
  queued = 1
end
return {queued, redis.call('SCARD', KEYS[1])}
";

/// KEYS: tenant's list, pool's waiting tenants, pool's queued set, releasing. ARGV: tenant,
/// pool. {the run id taken, or false when the tenant had none (it no longer waits then), the
/// pool's backlog}.
const TAKE: &str = r"
local id = redis.call('LPOP', KEYS[1])
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
if id then
  redis.call('SREM', KEYS[3], id)
  redis.call('HSET', KEYS[4], id, ARGV[2])
end
return {id, redis.call('SCARD', KEYS[3])}
";

/// KEYS: releasing, the run's released marker. ARGV: run id, the marker's life (s).
const RELEASED: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[2]))
return 1
";

/// The fair queues under one prefix.
#[derive(Clone)]
pub struct FairQueues {
    connection: CountedConnection,
    names: Names,
    /// How long a released marker lives: as long as a run record.
    ttl: std::time::Duration,
    enqueue_script: redis::Script,
    take_script: redis::Script,
    released_script: redis::Script,
}

impl FairQueues {
    pub(crate) fn new(
        connection: CountedConnection,
        names: Names,
        ttl: std::time::Duration,
    ) -> Self {
        Self {
            connection,
            names,
            ttl,
            enqueue_script: redis::Script::new(ENQUEUE),
            take_script: redis::Script::new(TAKE),
            released_script: redis::Script::new(RELEASED),
        }
    }

    /// Puts `run_id` at the back of `tenant`'s queue in `pool`, unless it is queued or was
    /// released already; whether it was queued now, and the pool's backlog.
    pub async fn enqueue(
        &self,
        pool: &str,
        tenant: &str,
        run_id: &str,
    ) -> Result<(bool, u64), StoreError> {
        let mut connection = self.connection.clone();
        let (queued, backlog): (i64, u64) = self
            .enqueue_script
            .key(self.names.pool_queued_key(pool))
            .key(self.names.pool_queue_key(pool, tenant))
            .key(self.names.pool_waiting_key(pool))
            .key(self.names.run_released_key(run_id))
            .key(self.names.pools_queued_key())
            .arg(run_id)
            .arg(tenant)
            .arg(crate::records::unix_millis())
            .arg(pool)
            .invoke_async(&mut connection)
            .await?;
        Ok((queued == 1, backlog))
    }

    /// Every pool that has had runs queued (its queues may be empty now).
    pub async fn pools(&self) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection.clone();
        let pools: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.names.pools_queued_key())
            .query_async(&mut connection)
            .await?;
        Ok(pools)
    }

    /// The tenants with runs waiting in `pool`, those waiting longest first.
    pub async fn waiting(&self, pool: &str) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection.clone();
        let tenants: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.names.pool_waiting_key(pool))
            .arg(0)
            .arg(-1)
            .query_async(&mut connection)
            .await?;
        Ok(tenants)
    }

    /// Takes the oldest of `tenant`'s runs in `pool` into `releasing` (`None` when it has
    /// none), and the pool's backlog after it.
    pub async fn take(
        &self,
        pool: &str,
        tenant: &str,
    ) -> Result<(Option<String>, u64), StoreError> {
        let mut connection = self.connection.clone();
        let taken: (Option<String>, u64) = self
            .take_script
            .key(self.names.pool_queue_key(pool, tenant))
            .key(self.names.pool_waiting_key(pool))
            .key(self.names.pool_queued_key(pool))
            .key(self.names.releasing_key())
            .arg(tenant)
            .arg(pool)
            .invoke_async(&mut connection)
            .await?;
        Ok(taken)
    }

    /// `run_id`'s job is stored in the jobs stream, or the run needs none any more: out of
    /// `releasing`, and marked released so that it is never queued again.
    pub async fn released(&self, run_id: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: i64 = self
            .released_script
            .key(self.names.releasing_key())
            .key(self.names.run_released_key(run_id))
            .arg(run_id)
            .arg(self.ttl.as_secs().max(1))
            .invoke_async(&mut connection)
            .await?;
        Ok(())
    }

    /// Forgets that `run_id` was released, so that it can be queued again: its job was lost.
    pub async fn forget_release(&self, run_id: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(self.names.run_released_key(run_id))
            .query_async(&mut connection)
            .await?;
        Ok(())
    }

    /// Runs taken off a queue whose release was not confirmed: run id → pool.
    pub async fn releasing(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut connection = self.connection.clone();
        let releasing: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(self.names.releasing_key())
            .query_async(&mut connection)
            .await?;
        Ok(releasing)
    }

    /// When the oldest run waiting in `pool`'s queues was created (Unix milliseconds, read
    /// from the ULID in its id); `None` when none waits.
    pub async fn oldest(&self, pool: &str) -> Result<Option<u64>, StoreError> {
        let mut connection = self.connection.clone();
        let mut oldest: Option<u64> = None;
        for tenant in self.waiting(pool).await? {
            let head: Option<String> = redis::cmd("LINDEX")
                .arg(self.names.pool_queue_key(pool, &tenant))
                .arg(0)
                .query_async(&mut connection)
                .await?;
            let created = head
                .as_deref()
                .and_then(|id| id.strip_prefix("run_"))
                .and_then(|ulid| ulid::Ulid::from_string(ulid).ok())
                .map(|ulid| ulid.timestamp_ms());
            oldest = match (oldest, created) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(oldest)
    }

    /// Whether `run_id` waits in one of `pool`'s queues.
    pub async fn is_queued(&self, pool: &str, run_id: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let member: bool = redis::cmd("SISMEMBER")
            .arg(self.names.pool_queued_key(pool))
            .arg(run_id)
            .query_async(&mut connection)
            .await?;
        Ok(member)
    }

    /// Runs waiting in `pool`'s queues.
    pub async fn backlog(&self, pool: &str) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        let size: u64 = redis::cmd("SCARD")
            .arg(self.names.pool_queued_key(pool))
            .query_async(&mut connection)
            .await?;
        Ok(size)
    }
}
