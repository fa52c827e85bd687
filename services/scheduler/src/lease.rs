//! One active scheduler at a time: a lease in a NATS key-value bucket.
//!
//! Every scheduler tries to create the key `active` in the bucket `<PREFIX>_SCHEDULER`; the
//! one that does is active and renews it (an update that expects the revision it holds) every
//! fifth of the lease. The bucket's entries live for one lease (`max_age`), so the key of an
//! active scheduler that died disappears within a lease, and a standby, trying every renewal
//! interval, creates it and takes over.
//!
//! The holder trusts its lease for three fifths of the lease after it sent its last successful
//! renewal (a renewal that takes longer is abandoned). [`LeaseGuard::holds`] says whether that
//! time is still running; the releaser asks before every step that changes a queue or
//! publishes a job, so a holder that lost the lease stops acting before anyone else can start,
//! as long as clocks tick at the same rate. A scheduler that stops deletes its key, so a
//! standby takes over at its next try.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{kv, stream};
use coderun_bus::{async_nats, Bus};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The key the active scheduler holds.
const KEY: &str = "active";

/// Until when this scheduler may act on its lease.
#[derive(Clone, Default)]
pub struct LeaseGuard {
    valid_until: Arc<Mutex<Option<Instant>>>,
}

impl LeaseGuard {
    /// Whether the lease is still this scheduler's to act on.
    pub fn holds(&self) -> bool {
        let valid_until = *self
            .valid_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        valid_until.is_some_and(|until| Instant::now() < until)
    }

    fn set(&self, until: Option<Instant>) {
        *self
            .valid_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = until;
    }
}

/// The lease in NATS.
pub struct Lease {
    store: kv::Store,
    /// This scheduler's id, the key's value while it is active.
    holder: String,
    /// How long the key lives without a renewal.
    lease: Duration,
    pub guard: LeaseGuard,
}

impl Lease {
    /// Opens (or creates) the bucket, with entries living one lease.
    pub async fn open(bus: &Bus, holder: String, lease: Duration) -> anyhow::Result<Self> {
        let jetstream = bus.jetstream();
        let bucket = bus.names().scheduler_lease_bucket();
        // The bucket's stream is made as the key-value convention has it, with
        // `create_stream`: the client's own bucket creation first reads the account's limits,
        // which it cannot parse from the NATS 2.9 of Debian.
        let config = stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("the active scheduler's lease".to_owned()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: lease,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: bus.stream_replicas(),
            ..Default::default()
        };
        match jetstream.get_or_create_stream(config.clone()).await {
            // A bucket made with another lease: entries must live exactly one lease.
            Ok(mut existing) => {
                let replicas = existing.cached_info().config.num_replicas;
                bus.warn_if_fewer_replicas(&config.name, replicas);
                let current = existing.info().await.map(|info| info.config.max_age);
                if current.is_ok_and(|max_age| max_age != lease) {
                    // Only the entries' lifetime changes: the bucket keeps its copies.
                    let config = stream::Config {
                        num_replicas: replicas,
                        ..config
                    };
                    jetstream.update_stream(config).await.map_err(|error| {
                        anyhow::anyhow!(
                            "failed to set the lease bucket {bucket} to {lease:?}: {error}"
                        )
                    })?;
                }
            }
            // Another scheduler may have made it meanwhile; the read below says.
            Err(error) => {
                tracing::warn!(%error, "creating the lease bucket failed (another scheduler may have made it)")
            }
        }
        let store = jetstream.get_key_value(&bucket).await.map_err(|error| {
            anyhow::anyhow!("failed to open the lease bucket {bucket}: {error}")
        })?;
        Ok(Self {
            store,
            holder,
            lease,
            guard: LeaseGuard::default(),
        })
    }

    /// How often the holder renews, and a standby tries.
    pub fn renew_every(&self) -> Duration {
        self.lease / 5
    }

    /// How long after sending a renewal the holder may act on it.
    fn trusted_for(&self) -> Duration {
        self.lease * 3 / 5
    }

    /// Waits until this scheduler holds the lease (its revision), or `None` at `shutdown`.
    pub async fn acquire(&self, shutdown: &CancellationToken) -> Option<u64> {
        loop {
            let sent = Instant::now();
            match self.store.create(KEY, self.holder.clone().into()).await {
                Ok(revision) => {
                    self.guard.set(Some(sent + self.trusted_for()));
                    return Some(revision);
                }
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                    // Still its own key, after it gave up over a blip: take it back.
                    if let Some(revision) = self.own_key().await {
                        self.guard.set(Some(sent + self.trusted_for()));
                        return Some(revision);
                    }
                }
                Err(error) => tracing::warn!(%error, "failed to try for the scheduler lease"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(self.renew_every()) => {}
            }
        }
    }

    /// The key renewed, when its value is this scheduler's.
    async fn own_key(&self) -> Option<u64> {
        let entry = self.store.entry(KEY).await.ok()??;
        if entry.value != self.holder.as_bytes() {
            return None;
        }
        let update = self
            .store
            .update(KEY, self.holder.clone().into(), entry.revision);
        update.await.ok()
    }

    /// Renews the lease from `revision` until `stop`, or until it is lost: then `lost` is
    /// cancelled. Deletes the key when stopped while still holding it.
    pub async fn keep(&self, mut revision: u64, stop: CancellationToken, lost: CancellationToken) {
        let mut renewed_at = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(self.renew_every()) => {}
            }
            let sent = Instant::now();
            let left = (renewed_at + self.trusted_for()).saturating_duration_since(sent);
            let update = self.store.update(KEY, self.holder.clone().into(), revision);
            match tokio::time::timeout(left, update).await {
                Ok(Ok(next)) => {
                    revision = next;
                    renewed_at = sent;
                    self.guard.set(Some(sent + self.trusted_for()));
                }
                Ok(Err(error)) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    tracing::error!(
                        "the scheduler lease was taken by another scheduler; standing by"
                    );
                    self.guard.set(None);
                    lost.cancel();
                    return;
                }
                Ok(Err(error)) => tracing::warn!(%error, "failed to renew the scheduler lease"),
                Err(_) => tracing::warn!("renewing the scheduler lease took too long"),
            }
            if !self.guard.holds() {
                tracing::error!("the scheduler lease could not be renewed in time; standing by");
                lost.cancel();
                return;
            }
        }
        self.guard.set(None);
        if let Err(error) = self.store.delete_expect_revision(KEY, Some(revision)).await {
            tracing::warn!(%error, "failed to hand the scheduler lease back");
        }
    }
}
