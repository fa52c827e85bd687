//! The webhook signature: `X-Coderun-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
//! HMAC-SHA256, keyed with the tenant's secret, of the timestamp, a dot and the exact body.
//! A receiver recomputes it over the raw body, compares in constant time, and refuses a
//! timestamp too far from its own clock (replays).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header's name.
pub const HEADER: &str = "X-Coderun-Signature";

/// The header's value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac_sha256() {
        // HMAC-SHA256(key = "whsec_test_secret_0001", "1700000000.{\"id\":\"run_1\"}"), as
        // computed by `openssl dgst -sha256 -hmac`.
        let header = sign(
            b"whsec_test_secret_0001",
            1_700_000_000,
            br#"{"id":"run_1"}"#,
        );
        assert_eq!(
            header,
            "t=1700000000,v1=15899488025634730b0e1bf588ffc92cdce2b2abc3ee5dd20adeda6c4412846c"
        );
    }

    #[test]
    fn any_change_to_the_body_time_or_secret_changes_it() {
        let base = sign(b"secret-one-000000", 1, b"body");
        assert_ne!(base, sign(b"secret-one-000000", 1, b"bodY"));
        assert_ne!(base, sign(b"secret-one-000000", 2, b"body"));
        assert_ne!(base, sign(b"secret-two-000000", 1, b"body"));
    }
}
