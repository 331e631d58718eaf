//! One typed `Settings`, layered: built-in defaults, then the config file
//! (`--config FILE`, else `ferry.toml` in the working directory when present), then the
//! environment (`FERRY_…`, with `__` between a section and its key), then command-line
//! flags. It is built once in `main` and passed down explicitly; there is no global.
//!
//! docs/config.md lists every key; a test fails when it and [`Settings::default`] part.

mod editable;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use editable::{EDITABLE, EditKind, Editable, editable};

/// Environment variables that name a nested key with a single underscore, because the
/// issue tracker and operators already know them by these names.
const ENV_ALIASES: &[(&str, &str)] = &[
    ("FERRY_SMTP_URL", "smtp.url"),
    ("FERRY_SMTP_FROM", "smtp.from"),
    ("FERRY_ADMIN_EMAIL", "admin.email"),
    ("FERRY_ADMIN_PASSWORD", "admin.password"),
];

/// The keys of [`Settings`], for picking our variables out of the environment.
const TOP_LEVEL_KEYS: &[&str] = &[
    "bind",
    "data_dir",
    "database_url",
    "base_url",
    "allow_private_targets",
    "smtp",
    "admin",
    "console",
    "log",
    "provider",
    "schedule",
    "capacity",
    "mx",
    "workers",
    "retention",
    "timeouts",
    "limits",
    "metrics",
    "support",
    "intake",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the console, API and metrics listen on.
    pub bind: SocketAddr,
    /// Directory for the SQLite database and the encryption key file.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; when empty, `sqlite://<data_dir>/ferry.db`.
    pub database_url: Option<String>,
    /// The address people reach the console at (default: `http://` and `bind`); used in
    /// links in emails and to decide whether cookies are marked `Secure`.
    pub base_url: Option<String>,
    /// Let Ferry connect to loopback, private and link-local addresses that customers name.
    pub allow_private_targets: bool,
    pub smtp: SmtpSettings,
    pub admin: AdminSettings,
    pub console: ConsoleSettings,
    pub log: LogSettings,
    pub provider: ProviderSettings,
    pub schedule: ScheduleSettings,
    pub capacity: CapacitySettings,
    pub mx: MxSettings,
    pub workers: WorkerSettings,
    pub retention: RetentionSettings,
    pub timeouts: TimeoutSettings,
    pub limits: LimitSettings,
    pub metrics: MetricsSettings,
    pub support: SupportSettings,
    pub intake: IntakeSettings,
}

/// The customer's own request form (`/request`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeSettings {
    /// The provider's domains: a request's destination mailboxes must be in one. Empty:
    /// the form is closed.
    pub destination_domains: Vec<String>,
    /// A request's project starts at once instead of waiting for staff's approval.
    pub auto_approve: bool,
    /// Requests one address may send per hour.
    pub requests_per_hour: u32,
    /// Authenticate attempts one address may make per hour.
    pub checks_per_hour: u32,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            destination_domains: Vec::new(),
            auto_approve: false,
            requests_per_hour: 5,
            checks_per_hour: 30,
        }
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// When set, `/metrics` answers only `Authorization: Bearer <token>` with this
    /// token (401 otherwise); unset, anyone who reaches the port may read it.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub token: Option<SecretString>,
}

/// How much one request may carry: larger is refused with 413 (the body) or 422 (a
/// field, naming it) before any work is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Bytes of a request body (forms and JSON).
    pub body_bytes: usize,
    /// Characters of one text field (names, hosts, usernames, passwords, folders, reasons).
    pub text_chars: usize,
    /// Entries of one list field (folders to include, exclude or map).
    pub list_items: usize,
    /// Bytes of an uploaded file (a list of mailboxes): the body of an upload may be
    /// this much, plus 64 KiB for the form's other fields.
    pub upload_bytes: usize,
    /// Bytes of a file to import (`POST /api/v1/uploads`): streamed to the data
    /// directory, never held in memory, so it may be large.
    pub import_bytes: u64,
    /// Writes (POST, PUT, PATCH, DELETE) one API token may make per minute; 0: no limit.
    pub api_writes_per_minute: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            body_bytes: 1024 * 1024,
            text_chars: 1000,
            list_items: 1000,
            upload_bytes: 20 * 1024 * 1024,
            import_bytes: 20 * 1024 * 1024 * 1024,
            api_writes_per_minute: 60,
        }
    }
}

