//! One active scheduler at a time: a lease in a NATS key-value bucket.
//!
//! Every scheduler tries to create the key `active` in the bucket `<PREFIX>_SCHEDULER`; the
//! one that does is active and renews it (an update that expects the revision it holds) every
//! fifth of the lease. The bucket's entries live for one lease (`max_age`), so the key of an
//! active scheduler that died disappears within a lease, and a standby, trying every renewal
//! interval, creates it and takes over. An active scheduler that could not renew for three
//! fifths of the lease, or found the key taken, stops acting before anyone else can start:
//! at most one releases runs at any moment, as long as clocks tick at the same rate.
//! A scheduler that stops deletes its key, so a standby takes over at its next try.

use std::time::Duration;

use async_nats::jetstream::kv;
use coderun_bus::{async_nats, Bus};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The key the active scheduler holds.
const KEY: &str = "active";

/// The lease in NATS.
pub struct Lease {
    store: kv::Store,
    /// This scheduler's id, the key's value while it is active.
    holder: String,
    /// How long the key lives without a renewal.
    lease: Duration,
}

impl Lease {
    /// Opens (or creates) the bucket.
    pub async fn open(bus: &Bus, holder: String, lease: Duration) -> anyhow::Result<Self> {
        let jetstream = bus.jetstream();
        let bucket = bus.names().scheduler_lease_bucket();
        // The bucket's stream is made as the key-value convention has it, with `create_stream`:
        // the client's own bucket creation first reads the account's limits, which it cannot
        // parse from the NATS 2.9 of Debian.
        let config = async_nats::jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("the active scheduler's lease".to_owned()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: lease,
            storage: async_nats::jetstream::stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: async_nats::jetstream::stream::DiscardPolicy::New,
            ..Default::default()
        };
        if let Err(error) = jetstream.get_or_create_stream(config).await {
            // Another scheduler may have made it meanwhile; the read below says.
            tracing::debug!(%error, "creating the lease bucket failed");
        }
        let store = jetstream.get_key_value(&bucket).await.map_err(|error| {
            anyhow::anyhow!("failed to open the lease bucket {bucket}: {error}")
        })?;
        Ok(Self {
            store,
            holder,
            lease,
        })
    }

    /// How often the holder renews, and a standby tries.
    pub fn renew_every(&self) -> Duration {
        self.lease / 5
    }

    /// Waits until this scheduler holds the lease (its revision), or `None` at `shutdown`.
    pub async fn acquire(&self, shutdown: &CancellationToken) -> Option<u64> {
        loop {
            match self.store.create(KEY, self.holder.clone().into()).await {
                Ok(revision) => return Some(revision),
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(error) => tracing::warn!(%error, "failed to try for the scheduler lease"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(self.renew_every()) => {}
            }
        }
    }

    /// Renews the lease from `revision` until `stop`, or until it is lost: then `lost` is
    /// cancelled. Deletes the key when stopped while still holding it.
    pub async fn keep(&self, mut revision: u64, stop: CancellationToken, lost: CancellationToken) {
        // Acting stops well before the key can expire for the others.
        let give_up_after = self.lease * 3 / 5;
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(self.renew_every()) => {}
            }
            match self
                .store
                .update(KEY, self.holder.clone().into(), revision)
                .await
            {
                Ok(next) => {
                    revision = next;
                    renewed = Instant::now();
                }
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    tracing::error!(
                        "the scheduler lease was taken by another scheduler; standing by"
                    );
                    lost.cancel();
                    return;
                }
                Err(error) => tracing::warn!(%error, "failed to renew the scheduler lease"),
            }
            if renewed.elapsed() >= give_up_after {
                tracing::error!("the scheduler lease could not be renewed in time; standing by");
                lost.cancel();
                return;
            }
        }
        if let Err(error) = self.store.delete_expect_revision(KEY, Some(revision)).await {
            tracing::warn!(%error, "failed to hand the scheduler lease back");
        }
    }
}
