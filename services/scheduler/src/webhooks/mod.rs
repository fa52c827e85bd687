//! Webhooks: each finished run with a `callback_url` is POSTed to it, signed with its tenant's
//! secret ([`signature`]), to an address checked at delivery ([`attempt`]), and retried with
//! exponential backoff and jitter until a 2xx answer or `give_up_after_secs` after the run
//! ended. Every attempt's outcome is recorded beside the run (`webhook: {attempts,
//! last_status, delivered, error}`), so its owner can see it.
//!
//! Work comes from the webhooks stream (`WebhookDue`, one per run), pulled by a durable
//! consumer. A delivery slot is held for one attempt only: after a failure the status is
//! recorded and the message handed back to NATS with the backoff as its delay (NAK), so a
//! receiver that keeps failing holds no slot while it waits, and a scheduler that dies hands
//! its webhooks to another. The attempt count goes on from the recorded status. A run whose
//! webhook was delivered is never POSTed again by a redelivery; a receiver may still see a POST
//! twice if the scheduler died between its answer and the record (the `X-Coderun-Run-Id`
//! header lets it deduplicate).

pub mod attempt;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use coderun_bus::{async_nats, InProgress};
use coderun_schema::callback::CallbackTarget;
use coderun_schema::messages::WebhookDue;
use coderun_schema::run::WebhookStatus;
use coderun_store::RunStore;
use futures::StreamExt;
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tracing::Instrument as _;

use crate::config::WebhooksConfig;
use crate::metrics::SchedulerMetrics;
use attempt::{Delivery, Outcome};

/// How often a webhook in hand is reported as still in progress to NATS.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What the delivery of one webhook needs.
struct Context {
    store: RunStore,
    metrics: SchedulerMetrics,
    config: WebhooksConfig,
    shutdown: CancellationToken,
}

/// How handling one message ended.
enum Handled {
    /// Delivered, given up, or nothing to deliver: acknowledge.
    Done,
    /// Not delivered yet: hand the message back to come again after this long (a retry's
    /// backoff, or a second after a shutdown or Redis being away).
    Later(Duration),
}