/// Deadlines of every wait for a server a customer named: a server that stops
/// answering fails the step with the code `timeout`, naming the side.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutSettings {
    /// Seconds for each step of connecting: TCP, TLS, the greeting, the login and the
    /// capabilities after it.
    pub connect_seconds: u64,
    /// Seconds for the answer to each later command.
    pub io_seconds: u64,
    /// Seconds for one DNS lookup (a server's address, a domain's MX).
    pub dns_seconds: u64,
    /// Seconds for each exchange with the SMTP server that sends notifications.
    pub smtp_seconds: u64,
}

impl Default for TimeoutSettings {
    fn default() -> Self {
        Self {
            connect_seconds: 30,
            io_seconds: 120,
            dns_seconds: 15,
            smtp_seconds: 30,
        }
    }
}

/// Watching a customer's domain for its MX change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MxSettings {
    /// `IP` or `IP:PORT` of the DNS server to ask, for MX checks and for the names of
    /// the servers customers give; unset: the system's resolvers (and /etc/hosts).
    pub nameserver: Option<String>,
    /// Seconds between the MX change and the post-MX pass: senders' DNS caches keep
    /// delivering to the old server for a while.
    pub grace_seconds: u64,
    /// Seconds between two MX checks of a migration waiting for its MX.
    pub check_seconds: u64,
}

impl MxSettings {
    /// `grace_seconds` as a duration to add to a time: bounded to ten years, so that no
    /// value a file may hold overflows a date.
    pub fn grace(&self) -> chrono::Duration {
        const TEN_YEARS: u64 = 10 * 366 * 86_400;
        chrono::Duration::seconds(i64::try_from(self.grace_seconds.min(TEN_YEARS)).unwrap_or(0))
    }
}

/// The workers that run migrations in this process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Seconds between two looks for due work when nothing wakes the workers.
    pub poll_seconds: u64,
    /// A worker's hold on a migration lasts this long unless renewed (every third of
    /// it); a process that dies frees its migrations after at most this long.
    pub lease_seconds: u64,
    /// Connections per side for one migration (folders copied at once).
    pub connections: usize,
}

/// How long Ferry keeps what it no longer needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days after a migration finishes before its stored passwords are erased.
    pub credential_days: u32,
    /// Days an uploaded file to import is kept (encrypted) before it is deleted.
    pub upload_days: u32,
}

impl Default for MxSettings {
    fn default() -> Self {
        Self {
            nameserver: None,
            grace_seconds: 3600,
            check_seconds: 300,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            poll_seconds: 5,
            lease_seconds: 60,
            connections: 3,
        }
    }
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            credential_days: 7,
            upload_days: 14,
        }
    }
}

/// The support mailbox: customers' emails to it become tickets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupportSettings {
    /// Read the support mailbox (off by default).
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// `ssl`, `starttls` or `none`.
    pub security: crate::domain::Security,
    pub username: String,
    #[serde(serialize_with = "serialize_secret_opt")]
    pub password: Option<SecretString>,
    /// The folder customers' emails arrive in.
    pub folder: String,
    /// Where a read email goes once its ticket holds it (created when missing).
    pub processed_folder: String,
    /// Seconds between two looks when the server cannot IDLE (and the longest wait
    /// before a reconnection is tried).
    pub poll_seconds: u64,
    /// Answer a new ticket with its number (and the report of the request it carried).
    pub acknowledge: bool,
    /// Acknowledgements one sender may get in an hour: a robot that answers every
    /// answer stops getting them.
    pub acknowledgements_per_hour: u32,
}

