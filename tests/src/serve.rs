//! `ferry serve` as a child process, the way an operator runs it: its log kept in a
//! file for the test to read, killable at any moment and started again on the same
//! data directory and port.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::app::{ADMIN_PASSWORD, ferry_binary};
use crate::net::{free_port, terminate, wait_for_port};

pub struct FerryProcess {
    pub port: u16,
    /// This process's own directory: its log (and its data, unless it runs beside
    /// another process).
    pub data_dir: tempfile::TempDir,
    /// Where `FERRY_DATA_DIR` points: `data_dir`, or the first process's.
    data_path: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl FerryProcess {
    /// Starts `ferry serve` on a fresh SQLite data directory with these `FERRY_*`
    /// settings added.
    pub fn start(env: &[(&str, String)]) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let mut p = Self {
            port: free_port(),
            data_path: data_dir.path().to_path_buf(),
            data_dir,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            child: None,
        };
        p.restart()?;
        Ok(p)
    }

    /// A second `ferry serve` on this one's data directory (its key and, with SQLite,
    /// its database) and settings, on its own port: a provider running two processes.
    pub fn beside(&self) -> anyhow::Result<Self> {
        let mut p = Self {
            port: free_port(),
            data_dir: tempfile::tempdir()?,
            data_path: self.data_path.clone(),
            env: self.env.clone(),
            child: None,
        };
        p.restart()?;
        Ok(p)
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process's peak resident memory so far, in bytes (Linux's VmHWM).
    pub fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("ferry.log")
    }

    /// Everything Ferry has logged so far, across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn command(&self, data_dir: &Path) -> Command {
        let mut cmd = Command::new(ferry_binary());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FERRY_DATA_DIR", data_dir)
            .env("FERRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("FERRY_LOG__FILTER", "info");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts (again) after a kill or a stop.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.spawn()?;
        self.wait_healthy()
    }

    /// Starts without waiting for it to answer: for a process that may end by itself
    /// (a crash point) before it would.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = self
            .command(&self.data_path)
            .args(["serve", "--bind", &format!("127.0.0.1:{}", self.port)])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("ferry serve starts")?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_healthy(&mut self) -> anyhow::Result<()> {
        wait_for_port(self.port, Duration::from_secs(30))?;
        // The port is bound before the schema is applied: wait for an answer.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !self.healthy() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "ferry serve does not answer /healthz:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        if conn
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    }

    /// Waits up to `timeout` for the process to end by itself (a crash point's
    /// abort); true when it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            match self.child.as_mut().map(Child::try_wait) {
                None | Some(Ok(Some(_))) | Some(Err(_)) => {
                    self.child = None;
                    return true;
                }
                Some(Ok(None)) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        false
    }

    /// SIGKILL: no shutdown, no last write.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// An API token with these scopes, made with `ferry token create`.
    pub fn token(&self, scopes: &[&str]) -> anyhow::Result<String> {
        let mut cmd = self.command(&self.data_path);
        cmd.args(["token", "create", "--name", "test"]);
        for s in scopes {
            cmd.args(["--scope", s]);
        }
        let out = cmd.output()?;
        anyhow::ensure!(
            out.status.success(),
            "ferry token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }
}

impl Drop for FerryProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}
