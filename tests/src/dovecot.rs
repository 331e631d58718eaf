//! A real Dovecot (Debian's dovecot-imapd) with its own config, users from a passwd
//! file, a plaintext and an implicit-TLS listener on free loopback ports, in a temporary
//! directory. Stopped when dropped. Nothing in /etc/dovecot is read or touched.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::net::{free_port, terminate, wait_for_port};
use crate::tls::{TestCerts, make_certs};

/// How the server lays out its folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `/` separator, no prefix: `Sent`, `Archive/2024`.
    Slash,
    /// `.` separator under an `INBOX.` prefix, as Courier-style hosts do:
    /// `INBOX.Sent`, `INBOX.Archive.2024`.
    DotInboxPrefix,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub layout: Layout,
    /// `mail_fsync = never` for benchmarks; tests keep Dovecot's default.
    pub fsync: bool,
    /// Connections one user may have from one address (Dovecot's default is 10).
    pub mail_max_userip_connections: u32,
    /// Refuse APPEND of messages larger than this many bytes (quota plugin).
    pub max_mail_size: Option<u64>,
    /// Create Sent, Drafts, Trash, Junk and Archive at the first login (Dovecot's
    /// `auto = subscribe`); off, a new mailbox has INBOX alone, as many providers' do.
    pub auto_special_folders: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            layout: Layout::Slash,
            fsync: true,
            mail_max_userip_connections: 50,
            max_mail_size: None,
            auto_special_folders: true,
        }
    }
}

pub struct Dovecot {
    /// Plaintext IMAP (STARTTLS offered).
    pub port: u16,
    /// Implicit TLS.
    pub tls_port: u16,
    pub layout: Layout,
    pub certs: TestCerts,
    dir: tempfile::TempDir,
    child: Child,
}

impl Dovecot {
    pub fn start(layout: Layout) -> anyhow::Result<Self> {
        Self::start_with(Options {
            layout,
            ..Default::default()
        })
    }

    pub fn start_with(options: Options) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        // Mail processes run as nobody and must reach the homes below.
        set_mode(root, 0o755)?;
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        set_mode(&root.join("home"), 0o777)?;
        let certs = make_certs(root)?;
        std::fs::write(root.join("passwd"), "")?;
        std::fs::write(root.join("master-passwd"), "")?;
        let port = free_port();
        let tls_port = free_port();
        let config = render_config(root, port, tls_port, &certs, &options);
        std::fs::write(root.join("dovecot.conf"), config)?;
        let log = std::fs::File::create(root.join("stdout.log"))?;
        let child = Command::new(dovecot_binary())
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start dovecot (scripts/install-test-servers installs it)")?;
        let mut server = Self {
            port,
            tls_port,
            layout: options.layout,
            certs,
            dir,
            child,
        };
        for p in [port, tls_port] {
            if let Err(err) = wait_for_port(p, Duration::from_secs(10)) {
                let log = server.log();
                terminate(&mut server.child);
                anyhow::bail!("{err}; dovecot said:\n{log}");
            }
        }
        Ok(server)
    }

    /// Adds (or replaces) a user; Dovecot reads the passwd file on every login.
    pub fn add_user(&self, user: &str, password: &str) -> anyhow::Result<()> {
        let path = self.dir.path().join("passwd");
        let mut lines: Vec<String> = std::fs::read_to_string(&path)?
            .lines()
            .filter(|l| !l.starts_with(&format!("{user}:")))
            .map(str::to_owned)
            .collect();
        lines.push(format!("{user}:{{PLAIN}}{password}::::::"));
        write_and_touch(&path, &(lines.join("\n") + "\n"))
    }

    /// Adds a master user, who logs in as any user with `user*master` (or SASL PLAIN
    /// with an authorization identity).
    pub fn add_master_user(&self, user: &str, password: &str) -> anyhow::Result<()> {
        let path = self.dir.path().join("master-passwd");
        let mut text = std::fs::read_to_string(&path)?;
        text.push_str(&format!("{user}:{{PLAIN}}{password}::::::\n"));
        write_and_touch(&path, &text)
    }

    /// The folder name as this server spells it: `Sent` or `INBOX.Sent`, with the
    /// server's separator between levels given here as `/`.
    pub fn folder(&self, path: &str) -> String {
        match self.layout {
            Layout::Slash => path.to_owned(),
            Layout::DotInboxPrefix if path.eq_ignore_ascii_case("INBOX") => "INBOX".to_owned(),
            Layout::DotInboxPrefix => format!("INBOX.{}", path.replace('/', ".")),
        }
    }

    pub fn separator(&self) -> char {
        match self.layout {
            Layout::Slash => '/',
            Layout::DotInboxPrefix => '.',
        }
    }

    pub fn log(&self) -> String {
        let mut out = String::new();
        for name in ["dovecot.log", "stdout.log"] {
            let _ = writeln!(
                out,
                "{}",
                std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
            );
        }
        out
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Dovecot re-reads a passwd file when its modification time changes, which has a
/// resolution of a second: move it forward so that two writes in one second both count.
fn write_and_touch(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static BUMP: AtomicU64 = AtomicU64::new(1);
    std::fs::write(path, text)?;
    let when = std::time::SystemTime::now()
        + std::time::Duration::from_secs(BUMP.fetch_add(1, Ordering::SeqCst));
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(when)?;
    Ok(())
}

fn dovecot_binary() -> PathBuf {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("dovecot"))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn render_config(
    root: &Path,
    port: u16,
    tls_port: u16,
    certs: &TestCerts,
    options: &Options,
) -> String {
    let r = root.display();
    let (separator, prefix) = match options.layout {
        Layout::Slash => ("/", ""),
        Layout::DotInboxPrefix => (".", "INBOX."),
    };
    let quota = match options.max_mail_size {
        Some(max) => format!(
            "mail_plugins = $mail_plugins quota\nprotocol imap {{\n  mail_plugins = $mail_plugins imap_quota\n}}\nplugin {{\n  quota = maildir:User quota\n  quota_rule = *:storage=10G\n  quota_max_mail_size = {max}\n}}\n"
        ),
        None => String::new(),
    };
    let fsync = if options.fsync { "optimized" } else { "never" };
    let auto = if options.auto_special_folders {
        "auto = subscribe"
    } else {
        "auto = no"
    };
    let dh = if Path::new("/usr/share/dovecot/dh.pem").exists() {
        "ssl_dh = </usr/share/dovecot/dh.pem\n"
    } else {
        ""
    };
    format!(
        r#"# Written by Ferry's test harness.
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
info_log_path = {r}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
{dh}ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_fsync = {fsync}
mail_location = maildir:~/Maildir
mail_max_userip_connections = {maxconn}
{quota}first_valid_uid = 1
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/passwd
}}
passdb {{
  driver = passwd-file
  master = yes
  args = scheme=PLAIN username_format=%u {r}/master-passwd
}}
auth_master_user_separator = *
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={r}/home/%u allow_all_users=yes
}}
namespace inbox {{
  inbox = yes
  separator = {separator}
  prefix = {prefix}
  mailbox Drafts {{
    special_use = \Drafts
    {auto}
  }}
  mailbox Sent {{
    special_use = \Sent
    {auto}
  }}
  mailbox Trash {{
    special_use = \Trash
    {auto}
  }}
  mailbox Junk {{
    special_use = \Junk
    {auto}
  }}
  mailbox Archive {{
    special_use = \Archive
    {auto}
  }}
}}
"#,
        cert = certs.server_cert.display(),
        key = certs.server_key.display(),
        maxconn = options.mail_max_userip_connections,
    )
}
