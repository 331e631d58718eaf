//! The test harness: real servers started on free loopback ports in temporary
//! directories, and stopped when dropped.
//!
//! - [`dovecot::Dovecot`]: IMAP, plaintext and implicit TLS, `/` or `.`+`INBOX.` layouts.
//! - [`cyrus::Cyrus`]: a second IMAP server, Cyrus 3.6, `INBOX.` and `.`, unpacked from Debian.
//! - [`dav::DavServer`]: CardDAV/CalDAV, Radicale and Xandikos.
//! - [`smtp::SmtpSink`]: aiosmtpd keeping every message it receives in a maildir.
//! - [`postgres::PgDatabase`]: a fresh database on the machine's PostgreSQL.
//! - [`app::TestApp`]: Ferry itself on port 0 with a fresh database and an HTTP client.
//! - [`serve::FerryProcess`]: `ferry serve` as a child process, killable and restartable.
//! - [`dns::Dns`]: dnsmasq answering MX records, changed by a restart.
//! - [`strip::Strip`]: a relay that takes optional capabilities and answers away.
//! - [`hostile`]: a rebinding DNS server, an IMAP server that goes silent, a listener
//!   that records who reached it.
//! - [`imap`]: a small IMAP client (async-imap) to seed a mailbox and read it back.
//! - [`api::call`]: a call to Ferry's REST API that fails on any secret in the answer.

pub mod api;
pub mod app;
pub mod corpus;
pub mod cutter;
pub mod cyrus;
pub mod dav;
pub mod dns;
pub mod dovecot;
pub mod hostile;
pub mod imap;
pub mod killloop;
pub mod mime;
pub mod net;
pub mod postgres;
pub mod serve;
pub mod smtp;
pub mod strip;
pub mod tls;
pub mod tls_client;

/// The workspace root, for fixtures and the `ferry` binary.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

/// Installs rustls' ring provider once per test process.
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_log();
}

/// With `FERRY_TEST_LOG=FILE`, the in-process Ferry instances log (at `info`, or as
/// `RUST_LOG` says) into FILE: what a failing or stalled test's Ferry was doing.
fn init_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let Some(path) = std::env::var_os("FERRY_TEST_LOG") else {
        return;
    };
    ONCE.call_once(|| {
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        else {
            return;
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_thread_names(true)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}

/// Awaits `work`, failing the test with `what` if it takes longer than `limit`: a test
/// that waits on many tasks at once must fail where it stalls, not hang the suite.
pub async fn within<F: std::future::Future>(
    limit: std::time::Duration,
    what: &str,
    work: F,
) -> F::Output {
    match tokio::time::timeout(limit, work).await {
        Ok(output) => output,
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}

/// This process's peak resident set (VmHWM), in bytes: what a benchmark reports.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}
