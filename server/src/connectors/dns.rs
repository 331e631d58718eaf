//! MX lookups with hickory-resolver: the system's resolvers, or one named server (the
//! tests answer from a local dnsmasq). A fresh resolver per check, so no cached answer
//! hides a change.

use std::net::SocketAddr;

use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// The domain's MX hosts, lowest preference first, lower-case and without the final
/// dot. An existing domain without MX records answers an empty list.
pub async fn lookup_mx(
    domain: &str,
    nameserver: Option<SocketAddr>,
) -> anyhow::Result<Vec<(u16, String)>> {
    let builder = match nameserver {
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
    let mut builder = builder;
    builder.options_mut().cache_size = 0;
    let resolver = builder.build()?;
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    let lookup = match resolver.mx_lookup(fqdn.as_str()).await {
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
