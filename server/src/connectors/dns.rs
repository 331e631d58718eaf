//! Name lookups with hickory-resolver: the system's resolvers (and /etc/hosts), or one
//! named server (the tests answer from a local dnsmasq or their own responder). A fresh
//! resolver per lookup, so no cached answer hides a change, and every lookup has a
//! deadline.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

fn resolver(nameserver: Option<SocketAddr>) -> anyhow::Result<Resolver<TokioRuntimeProvider>> {
    let mut builder = match nameserver {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => Resolver::builder_tokio()?,
    };
    builder.options_mut().cache_size = 0;
    builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    Ok(builder.build()?)
}

/// Every address `host` has (itself when it is an IP address), asked once, within
/// `deadline`.
pub async fn lookup_host(
    host: &str,
    nameserver: Option<SocketAddr>,
    deadline: Duration,
) -> anyhow::Result<Vec<IpAddr>> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let resolver = resolver(nameserver)?;
    let fqdn = format!("{}.", host.trim_end_matches('.'));
    let lookup = tokio::time::timeout(deadline, resolver.lookup_ip(fqdn.as_str()))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {deadline:?}"))?
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let mut addrs: Vec<IpAddr> = lookup.iter().collect();
    addrs.dedup();
    Ok(addrs)
}

/// The domain's MX hosts, lowest preference first, lower-case and without the final
/// dot. An existing domain without MX records answers an empty list. Within `deadline`.
pub async fn lookup_mx(
    domain: &str,
    nameserver: Option<SocketAddr>,
    deadline: Duration,
) -> anyhow::Result<Vec<(u16, String)>> {
    let resolver = resolver(nameserver)?;
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    let answer = tokio::time::timeout(deadline, resolver.mx_lookup(fqdn.as_str()))
        .await
        .map_err(|_| anyhow::anyhow!("MX lookup of {domain}: no answer within {deadline:?}"))?;
    let lookup = match answer {
        Ok(lookup) => lookup,
        Err(err) if err.is_no_records_found() => return Ok(Vec::new()),
        Err(err) => return Err(anyhow::anyhow!("MX lookup of {domain} failed: {err}")),
    };
    let mut hosts: Vec<(u16, String)> = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::MX(mx) => Some((
                mx.preference,
                mx.exchange
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            )),
            _ => None,
        })
        .collect();
    hosts.sort();
    Ok(hosts)
}
