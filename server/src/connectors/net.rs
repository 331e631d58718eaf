//! How Ferry reaches a server a customer named: the name is resolved once, every
//! address it gave is checked, and the connection goes to exactly a checked address
//! (TLS still verifies the name). Resolving again at connect time is what let a name
//! that answered a public address first and 127.0.0.1 second reach a loopback service.
//!
//! Every connection to a customer-named host goes through [`connect`]: test-connection,
//! validation, every pass and delete-migrated; the DAV and OAuth clients will too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::dns;

/// Whether a piece of work still shows signs of life: every wait for a server that
/// ends (with an answer or an error) keeps it alive for that wait's deadline again, and
/// so does a deliberate pause (a reconnection's backoff). The scheduler's heartbeat
/// stops renewing the lease of a work whose pulse has stopped: one stuck outside any
/// wait (a bug), since every wait has a deadline of its own.
#[derive(Debug, Clone, Default)]
pub struct Pulse(Arc<AtomicU64>);

impl Pulse {
    /// A pulse alive for `grace` from now.
    pub fn new(grace: Duration) -> Self {
        let pulse = Self::default();
        pulse.alive_for(grace);
        pulse
    }

    /// Alive for at least `grace` from now (never shortens an earlier promise).
    pub fn alive_for(&self, grace: Duration) {
        let until = now_ms().saturating_add(u64::try_from(grace.as_millis()).unwrap_or(u64::MAX));
        self.0.fetch_max(until, Ordering::Relaxed);
    }

    /// No sign of life within the last promise and `slack` beyond it.
    pub fn stalled(&self, slack: Duration) -> bool {
        let slack = u64::try_from(slack.as_millis()).unwrap_or(u64::MAX);
        now_ms() > self.0.load(Ordering::Relaxed).saturating_add(slack)
    }
}

/// Milliseconds on a monotonic clock that starts with the process.
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What a connection may reach and how long it may wait: one value per connection,
/// built from the settings in force.
#[derive(Debug, Clone)]
pub struct Reach {
    /// Let the connection reach special-purpose addresses (loopback, private, …).
    pub allow_private: bool,
    /// The DNS server to ask instead of the system's.
    pub nameserver: Option<SocketAddr>,
    /// Deadline of the name's lookup.
    pub dns_timeout: Duration,
    /// Deadline of connecting: TCP, TLS, the greeting and the login, each.
    pub connect_timeout: Duration,
    /// Deadline of every later wait for the server (one command's answer).
    pub io_timeout: Duration,
    /// The work's pulse, when a worker runs it under a lease.
    pub pulse: Option<Pulse>,
}

impl Reach {
    /// The same reach, beating `pulse` as its waits end.
    pub fn with_pulse(self, pulse: &Pulse) -> Self {
        Self {
            pulse: Some(pulse.clone()),
            ..self
        }
    }

    /// A sign of life that lasts `grace` (nothing without a pulse).
    pub fn alive_for(&self, grace: Duration) {
        if let Some(pulse) = &self.pulse {
            pulse.alive_for(grace);
        }
    }
}

impl Default for Reach {
    fn default() -> Self {
        Self {
            allow_private: false,
            nameserver: None,
            dns_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(120),
            pulse: None,
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
pub async fn resolve(host: &str, port: u16, reach: &Reach) -> Result<Vec<SocketAddr>, ReachError> {
    let ips = dns::lookup_host(host, reach.nameserver, reach.dns_timeout)
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
pub async fn connect(host: &str, port: u16, reach: &Reach) -> Result<TcpStream, ReachError> {
    let addrs = resolve(host, port, reach).await?;
    reach.alive_for(reach.connect_timeout);
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(reach.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                reach.alive_for(reach.connect_timeout);
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
    fn a_pulse_stays_alive_for_its_last_promise_and_then_stops() {
        let none = Duration::ZERO;
        let pulse = Pulse::new(Duration::from_millis(40));
        assert!(!pulse.stalled(none));
        // A shorter promise does not cut a longer one short.
        pulse.alive_for(Duration::ZERO);
        assert!(!pulse.stalled(none));
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            pulse.stalled(none),
            "no sign of life for longer than promised"
        );
        assert!(
            !pulse.stalled(Duration::from_secs(60)),
            "but within the slack"
        );
        pulse.alive_for(Duration::from_secs(60));
        assert!(!pulse.stalled(none), "a wait that ended brings it back");
        // Clones share one pulse: the connections of a work beat the work's pulse.
        let beat_by_a_connection = pulse.clone();
        let quiet = Pulse::new(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(quiet.stalled(none));
        beat_by_a_connection.alive_for(Duration::from_secs(120));
        assert!(!pulse.stalled(none));
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
