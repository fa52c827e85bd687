//! Keeping a JetStream message in hand: "in progress" acknowledgements at an interval, so NATS
//! does not deliver it again while its work goes on.

use std::time::Duration;

use tracing::Instrument as _;

use async_nats::jetstream::{self, AckKind};

/// Sends in-progress acknowledgements for one message until stopped or dropped.
pub struct InProgress(tokio::task::JoinHandle<()>);

impl InProgress {
    /// Starts acknowledging `message` as in progress every `every` (the first one after
    /// `every`: the delivery itself counts as the start).
    pub fn start(message: &jetstream::Message, every: Duration) -> Self {
        let message = message.clone();
        Self(tokio::spawn(
            async move {
                let mut ticker = tokio::time::interval(every);
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    if let Err(error) = message.ack_with(AckKind::Progress).await {
                        tracing::warn!(%error, "failed to send a progress acknowledgement");
                    }
                }
            }
            .in_current_span(),
        ))
    }

    /// Stops the acknowledgements (before the message is acknowledged for good).
    pub fn stop(self) {}
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.abort();
    }
}