impl Default for SupportSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            host: String::new(),
            port: 993,
            security: crate::domain::Security::Ssl,
            username: String::new(),
            password: None,
            folder: "INBOX".into(),
            processed_folder: "Ferry/Processed".into(),
            poll_seconds: 60,
            acknowledge: true,
            acknowledgements_per_hour: 3,
        }
    }
}

/// The provider that runs Ferry: where migrated mail goes, and its MX.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// How emails and the customer's page name the provider.
    pub name: String,
    /// How customers reach support (an address, a phone number), on their page and in
    /// emails; empty: not shown.
    pub support_contact: String,
    /// The customer's pages' colour (buttons, links), `#rrggbb`.
    pub colour: String,
    /// The destination IMAP server when a request does not name one.
    pub imap_host: String,
    pub imap_port: u16,
    /// `ssl`, `starttls` or `none`.
    pub imap_security: crate::domain::Security,
    /// The provider's CardDAV/CalDAV server (a URL, or just its host: discovery finds
    /// the rest), where contacts and calendars go when a request names no server.
    /// Empty: every contacts or calendars request names its destination.
    pub dav_url: String,
    /// The MX records customers are told to set (`10 mx1.provider.example`).
    pub mx_hosts: Vec<String>,
    /// MX host names that mean "switched" (`*.provider.example`).
    pub mx_patterns: Vec<String>,
    /// A master user of the provider's IMAP server (Dovecot's `auth_master_user`), who
    /// logs in to any of its mailboxes: a request into the provider's server that gives
    /// no destination password (the short template has none) uses it. Empty: none.
    pub master_user: String,
    #[serde(serialize_with = "serialize_secret_opt")]
    pub master_password: Option<SecretString>,
}

/// The notice rule and the off-hours a requested window must respect.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleSettings {
    pub notice_hours: u32,
    /// When the window starts on a Saturday or Sunday.
    pub weekend_notice_hours: u32,
    /// `HH:MM` in the requester's time zone; the window starts between the two.
    pub off_hours_start: String,
    pub off_hours_end: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapacitySettings {
    /// Migrations copying at once; the others wait their turn.
    pub max_concurrent: u32,
    /// Migrations not yet finished; a request beyond gets 503 `migration_capacity_reached`.
    pub max_active: u32,
    /// Passes copying at once from one source server (old providers throttle or ban
    /// a client that opens too many connections).
    pub per_source_host: u32,
    /// A new project's concurrency when its request gives none.
    pub project_concurrency: u32,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            name: "Your mail provider".into(),
            support_contact: String::new(),
            colour: "#1d5fbf".into(),
            imap_host: "imap.provider.example".into(),
            imap_port: 993,
            imap_security: crate::domain::Security::Ssl,
            dav_url: String::new(),
            mx_hosts: vec![
                "10 mx1.provider.example".into(),
                "20 mx2.provider.example".into(),
            ],
            mx_patterns: vec!["*.provider.example".into()],
            master_user: String::new(),
            master_password: None,
        }
    }
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            notice_hours: 24,
            weekend_notice_hours: 48,
            off_hours_start: "20:00".into(),
            off_hours_end: "06:00".into(),
        }
    }
}

