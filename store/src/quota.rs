//! Per-tenant request rates, shared by every gateway through Redis: the generic cell rate
//! algorithm (GCRA), one key per tenant holding the "theoretical arrival time" of its next
//! request, on Redis's own clock so gateways' clocks need not agree.
//!
//! A tenant may send `burst` requests at once, then one every `interval`; a request that
//! comes too early is refused with how long to wait, and changes nothing.

use std::time::Duration;

use crate::{RunStore, StoreError};

/// GCRA in one step. KEYS[1]: the tenant's key. ARGV: interval and tolerance (interval ×
/// burst), in microseconds. Returns 0 when admitted, else the microseconds to wait.
pub(crate) const ADMIT: &str = r#"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - now - tolerance
if wait > 0 then return wait end
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000) + 1)
return 0
"#;

/// A tenant's request rate: `burst` at once, then `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl RunStore {
    /// Admits one request of `tenant` at `rate`, or says how long until one would be.
    pub async fn admit(&self, tenant: &str, rate: Rate) -> Result<Option<Duration>, StoreError> {
        let interval_us = (1_000_000.0 / rate.per_second).max(1.0) as u64;
        let tolerance_us = interval_us.saturating_mul(u64::from(rate.burst.max(1)));
        let mut connection = self.connection.clone();
        let wait_us: u64 = self
            .admit_script
            .key(self.names.rate_key(tenant))
            .arg(interval_us)
            .arg(tolerance_us)
            .invoke_async(&mut connection)
            .await?;
        Ok((wait_us > 0).then(|| Duration::from_micros(wait_us)))
    }
}
