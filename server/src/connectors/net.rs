//! How Ferry reaches a server a customer named: the name is resolved once, every
//! address it gave is checked, and the connection goes to exactly a checked address
//! (TLS still verifies the name). Resolving again at connect time is what let a name
//! that answered a public address first and 127.0.0.1 second reach a loopback service.
//!
//! Every connection to a customer-named host goes through [`connect`]: test-connection,
//! validation, every pass and delete-migrated; the DAV and OAuth clients will too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

use super::dns;

/// What a connection may reach and how long it may wait: one value per connection,
/// built from the settings in force.
#[derive(Debug, Clone, Copy)]
pub struct Reach {
    /// Let the connection reach special-purpose addresses (loopback, private, …).
    pub allow_private: bool,
    /// The DNS server to ask instead of the system's.
    pub nameserver: Option<SocketAddr>,
    /// Deadline of connecting: TCP, TLS, the greeting and the login, each.
    pub connect_timeout: Duration,
    /// Deadline of every later wait for the server (one command's answer).
    pub io_timeout: Duration,
}

impl Default for Reach {
    fn default() -> Self {
        Self {
            allow_private: false,
            nameserver: None,
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(120),
        }
    }
}

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("the name {0} does not resolve: {1}")]
    Dns(String, String),
    #[error("{host} resolves to {ip}, {range}; Ferry connects only to public servers")]
    Refused {
        host: String,
        ip: IpAddr,
        range: &'static str,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Tcp(String),
}

/// Resolves `host` once and checks every address; answers the addresses to connect to.
pub async fn resolve(host: &str, port: u16, reach: Reach) -> Result<Vec<SocketAddr>, ReachError> {
    let ips = dns::lookup_host(host, reach.nameserver)
        .await
        .map_err(|e| ReachError::Dns(host.to_owned(), e.to_string()))?;
    if ips.is_empty() {
        return Err(ReachError::Dns(host.to_owned(), "it has no address".into()));
    }
    if !reach.allow_private
        && let Some((ip, range)) = ips.iter().find_map(|ip| special(*ip).map(|r| (*ip, r)))
    {
        return Err(ReachError::Refused {
            host: host.to_owned(),
            ip,
            range,
        });
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// Connects to `host:port` through [`resolve`]: the first checked address that accepts.
pub async fn connect(host: &str, port: u16, reach: Reach) -> Result<TcpStream, ReachError> {
    let addrs = resolve(host, port, reach).await?;
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(reach.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(err)) => last = Some(ReachError::Tcp(format!("{addr}: {err}"))),
            Err(_) => last = Some(ReachError::Timeout(reach.connect_timeout)),
        }
    }
    Err(last.unwrap_or_else(|| ReachError::Tcp("no address".into())))
}

/// The special-purpose range `ip` is in (IANA's IPv4 and IPv6 special-purpose address
/// registries, multicast, and IPv6 forms that carry an IPv4 address judged by that
/// address), or `None` for an ordinary public address.
pub fn special(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// IPv4 special-purpose blocks, with the words a refusal uses.
const V4: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "a \"this network\" address"),
    ([10, 0, 0, 0], 8, "a private address"),
    ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
    ([127, 0, 0, 0], 8, "a loopback address"),
    ([169, 254, 0, 0], 16, "a link-local address"),
    ([172, 16, 0, 0], 12, "a private address"),
    ([192, 0, 0, 0], 24, "an IETF protocol address"),
    ([192, 0, 2, 0], 24, "a documentation address"),
    ([192, 88, 99, 0], 24, "a 6to4 relay address"),
    ([192, 168, 0, 0], 16, "a private address"),
    ([198, 18, 0, 0], 15, "a benchmarking address"),
    ([198, 51, 100, 0], 24, "a documentation address"),
    ([203, 0, 113, 0], 24, "a documentation address"),
    ([224, 0, 0, 0], 4, "a multicast address"),
    ([240, 0, 0, 0], 4, "a reserved address"),
];

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4.iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map(|(_, _, what)| *what)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// IPv6 special-purpose blocks that carry no IPv4 address.
#[rustfmt::skip]
const V6: &[([u16; 8], u32, &str)] = &[
    ([0, 0, 0, 0, 0, 0, 0, 0], 96, "an IPv4-compatible or unspecified address"),
    ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "a local-use NAT64 address"),
    ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "a discard-only address"),
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "a documentation address"),
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "an IETF protocol address"),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "a documentation address"),
    ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "a segment-routing address"),
    ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "a unique-local (private) address"),
    ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "a link-local address"),
    ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "a site-local address"),
    ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "a multicast address"),
];

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // Forms that reach an IPv4 address are judged by it: mapped (::ffff:a.b.c.d),
    // the well-known NAT64 prefix (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::).
    let o = ip.octets();
    let embedded = if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    };
    if let Some(v4) = embedded {
        return special_v4(v4);
    }
    V6.iter()
        .find(|(net, len, _)| in_v6(ip, *net, *len))
        .map(|(_, _, what)| *what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses_are_named_and_public_ones_pass() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.1",
            "0.0.0.0",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.10",
            "203.0.113.5",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "fec0::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(special(ip).is_some(), "{refused} must be refused");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "192.0.3.1",
            "2a00:1450:4001:80b::200e",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert_eq!(special(ip), None, "{public} is public");
        }
    }

    #[test]
    fn a_refusal_names_the_range() {
        assert_eq!(
            special("::127.0.0.1".parse().unwrap()),
            Some("an IPv4-compatible or unspecified address")
        );
        assert_eq!(
            special("64:ff9b::7f00:1".parse().unwrap()),
            Some("a loopback address")
        );
        assert_eq!(
            special("198.18.0.1".parse().unwrap()),
            Some("a benchmarking address")
        );
    }
}
