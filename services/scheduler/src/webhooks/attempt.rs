//! One delivery attempt: the target checked where it will actually be connected to, then one
//! POST to that checked address.
//!
//! A name is resolved here, at delivery, and every address it resolves to must be public
//! (`coderun_schema::callback`); the connection then goes to the first of those checked
//! addresses (the HTTP client is told to use it for that name, so it cannot resolve again and
//! get another). Redirects are not followed and no proxy is used. Only an exact `host:port` on
//! the operator's allow-list skips the address check.

use std::net::SocketAddr;
use std::time::Duration;

use coderun_schema::callback::{check_address, CallbackTarget};

use super::signature;

/// What one attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered with this status.
    Answered(u16),
    /// No answer: connection refused, timeout, TLS failure...
    Failed(String),
    /// The target may not receive webhooks; trying again cannot help.
    Refused(String),
}

/// What an attempt sends.
pub struct Delivery<'a> {
    pub target: &'a CallbackTarget,
    pub allow: &'a [String],
    pub body: &'a [u8],
    pub secret: &'a [u8],
    pub run_id: &'a str,
    pub attempt: u32,
    pub timeout: Duration,
}

/// Checks the target and POSTs the body once.
pub async fn attempt(delivery: &Delivery<'_>) -> Outcome {
    let address = match checked_address(delivery).await {
        Ok(address) => address,
        Err(outcome) => return outcome,
    };
    let target = delivery.target;
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(delivery.timeout)
        .connect_timeout(delivery.timeout)
        .user_agent(concat!("coderun-webhooks/", env!("CARGO_PKG_VERSION")));
    if target.ip.is_none() {
        builder = builder.resolve(&target.host, address);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => return Outcome::Failed(format!("no HTTP client: {error}")),
    };
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let sent = client
        .post(target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            signature::HEADER,
            signature::sign(delivery.secret, timestamp, delivery.body),
        )
        .header("X-Coderun-Run-Id", delivery.run_id)
        .header("X-Coderun-Attempt", delivery.attempt.to_string())
        .body(delivery.body.to_vec())
        .send()
        .await;
    match sent {
        Ok(response) => Outcome::Answered(response.status().as_u16()),
        Err(error) => Outcome::Failed(describe(&error)),
    }
}

/// The address to connect to, checked; `Err` with the outcome when there is none.
async fn checked_address(delivery: &Delivery<'_>) -> Result<SocketAddr, Outcome> {
    let target = delivery.target;
    let allowed = target.is_allowed(delivery.allow);
    if let Some(ip) = target.ip {
        if !allowed {
            check_address(ip).map_err(Outcome::Refused)?;
        }
        return Ok(SocketAddr::new(ip, target.port));
    }
    target
        .check_literal(delivery.allow)
        .map_err(Outcome::Refused)?;
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let addresses: Vec<SocketAddr> = match tokio::time::timeout(delivery.timeout, lookup).await {
        Ok(Ok(addresses)) => addresses.collect(),
        Ok(Err(error)) => {
            return Err(Outcome::Failed(format!(
                "{} does not resolve: {error}",
                target.host
            )))
        }
        Err(_) => {
            return Err(Outcome::Failed(format!(
                "resolving {} timed out",
                target.host
            )))
        }
    };
    if !allowed {
        for address in &addresses {
            check_address(address.ip()).map_err(|why| {
                Outcome::Refused(format!(
                    "{} resolves to {}: {why}",
                    target.host,
                    address.ip()
                ))
            })?;
        }
    }
    addresses
        .first()
        .copied()
        .ok_or_else(|| Outcome::Failed(format!("{} has no address", target.host)))
}

/// An HTTP error in a few words, with its causes.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