/// Pulls due webhooks and delivers up to `concurrency` at once, until `shutdown`; deliveries
/// in hand are handed back to NATS then.
pub async fn run(
    store: RunStore,
    metrics: SchedulerMetrics,
    config: WebhooksConfig,
    consumer: consumer::Consumer<consumer::pull::Config>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let context = Arc::new(Context {
        store,
        metrics,
        config,
        shutdown: shutdown.clone(),
    });
    let tracker = TaskTracker::new();
    while !shutdown.is_cancelled() {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let fetched = tokio::select! {
            _ = shutdown.cancelled() => break,
            fetched = consumer.fetch().max_messages(1).expires(Duration::from_secs(1)).messages() => fetched,
        };
        let mut messages = match fetched {
            Ok(messages) => messages,
            Err(error) => {
                context.metrics.count_nats_error("fetch");
                tracing::warn!(%error, "failed to fetch due webhooks; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        match messages.next().await {
            Some(Ok(message)) => {
                let context = context.clone();
                let span = tracing::info_span!(
                    "webhook",
                    run_id = tracing::field::Empty,
                    trace_id = tracing::field::Empty
                );
                coderun_telemetry::trace::join(
                    &span,
                    coderun_bus::trace_of(message.headers.as_ref()),
                );
                tracker.spawn(
                    async move {
                        handle(&context, message).await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            Some(Err(error)) => tracing::warn!(%error, "failed to receive a due webhook"),
            None => {}
        }
    }
    tracker.close();
    tracker.wait().await;
}

async fn handle(context: &Context, message: jetstream::Message) {
    let Some(due) = coderun_bus::decode_or_term::<WebhookDue>(&message).await else {
        return;
    };
    tracing::Span::current().record("run_id", due.run_id.as_str());
    let alive = InProgress::start(&message, PROGRESS_EVERY);
    let handled = deliver(context, &due).await;
    alive.stop();
    let acked = match handled {
        Handled::Done => message.double_ack().await,
        Handled::Later(delay) => message.ack_with(AckKind::Nak(Some(delay))).await,
    };
    if let Err(error) = acked {
        tracing::warn!(%error, "failed to acknowledge a due webhook");
    }
}

/// Makes the next attempt at one run's webhook.
async fn deliver(context: &Context, due: &WebhookDue) -> Handled {
    let config = &context.config;
    let record = match context.store.get(&due.run_id).await {
        Ok(Some(record)) => record,
        Ok(None) => return Handled::Done,
        Err(error) => {
            tracing::warn!(%error, "the run could not be read; the webhook waits");
            return Handled::Later(Duration::from_secs(1));
        }
    };
    let Some(url) = record.callback_url() else {
        return Handled::Done;
    };
    let mut status = record.run.webhook.clone().unwrap_or_default();
    if status.delivered {
        return Handled::Done;
    }
    let target = match CallbackTarget::parse(url) {
        Ok(target) => target,
        Err(why) => {
            context.metrics.webhook("refused");
            return stop(context, due, status, format!("callback_url {why}")).await;
        }
    };
    let Some(secret) = config.secrets.get(&due.tenant) else {
        context.metrics.webhook("refused");
        let why = "no signing secret is configured for this tenant; webhooks are not sent";
        return stop(context, due, status, why.to_owned()).await;
    };
    let mut run = record.run;
    run.webhook = None;
    let body = serde_json::to_vec(&run).unwrap_or_default();
    status.attempts += 1;
    let delivery = Delivery {
        target: &target,
        allow: &config.allow,
        body: &body,
        secret: secret.as_bytes(),
        run_id: &due.run_id,
        attempt: status.attempts,
        timeout: Duration::from_secs(config.attempt_timeout_secs),
    };
    let outcome = tokio::select! {
        _ = context.shutdown.cancelled() => return Handled::Later(Duration::from_secs(1)),
        outcome = attempt::attempt(&delivery) => outcome,
    };
    let refused = matches!(outcome, Outcome::Refused(_));
    apply(&mut status, outcome);
    tracing::info!(attempts = status.attempts, last_status = ?status.last_status, error = ?status.error, "webhook attempt");
    if status.delivered || refused {
        context
            .metrics
            .webhook(if refused { "refused" } else { "delivered" });
        record_status(context, due, &status).await;
        return Handled::Done;
    }
    let wait = backoff(config, status.attempts);
    let give_up_at = due.at + Duration::from_secs(config.give_up_after_secs);
    if OffsetDateTime::now_utc() + wait > give_up_at {
        let why = status.error.clone().unwrap_or_default();
        let attempts = status.attempts;
        context.metrics.webhook("gave_up");
        return stop(
            context,
            due,
            status,
            format!("{why}; gave up after {attempts} attempts"),
        )
        .await;
    }
    context.metrics.webhook("failed");
    record_status(context, due, &status).await;
    Handled::Later(wait)
}

/// Records why delivery stopped for good.
async fn stop(
    context: &Context,
    due: &WebhookDue,
    mut status: WebhookStatus,
    why: String,
) -> Handled {
    tracing::warn!(%why, "webhook not delivered");
    status.error = Some(why);
    record_status(context, due, &status).await;
    Handled::Done
}

fn apply(status: &mut WebhookStatus, outcome: Outcome) {
    match outcome {
        Outcome::Answered(code) => {
            status.last_status = Some(code);
            status.delivered = (200..300).contains(&code);
            status.error = (!status.delivered).then(|| format!("the receiver answered {code}"));
        }
        Outcome::Failed(why) | Outcome::Refused(why) => {
            status.last_status = None;
            status.error = Some(why);
        }
    }
}

async fn record_status(context: &Context, due: &WebhookDue, status: &WebhookStatus) {
    if let Err(error) = context.store.set_webhook_status(&due.run_id, status).await {
        tracing::warn!(%error, "failed to record the webhook's status");
    }
}

/// The wait after `attempts` failures: `first_retry_ms` doubled each time up to
/// `max_retry_ms`, drawn at random between half of it and all of it.
fn backoff(config: &WebhooksConfig, attempts: u32) -> Duration {
    let doubled = config
        .first_retry_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(32));
    let ceiling = doubled.min(config.max_retry_ms).max(1);
    let jittered = rand::rng().random_range(ceiling.div_ceil(2)..=ceiling);
    Duration::from_millis(jittered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WebhooksConfig {
        let defaults: crate::config::Config =
            toml::from_str(crate::config::DEFAULTS).expect("defaults parse");
        WebhooksConfig {
            first_retry_ms: 1000,
            max_retry_ms: 8000,
            ..defaults.webhooks
        }
    }

    #[test]
    fn waits_double_up_to_the_ceiling_and_are_jittered_below_it() {
        let config = config();
        for (attempts, ceiling) in [
            (1, 1000),
            (2, 2000),
            (3, 4000),
            (4, 8000),
            (9, 8000),
            (80, 8000),
        ] {
            let waits: Vec<u64> = (0..200)
                .map(|_| backoff(&config, attempts).as_millis() as u64)
                .collect();
            assert!(
                waits
                    .iter()
                    .all(|wait| (ceiling / 2..=ceiling).contains(wait)),
                "attempt {attempts}: {waits:?}"
            );
            let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
            assert!(
                distinct.len() > 10,
                "attempt {attempts} is not jittered: {distinct:?}"
            );
        }
    }

    #[test]
    fn only_a_2xx_answer_counts_as_delivered() {
        let mut status = WebhookStatus::default();
        apply(&mut status, Outcome::Answered(500));
        assert_eq!((status.delivered, status.last_status), (false, Some(500)));
        apply(&mut status, Outcome::Answered(302));
        assert!(
            !status.delivered,
            "a redirect is not followed, so not a delivery"
        );
        apply(&mut status, Outcome::Failed("could not connect".to_owned()));
        assert_eq!(
            (status.last_status, status.error.as_deref()),
            (None, Some("could not connect"))
        );
        apply(&mut status, Outcome::Answered(204));
        assert_eq!((status.delivered, status.error), (true, None));
    }
}
