//! The test harness: real servers started on free loopback ports in temporary
//! directories, and stopped when dropped.
//!
//! - [`dovecot::Dovecot`]: IMAP, plaintext and implicit TLS, `/` or `.`+`INBOX.` layouts.
//! - [`cyrus::Cyrus`]: a second IMAP server, Cyrus 3.6, `INBOX.` and `.`, unpacked from Debian.
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
pub mod dns;
pub mod dovecot;
pub mod hostile;
pub mod imap;
pub mod killloop;
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
}