impl Default for CapacitySettings {
    fn default() -> Self {
        Self {
            max_concurrent: 4,
            max_active: 200,
            per_source_host: 4,
            project_concurrency: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// `smtp://host:port` (plain, or `?tls=required` for STARTTLS) or `smtps://host:port`,
    /// with optional `user:password@`. Unset: notifications wait in the outbox.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub url: Option<SecretString>,
    /// The From address of every notification.
    pub from: String,
    /// The staff address that receives a copy of every notification about a customer.
    pub staff_address: Option<String>,
    /// Seconds between two delivery attempts of the outbox when nothing wakes it.
    pub poll_seconds: u64,
    /// Delivery attempts before a notification is marked failed (it stays in the outbox).
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// The first admin account, created at first start when no account exists.
    pub email: String,
    /// Its password; generated and printed once when unset.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub password: Option<SecretString>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// How long a console session lasts after sign-in.
    pub session_hours: i64,
    /// Failed sign-ins allowed per client address, and per account, within the window.
    pub login_max_failures: u32,
    pub login_window_seconds: u64,
    /// Force the `Secure` cookie attribute on or off; by default it is on unless
    /// `base_url` is plain http on a host other than loopback.
    pub secure_cookies: Option<bool>,
    /// Addresses of the reverse proxies in front of Ferry: only a request from one of
    /// them has its client address read from `client_ip_header`.
    pub trusted_proxies: Vec<IpAddr>,
    /// The header a trusted proxy puts the client's address in (the rightmost address
    /// that is not itself a trusted proxy counts).
    pub client_ip_header: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter, e.g. `info` or `ferry=debug,info`; `RUST_LOG` wins when set.
    pub filter: String,
    /// `text` or `json`.
    pub format: String,
}

fn serialize_secret_opt<S: serde::Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    // Settings are serialised only to layer them; a secret never leaves as text.
    match value {
        Some(_) => serializer.serialize_some("********"),
        None => serializer.serialize_none(),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            base_url: None,
            allow_private_targets: false,
            smtp: SmtpSettings::default(),
            admin: AdminSettings::default(),
            console: ConsoleSettings::default(),
            log: LogSettings::default(),
            provider: ProviderSettings::default(),
            schedule: ScheduleSettings::default(),
            capacity: CapacitySettings::default(),
            mx: MxSettings::default(),
            workers: WorkerSettings::default(),
            retention: RetentionSettings::default(),
            timeouts: TimeoutSettings::default(),
            limits: LimitSettings::default(),
            metrics: MetricsSettings::default(),
            support: SupportSettings::default(),
            intake: IntakeSettings::default(),
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            url: None,
            from: "Ferry <ferry@localhost>".into(),
            staff_address: None,
            poll_seconds: 30,
            max_attempts: 8,
        }
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            email: "admin@ferry.localhost".into(),
            password: None,
        }
    }
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            session_hours: 12,
            login_max_failures: 5,
            login_window_seconds: 900,
            secure_cookies: None,
            trusted_proxies: Vec::new(),
            client_ip_header: "X-Forwarded-For".into(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: "text".into(),
        }
    }
}

