//! A real DNS server (Debian's dnsmasq) answering MX records for test domains on a
//! free loopback port. Changing the answer restarts it on the same port, the way an
//! operator's DNS change would take effect.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::net::{free_port, terminate};

pub struct Dns {
    pub port: u16,
    child: Child,
}

impl Dns {
    /// Starts dnsmasq answering `(domain, preference, host)` MX records.
    pub async fn start(mx: &[(&str, u16, &str)]) -> anyhow::Result<Self> {
        let port = free_udp_port();
        let child = spawn(port, mx)?;
        let dns = Self { port, child };
        dns.wait_ready(mx).await?;
        Ok(dns)
    }

    /// `127.0.0.1:PORT`, for `FERRY_MX__NAMESERVER`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Answers these records from now on.
    pub async fn set_mx(&mut self, mx: &[(&str, u16, &str)]) -> anyhow::Result<()> {
        terminate(&mut self.child);
        self.child = spawn(self.port, mx)?;
        self.wait_ready(mx).await
    }

    async fn wait_ready(&self, mx: &[(&str, u16, &str)]) -> anyhow::Result<()> {
        let Some((domain, _, host)) = mx.first() else {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(());
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lookup = ferry::connectors::dns::lookup_mx(
                domain,
                Some(self.addr()),
                Duration::from_secs(2),
            );
            if let Ok(hosts) = lookup.await
                && hosts.iter().any(|(_, h)| h == host)
            {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "dnsmasq on port {} does not answer MX {domain}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn free_udp_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn spawn(port: u16, mx: &[(&str, u16, &str)]) -> anyhow::Result<Child> {
    let mut cmd = Command::new("/usr/sbin/dnsmasq");
    cmd.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--pid-file=",
        "--local-ttl=0",
        "--user=root",
        &format!("--port={port}"),
    ]);
    for (domain, pref, host) in mx {
        cmd.arg(format!("--mx-host={domain},{host},{pref}"));
        // The domain is ours: names under it that have no record answer NXDOMAIN.
        cmd.arg(format!("--local=/{domain}/"));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("dnsmasq starts (scripts/install-test-servers installs dnsmasq-base)")
}
