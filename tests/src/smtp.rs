//! A real SMTP server (Debian's python3-aiosmtpd) that keeps every message it receives
//! in a maildir, so a test can read what Ferry sent.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::net::{free_port, terminate, wait_for_port};

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// One received message: its raw bytes and parsed headers.
#[derive(Debug, Clone)]
pub struct Received {
    pub raw: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a received message parses")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    pub fn to(&self) -> Vec<String> {
        self.parsed()
            .to()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.address().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }
}

impl SmtpSink {
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let maildir: PathBuf = dir.path().join("maildir");
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log"))?;
        // Debian's python3, where python3-aiosmtpd is installed (not a pyenv shim).
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start aiosmtpd (scripts/install-test-servers installs it)")?;
        let mut sink = Self { port, dir, child };
        if let Err(err) = wait_for_port(port, Duration::from_secs(10)) {
            let log =
                std::fs::read_to_string(sink.dir.path().join("aiosmtpd.log")).unwrap_or_default();
            terminate(&mut sink.child);
            anyhow::bail!("{err}; aiosmtpd said: {log}");
        }
        Ok(sink)
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let new = self.dir.path().join("maildir").join("new");
        let mut files: Vec<_> = std::fs::read_dir(&new)
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .into_iter()
            .filter_map(|p| std::fs::read(p).ok())
            .map(|raw| Received { raw })
            .collect()
    }

    /// Waits until a message satisfying `pred` arrives.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&Received) -> bool,
    ) -> anyhow::Result<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| pred(m)) {
                return Ok(m);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "no matching email reached the SMTP server within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