/// Values given on the command line; they override every other layer.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Settings {
    /// Layers defaults, the config file, the environment and the overrides.
    pub fn load(config_file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match config_file {
            Some(path) => {
                anyhow::ensure!(
                    path.is_file(),
                    "The config file {} does not exist; give an existing file to --config",
                    path.display()
                );
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new("ferry.toml").is_file() => {
                figment = figment.merge(Toml::file_exact("ferry.toml"));
            }
            None => {}
        }
        // Only variables that name a settings key: `FERRY_SOURCE_PASSWORD` and the like
        // belong to commands, and the rest of the environment is not ours to reject.
        figment = figment.merge(
            Env::prefixed("FERRY_")
                .filter(|key| {
                    let top = key.as_str().split("__").next().unwrap_or_default();
                    TOP_LEVEL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
                })
                .split("__"),
        );
        for (var, key) in ENV_ALIASES {
            if let Ok(value) = std::env::var(var) {
                figment = figment.merge((*key, value));
            }
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            figment = figment.merge(("database_url", url));
        }
        figment = figment.merge(Serialized::defaults(overrides));
        let settings: Settings = figment
            .extract()
            .context("Invalid settings (see docs/config.md for every key)")?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let base_url = self.base_url();
        anyhow::ensure!(
            base_url.starts_with("http://") || base_url.starts_with("https://"),
            "base_url must start with http:// or https://, got {base_url:?}"
        );
        anyhow::ensure!(
            matches!(self.log.format.as_str(), "text" | "json"),
            "log.format must be text or json, got {:?}",
            self.log.format
        );
        anyhow::ensure!(
            !self.console.client_ip_header.is_empty()
                && self
                    .console
                    .client_ip_header
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "console.client_ip_header must be a header name like X-Forwarded-For, got {:?}",
            self.console.client_ip_header
        );
        anyhow::ensure!(
            self.console.session_hours > 0,
            "console.session_hours must be positive"
        );
        anyhow::ensure!(
            self.workers.lease_seconds >= 3,
            "workers.lease_seconds must be 3 or more"
        );
        anyhow::ensure!(
            (1..=16).contains(&self.workers.connections),
            "workers.connections must be between 1 and 16"
        );
        anyhow::ensure!(
            self.limits.body_bytes >= 4096
                && self.limits.text_chars >= 64
                && self.limits.list_items >= 1,
            "limits.body_bytes must be 4096 or more, limits.text_chars 64 or more and limits.list_items 1 or more"
        );
        anyhow::ensure!(
            [
                self.timeouts.connect_seconds,
                self.timeouts.io_seconds,
                self.timeouts.dns_seconds,
                self.timeouts.smtp_seconds
            ]
            .iter()
            .all(|t| (1..=3600).contains(t)),
            "every timeouts.* setting must be between 1 and 3600 seconds"
        );
        anyhow::ensure!(
            self.workers.poll_seconds >= 1 && self.mx.check_seconds >= 1,
            "workers.poll_seconds and mx.check_seconds must be 1 or more"
        );
        if let Some(ns) = &self.mx.nameserver {
            anyhow::ensure!(
                parse_nameserver(ns).is_some(),
                "mx.nameserver must be an IP address with an optional port, like 127.0.0.1:5353; got {ns:?}"
            );
        }
        Ok(())
    }

    /// The database to open: `database_url`, else the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.clone(),
            _ => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("ferry.db").display()
            ),
        }
    }

    /// The DNS server for MX checks, when one is set.
    pub fn mx_nameserver(&self) -> Option<SocketAddr> {
        self.mx.nameserver.as_deref().and_then(parse_nameserver)
    }

    /// The console's address without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.base_url {
            Some(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
            _ => format!("http://{}", self.bind),
        }
    }

    /// Whether session cookies carry the `Secure` attribute.
    pub fn secure_cookies(&self) -> bool {
        if let Some(forced) = self.console.secure_cookies {
            return forced;
        }
        let base_url = self.base_url();
        if base_url.starts_with("https://") {
            return true;
        }
        // Browsers accept Secure cookies over plain http from loopback only.
        let authority = base_url
            .strip_prefix("http://")
            .unwrap_or(&base_url)
            .split('/')
            .next()
            .unwrap_or_default();
        authority == "localhost"
            || authority.starts_with("localhost:")
            || authority.starts_with("127.")
            || authority.starts_with("[::1]")
    }
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 when none is given.
fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    s.parse::<SocketAddr>().ok().or_else(|| {
        s.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mx_grace_is_a_duration_that_no_setting_overflows() {
        let mx = |grace_seconds| MxSettings {
            grace_seconds,
            ..MxSettings::default()
        };
        assert_eq!(mx(3600).grace(), chrono::Duration::hours(1));
        let longest = mx(u64::MAX).grace();
        let today = chrono::DateTime::<chrono::Utc>::from_timestamp(1_796_000_000, 0);
        assert!(today.and_then(|t| t.checked_add_signed(longest)).is_some());
    }

    #[test]
    fn plain_http_on_a_lan_address_gets_no_secure_cookie() {
        let mut s = Settings::default();
        assert!(s.secure_cookies());
        s.base_url = Some("http://10.0.0.5:8080".into());
        assert!(!s.secure_cookies());
        s.base_url = Some("https://ferry.example".into());
        assert!(s.secure_cookies());
    }

    #[test]
    fn sqlite_file_in_the_data_dir_by_default() {
        let s = Settings::default();
        assert_eq!(s.database_url(), "sqlite://data/ferry.db?mode=rwc");
    }
}
