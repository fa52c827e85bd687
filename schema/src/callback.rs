//! The one rule for webhook targets (`callback_url`), shared by the gateway (at creation) and
//! the scheduler (at every delivery), so a program's results can never be sent into the
//! deployment's own network.
//!
//! - The URL must be absolute `http` or `https` with a host, and carry no credentials.
//! - Its host is parsed as browsers do (WHATWG), so `0x7f000001`, `2130706433`, `0177.0.0.1`
//!   and `127.1` are all the IP address 127.0.0.1, never names.
//! - Every address the host stands for must be public: not loopback, private, link-local
//!   (cloud metadata at 169.254.169.254 included), shared (CGNAT), unique-local, multicast,
//!   documentation, reserved or unspecified, including IPv4 addresses inside IPv6 ones
//!   (IPv4-mapped, IPv4-compatible, NAT64, 6to4) and Teredo.
//! - An operator may allow exact `host:port` targets (a receiver on 127.0.0.1 in tests, an
//!   internal service); those skip the address check, nothing else does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A callback URL that passed the syntax rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackTarget {
    pub url: url::Url,
    /// The host as the URL normalises it (an IP address in its usual spelling, or a lowercase
    /// name), without brackets.
    pub host: String,
    /// The host when it is an IP address.
    pub ip: Option<IpAddr>,
    pub port: u16,
}

impl CallbackTarget {
    /// Parses a callback URL; `Err` says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text)
            .map_err(|_| "must be an absolute http or https URL".to_owned())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an absolute http or https URL".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".to_owned());
        }
        let (host, ip) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
            Some(url::Host::Domain(name)) => (name.trim_end_matches('.').to_owned(), None),
            None => return Err("must be an absolute http or https URL".to_owned()),
        };
        if host.is_empty() {
            return Err("must name a host".to_owned());
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "must be an absolute http or https URL".to_owned())?;
        Ok(Self {
            url,
            host,
            ip,
            port,
        })
    }

    /// Whether the operator allowed exactly this target (`host:port`; an IPv6 host in
    /// brackets, `[::1]:8080`).
    pub fn is_allowed(&self, allow: &[String]) -> bool {
        let plain = format!("{}:{}", self.host, self.port);
        let bracketed = format!("[{}]:{}", self.host, self.port);
        allow.iter().any(|entry| {
            let entry = entry.trim().to_ascii_lowercase();
            entry == plain || entry == bracketed
        })
    }

    /// What can be known without resolving a name: `Err` for an address that is not public
    /// or a name that always means this machine (`localhost`).
    pub fn check_literal(&self, allow: &[String]) -> Result<(), String> {
        if self.is_allowed(allow) {
            return Ok(());
        }
        if let Some(ip) = self.ip {
            return check_address(ip);
        }
        if self.host == "localhost" || self.host.ends_with(".localhost") {
            return Err("must not point at this machine (localhost)".to_owned());
        }
        Ok(())
    }
}

/// `Err` naming why an address may not receive webhooks.
pub fn check_address(ip: IpAddr) -> Result<(), String> {
    match forbidden(ip) {
        Some(kind) => Err(format!("must not point at a {kind} address ({ip})")),
        None => Ok(()),
    }
}

/// The kind of a non-public address, `None` for a public one.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "shared (carrier-grade NAT)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local (cloud metadata)"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "protocol-assignment"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "relay (6to4)"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    RANGES
        .iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map(|(_, _, kind)| *kind)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded_v4 = |high: usize| {
        Ipv4Addr::new(
            (segments[high] >> 8) as u8,
            segments[high] as u8,
            (segments[high + 1] >> 8) as u8,
            segments[high + 1] as u8,
        )
    };
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // ::ffff:a.b.c.d (IPv4-mapped): the IPv4 address decides. ::a.b.c.d (IPv4-compatible) is
    // deprecated and refused outright.
    if segments[..5] == [0; 5] && segments[5] == 0xffff {
        return forbidden_v4(embedded_v4(6));
    }
    if segments[..6] == [0; 6] {
        return Some("IPv4-compatible");
    }
    // ::ffff:0:a.b.c.d (IPv4-translated, SIIT): the IPv4 address decides.
    if segments[..4] == [0; 4] && segments[4] == 0xffff && segments[5] == 0 {
        return forbidden_v4(embedded_v4(6));
    }
    // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48) carries an IPv4 address.
    if segments[0] == 0x64 && segments[1] == 0xff9b {
        return if segments[2] == 1 {
            Some("NAT64 local-use")
        } else {
            forbidden_v4(embedded_v4(6))
        };
    }
    let first = segments[0];
    match first {
        _ if first & 0xfe00 == 0xfc00 => Some("unique-local"),
        _ if first & 0xffc0 == 0xfe80 => Some("link-local"),
        _ if first & 0xffc0 == 0xfec0 => Some("site-local"),
        _ if first & 0xff00 == 0xff00 => Some("multicast"),
        0x2001 if segments[1] == 0x0db8 => Some("documentation"),
        0x2001 if segments[1] == 0 => Some("Teredo"),
        // 6to4: the IPv4 address after the prefix decides.
        0x2002 => forbidden_v4(embedded_v4(1)),
        0x0100 if segments[1..4] == [0; 3] => Some("discard-only"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(url: &str) -> Result<(), String> {
        CallbackTarget::parse(url)?.check_literal(&[])
    }

    #[test]
    fn other_spellings_of_internal_addresses_are_refused() {
        for url in [
            "http://127.0.0.1/hook",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://10.1.2.3/",
            "http://172.31.0.1/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://[fe80::1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[::127.0.0.1]/",
            "http://[::ffff:0:7f00:1]/",
            "http://localhost:9000/",
            "http://api.localhost/",
            "http://LOCALHOST./",
        ] {
            assert!(literal(url).is_err(), "{url} was allowed");
        }
    }

    #[test]
    fn public_addresses_and_names_pass_and_bad_urls_say_why() {
        for url in [
            "https://example.com/hook",
            "http://93.184.215.14/",
            "http://[2606:4700::1111]/",
            "http://[::ffff:93.184.215.14]/",
        ] {
            assert_eq!(literal(url), Ok(()), "{url}");
        }
        for url in [
            "ftp://example.com/",
            "/relative",
            "http://user:pw@example.com/",
            "not a url",
        ] {
            assert!(CallbackTarget::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn only_the_exact_allowed_host_and_port_skip_the_check() {
        let allow = vec!["127.0.0.1:8080".to_owned(), "[::1]:9000".to_owned()];
        let check =
            |url: &str| CallbackTarget::parse(url).and_then(|target| target.check_literal(&allow));
        assert_eq!(check("http://127.0.0.1:8080/hook"), Ok(()));
        assert_eq!(check("http://[::1]:9000/"), Ok(()));
        assert!(check("http://127.0.0.1:8081/").is_err());
        assert!(check("http://localhost:8080/").is_err());
        assert!(check("http://[::1]:8080/").is_err());
    }
}
