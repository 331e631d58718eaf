//! A real Cyrus IMAP 3.6 (Debian's cyrus-imapd), the second IMAP implementation the
//! engine is tested against. cyrus-imapd conflicts with dovecot-imapd in apt, so
//! `scripts/install-test-servers` unpacks its packages (`dpkg-deb -x`) under
//! `/opt/ferry-test-servers/cyrus` instead of installing them; this harness starts its
//! `master` with a private `imapd.conf` and `cyrus.conf`, a private sasldb of users and
//! spool in a temporary directory, on a free loopback port. The classic namespace:
//! folders under `INBOX.` with `.` between levels; a new user has INBOX alone.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::imap::{self, ImapSession};
use crate::net::{free_port, terminate, wait_for_port};

/// The administrator who creates users' mailboxes.
const ADMIN: &str = "cyrusadmin";
const ADMIN_PW: &str = "cyrus-admin-secret";

pub struct Cyrus {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// Where `scripts/install-test-servers` unpacked Cyrus (`FERRY_CYRUS_ROOT` to change).
pub fn root() -> PathBuf {
    std::env::var_os("FERRY_CYRUS_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/ferry-test-servers/cyrus"))
}

impl Cyrus {
    pub fn start() -> anyhow::Result<Self> {
        let root = root();
        let bin = root.join("usr/lib/cyrus/bin");
        anyhow::ensure!(
            bin.join("master").exists(),
            "Cyrus is not unpacked in {} (scripts/install-test-servers does it)",
            root.display()
        );
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        // conf/socket holds the services' accept locks and the IDLE sockets.
        for sub in ["conf/socket", "spool", "proc", "lock", "log"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        let port = free_port();
        let conf = d.join("imapd.conf");
        std::fs::write(&conf, imapd_conf(d))?;
        std::fs::write(d.join("cyrus.conf"), cyrus_conf(&bin, &conf, port))?;
        saslpasswd(d, ADMIN, ADMIN_PW)?;
        // Cyrus refuses to run as root and switches to its own user, who must own
        // everything it touches.
        let status = Command::new("chown")
            .args(["-R", "cyrus:mail"])
            .arg(d)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "chown cyrus:mail (is there a cyrus user?)"
        );
        let log = std::fs::File::create(d.join("log/master.log"))?;
        // Its own process group: master stops by signalling its whole group, which
        // would otherwise be every server the test process started.
        let child = Command::new(bin.join("master"))
            .process_group(0)
            .arg("-C")
            .arg(&conf)
            .arg("-M")
            .arg(d.join("cyrus.conf"))
            .arg("-p")
            .arg(d.join("master.pid"))
            .arg("-D")
            .arg("-L")
            .arg(d.join("log/cyrus.log"))
            .env("LD_LIBRARY_PATH", root.join("usr/lib/x86_64-linux-gnu"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start Cyrus master")?;
        let mut server = Self { port, dir, child };
        if let Err(err) = wait_for_port(port, Duration::from_secs(10)) {
            let log = server.log();
            terminate(&mut server.child);
            anyhow::bail!("{err}; cyrus said:\n{log}");
        }
        Ok(server)
    }

    /// Adds a user with a new mailbox: INBOX alone, or with `folders` created and
    /// marked with their special use (`("Sent", Some("\\Sent"))`).
    pub async fn add_user(
        &self,
        user: &str,
        password: &str,
        folders: &[(&str, Option<&str>)],
    ) -> anyhow::Result<()> {
        saslpasswd(self.dir.path(), user, password)?;
        let mut admin = imap::login_at(self.port, ADMIN, ADMIN_PW).await?;
        admin
            .create(format!("user.{user}"))
            .await
            .with_context(|| format!("CREATE user.{user}"))?;
        let _ = admin.logout().await;
        let mut s = imap::login_at(self.port, user, password).await?;
        for (name, special) in folders {
            let folder = self.folder(name);
            match special {
                Some(use_) => s
                    .run_command_and_check_ok(format!("CREATE \"{folder}\" (USE ({use_}))"))
                    .await
                    .with_context(|| format!("CREATE {folder} {use_}"))?,
                None => s.create(&folder).await?,
            }
        }
        let _ = s.logout().await;
        Ok(())
    }

    pub async fn login(&self, user: &str, password: &str) -> anyhow::Result<ImapSession> {
        imap::login_at(self.port, user, password).await
    }

    /// A path with `/` between levels, spelled the Cyrus way: `INBOX.Sent Items`,
    /// `INBOX.Projects.2019`, modified UTF-7 for what is not ASCII.
    pub fn folder(&self, path: &str) -> String {
        if path.eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        let encoded: Vec<String> = path
            .split('/')
            .map(|s| utf7_imap::encode_utf7_imap(s.to_owned()))
            .collect();
        format!("INBOX.{}", encoded.join("."))
    }

    pub fn log(&self) -> String {
        ["log/master.log", "log/cyrus.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn saslpasswd(dir: &Path, user: &str, password: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new("saslpasswd2")
        .args(["-p", "-c", "-u", "localhost", "-f"])
        .arg(dir.join("sasldb2"))
        .arg(user)
        .stdin(Stdio::piped())
        .spawn()
        .context("saslpasswd2 (package sasl2-bin)")?;
    if let Some(stdin) = child.stdin.as_mut() {
        stdin.write_all(password.as_bytes())?;
    }
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "saslpasswd2 failed for {user}");
    // Cyrus reads the sasldb as its own user.
    let _ = Command::new("chown")
        .args(["cyrus:mail"])
        .arg(dir.join("sasldb2"))
        .status();
    Ok(())
}

fn imapd_conf(d: &Path) -> String {
    let d = d.display();
    format!(
        "# Written by Ferry's test harness.
configdirectory: {d}/conf
partition-default: {d}/spool
defaultpartition: default
admins: {ADMIN}
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {d}/sasldb2
sasl_mech_list: PLAIN LOGIN
allowplaintext: yes
servername: localhost
altnamespace: no
unixhierarchysep: no
proc_path: {d}/proc
mboxname_lockpath: {d}/lock
"
    )
}

fn cyrus_conf(bin: &Path, conf: &Path, port: u16) -> String {
    let (bin, conf) = (bin.display(), conf.display());
    format!(
        "START {{
  recover cmd=\"{bin}/ctl_cyrusdb -C {conf} -r\"
}}
SERVICES {{
  imap cmd=\"{bin}/imapd -C {conf}\" listen=\"127.0.0.1:{port}\" prefork=0
}}
EVENTS {{
}}
DAEMON {{
}}
"
    )
}
