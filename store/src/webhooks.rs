//! A run's webhook delivery status, kept beside its record (`<prefix>:run:<id>:webhook`, same
//! lifetime) rather than in it: the record is final once the run ends, and "terminal is final"
//! stays a rule without exceptions. Reads merge it into the run ([`RunStore::get`], listing).

use coderun_schema::messages::RunRecord;
use coderun_schema::run::WebhookStatus;

use crate::{RunStore, StoreError};

/// KEYS: record, status. ARGV: status. Stored only while the record exists, expiring with it.
pub(crate) const SET_STATUS: &str = r#"
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
if ttl > 0 then redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl) else redis.call('SET', KEYS[2], ARGV[1]) end
return 1
"#;

impl RunStore {
    /// Records how delivering a run's webhook went; false when the run is gone.
    pub async fn set_webhook_status(
        &self,
        run_id: &str,
        status: &WebhookStatus,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let stored: i64 = self
            .webhook_script
            .key(self.names.run_key(run_id))
            .key(self.names.run_webhook_key(run_id))
            .arg(serde_json::to_string(status)?)
            .invoke_async(&mut connection)
            .await?;
        Ok(stored == 1)
    }
}

/// A record read with its webhook status (either may be absent).
pub(crate) fn merged(
    record: Option<String>,
    webhook: Option<String>,
) -> Result<Option<RunRecord>, StoreError> {
    let Some(record) = record else {
        return Ok(None);
    };
    let mut record: RunRecord = serde_json::from_str(&record)?;
    if let Some(webhook) = webhook {
        record.run.webhook = Some(serde_json::from_str(&webhook)?);
    }
    Ok(Some(record))
}
