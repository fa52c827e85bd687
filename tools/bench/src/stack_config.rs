//! The configuration files of the bench's own stack: one prefix for NATS, Redis and Docker
//! that no other stack uses, free ports, a tenant with a random key and no rate or
//! concurrency limits, an executor uid range of its own, and a prober that stays idle after
//! its first round.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

/// The tenant the bench sends its runs as.
pub const TENANT: &str = "bench";
/// Seconds between two prober rounds: longer than any bench, so it idles after its first.
const PROBER_INTERVAL_SECS: u64 = 86_400;

/// Everything the four services' files are made from.
#[derive(Debug, Clone)]
pub struct StackSettings {
    /// `bench_<random>`: NATS subjects and streams, Redis keys, container names and labels.
    pub prefix: String,
    /// The tenant's key (only its SHA-256 goes to the gateway's file).
    pub api_key: String,
    pub nats_url: String,
    pub redis_url: String,
    pub agent: PathBuf,
    pub slots: u32,
    pub ports: Ports,
    /// The first uid of the executor's program users, a range no other stack uses.
    pub first_program_uid: u32,
}

/// The ports the stack listens on, found free by binding port 0.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub gateway: u16,
    pub scheduler_ops: u16,
    pub executor_ops: u16,
    pub prober_ops: u16,
    /// Never bound (the prober's webhook check is off) but given a free port all the same.
    pub prober_webhook: u16,
}

impl Ports {
    /// Five ports free right now (held together while they are picked, so all differ).
    pub fn free() -> std::io::Result<Self> {
        let listeners = (0..5)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()?;
        let ports = listeners
            .iter()
            .map(|listener| listener.local_addr().map(|address| address.port()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            gateway: ports[0],
            scheduler_ops: ports[1],
            executor_ops: ports[2],
            prober_ops: ports[3],
            prober_webhook: ports[4],
        })
    }
}

impl StackSettings {
    /// Fresh settings: a random prefix, key and uid range, free ports.
    pub fn new(nats_url: &str, redis_url: &str, agent: &Path, slots: u32) -> std::io::Result<Self> {
        let random: [u8; 8] = rand::random();
        let uid_block = u32::from(u16::from_le_bytes([random[0], random[1]]));
        Ok(Self {
            prefix: format!("bench_{}", hex::encode(&random[2..])),
            api_key: format!("cr_bench_{}", hex::encode(rand::random::<[u8; 24]>())),
            nats_url: nats_url.to_owned(),
            redis_url: redis_url.to_owned(),
            agent: agent.to_owned(),
            slots,
            ports: Ports::free()?,
            // Far above the ranges of scripts/up.sh (60000) and the tests (from 200000).
            first_program_uid: 1_000_000_000 + uid_block * 1024,
        })
    }

    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.gateway)
    }

    fn connections(&self) -> String {
        format!(
            "[bus]\nurl = {}\nprefix = {}\n\n[store]\nurl = {}\n",
            quoted(&self.nats_url),
            quoted(&self.prefix),
            quoted(&self.redis_url)
        )
    }

    /// The gateway's file: its port, the connections, and the bench's tenant.
    pub fn gateway(&self) -> String {
        let hash = hex::encode(sha2::Sha256::digest(self.api_key.as_bytes()));
        format!(
            "{}run_ttl_secs = 3600\n\n[http]\nhost = \"127.0.0.1\"\nport = {}\n\n\
             [[tenants]]\nid = {}\nkey_sha256 = [{}]\n",
            self.connections(),
            self.ports.gateway,
            quoted(TENANT),
            quoted(&hash)
        )
    }

    pub fn scheduler(&self) -> String {
        format!(
            "{}\n[ops]\nhost = \"127.0.0.1\"\nport = {}\n",
            self.connections(),
            self.ports.scheduler_ops
        )
    }

    pub fn executor(&self) -> String {
        format!(
            "{}\n[worker]\nslots = {}\n\n[sandbox]\nagent_path = {}\nfirst_program_uid = {}\n\n\
             [ops]\nhost = \"127.0.0.1\"\nport = {}\n",
            self.connections(),
            self.slots,
            quoted(&self.agent.to_string_lossy()),
            self.first_program_uid,
            self.ports.executor_ops
        )
    }

    /// The prober's file: the gateway and key, python only (a short first round), and an
    /// interval longer than the bench.
    pub fn prober(&self) -> String {
        format!(
            "[target]\nbase_url = {}\napi_key = {}\n\n[probe]\ninterval_secs = {}\n\
             languages = [\"python\"]\n\n[ops]\nhost = \"127.0.0.1\"\nport = {}\n\n\
             [webhook]\nhost = \"127.0.0.1\"\nport = {}\n",
            quoted(&self.gateway_url()),
            quoted(&self.api_key),
            PROBER_INTERVAL_SECS,
            self.ports.prober_ops,
            self.ports.prober_webhook
        )
    }
}

/// A TOML string, escaped.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_toml_and_the_gateway_holds_only_the_keys_hash() {
        let settings = StackSettings::new(
            "nats://127.0.0.1:4222",
            "redis://127.0.0.1:6379",
            Path::new("/opt/agent \"x\""),
            4,
        )
        .expect("free ports");
        for file in [
            settings.gateway(),
            settings.scheduler(),
            settings.executor(),
            settings.prober(),
        ] {
            toml::from_str::<toml::Table>(&file).expect("valid TOML");
        }
        let gateway: toml::Table = toml::from_str(&settings.gateway()).expect("TOML");
        let tenant = &gateway["tenants"][0];
        assert_eq!(tenant["id"].as_str(), Some(TENANT));
        assert_eq!(tenant["key_sha256"][0].as_str().map(str::len), Some(64));
        assert!(!settings.gateway().contains(&settings.api_key));
        assert!(settings.prefix.starts_with("bench_"));
    }
}
