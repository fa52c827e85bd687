//! One delivery attempt: the target checked where it will actually be connected to, then one
//! POST.
//!
//! A name is resolved here, at delivery, and every address it resolves to must be public
//! (`coderun_schema::callback`). The HTTP client's own resolver is [`CheckedResolver`]: whatever
//! name the client looks up (`evil.example.` with its trailing dot included) comes back with
//! checked addresses only, so a name that resolves differently between the check and the
//! connection (DNS rebinding) still cannot reach an internal address. Redirects are not
//! followed and no proxy is used. Only an exact `host:port` on the operator's allow-list skips
//! the address check. Refusals name no address: the tenant learns nothing about the network
//! behind the scheduler.

use std::net::SocketAddr;
use std::sync::Arc;
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
    if let Err(outcome) = check_target(delivery).await {
        return outcome;
    }
    let target = delivery.target;
    let resolver = CheckedResolver {
        check: !target.is_allowed(delivery.allow),
        timeout: delivery.timeout,
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(delivery.timeout)
        .connect_timeout(delivery.timeout)
        .dns_resolver(Arc::new(resolver))
        .user_agent(concat!("coderun-webhooks/", env!("CARGO_PKG_VERSION")))
        .build();
    let client = match client {
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
        // The resolver refused what the name resolves to now (it changed since the check).
        Err(error) if refused_by_resolver(&error) => Outcome::Refused(REFUSED_NAME.to_owned()),
        Err(error) => Outcome::Failed(describe(&error)),
    }
}

/// Why a name is refused; which address it resolved to is not said.
const REFUSED_NAME: &str = "callback_url resolves to an address that is not public";

/// The client's resolver: a name's addresses, every one checked unless the target is allowed.
struct CheckedResolver {
    check: bool,
    timeout: Duration,
}

/// A resolution refused because an address is not public.
#[derive(Debug, thiserror::Error)]
#[error("{REFUSED_NAME}")]
struct RefusedAddress;

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (check, timeout) = (self.check, self.timeout);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let lookup = tokio::net::lookup_host((host.as_str(), 0));
            let addresses: Vec<SocketAddr> = tokio::time::timeout(timeout, lookup)
                .await
                .map_err(|_| format!("resolving {host} timed out"))??
                .collect();
            if check
                && addresses
                    .iter()
                    .any(|address| check_address(address.ip()).is_err())
            {
                return Err(Box::new(RefusedAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn refused_by_resolver(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<RefusedAddress>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Refuses a target whose address is not public, as far as it can be known before
/// connecting (the resolver checks again on the connection itself).
async fn check_target(delivery: &Delivery<'_>) -> Result<(), Outcome> {
    let target = delivery.target;
    if target.is_allowed(delivery.allow) {
        return Ok(());
    }
    if let Some(ip) = target.ip {
        return check_address(ip).map_err(Outcome::Refused);
    }
    target
        .check_literal(delivery.allow)
        .map_err(Outcome::Refused)?;
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let addresses: Vec<SocketAddr> = match tokio::time::timeout(delivery.timeout, lookup).await {
        Ok(Ok(addresses)) => addresses.collect(),
        Ok(Err(_)) => return Err(Outcome::Failed(format!("{} does not resolve", target.host))),
        Err(_) => {
            return Err(Outcome::Failed(format!(
                "resolving {} timed out",
                target.host
            )))
        }
    };
    if addresses.is_empty() {
        return Err(Outcome::Failed(format!("{} has no address", target.host)));
    }
    if addresses
        .iter()
        .any(|address| check_address(address.ip()).is_err())
    {
        return Err(Outcome::Refused(REFUSED_NAME.to_owned()));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    fn resolve(check: bool, name: &'static str) -> reqwest::dns::Resolving {
        let resolver = CheckedResolver {
            check,
            timeout: Duration::from_secs(5),
        };
        resolver.resolve(name.parse().expect("a name"))
    }

    #[tokio::test]
    async fn the_clients_resolver_refuses_internal_addresses_however_the_name_is_written() {
        for name in ["localhost", "LOCALHOST"] {
            let error = resolve(true, name).await.err().expect(name);
            assert!(error.is::<RefusedAddress>(), "{name}: {error}");
        }
        // With its trailing dot the name may not resolve at all here (no DNS): never to an
        // address that is let through.
        assert!(resolve(true, "localhost.").await.is_err());
        // An allowed target's name resolves as it is.
        let addresses: Vec<SocketAddr> = resolve(false, "localhost")
            .await
            .expect("resolves")
            .collect();
        assert!(
            addresses.iter().all(|address| address.ip().is_loopback()),
            "{addresses:?}"
        );
    }
}
