//! Random kills: `ferry migrate` killed with SIGKILL twice at moments no one chose,
//! then run to its end, trial after trial, each judged by a byte-for-byte comparison
//! of the whole mailbox (nothing lost, nothing doubled). The fixed crash points of the
//! suite find the moments someone thought of; this finds the others. `scripts/kill-loop`
//! runs many trials; the suite runs a few.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::app::ferry_binary;
use crate::corpus;
use crate::dovecot::{Dovecot, Layout, Options};
use crate::imap::{self, SeedMessage};

const SRC_USER: &str = "jane";
const PW: &str = "kill-loop-secret";

/// Message content that must survive: bytes, flags, INTERNALDATE (seconds).
type Content = (Vec<u8>, Vec<String>, i64);

/// A source with several folders, batches cut by count and by size, and two messages
/// large enough to be streamed, so that kills land in every kind of step.
fn mailbox() -> Vec<(&'static str, Vec<SeedMessage>)> {
    let msg = |n: usize, size: usize| SeedMessage {
        body: corpus::message(n, n % 9 != 4, size),
        flags: match n % 4 {
            0 => vec!["\\Seen".into()],
            1 => vec!["\\Seen".into(), "$Work".into()],
            2 => vec!["\\Flagged".into()],
            _ => vec![],
        },
        internal_date: None,
    };
    vec![
        (
            "INBOX",
            (0..450).map(|n| msg(n, 1_500 + n * 13 % 4_000)).collect(),
        ),
        ("Archive", (1000..1033).map(|n| msg(n, 2_000)).collect()),
        (
            "Archive/Big",
            (2000..2012)
                .map(|n| msg(n, if n % 6 == 0 { 4_500_000 } else { 900_000 }))
                .collect(),
        ),
        ("Lists", (3000..3260).map(|n| msg(n, 800)).collect()),
    ]
}

/// A small deterministic generator (no clock): the kill moments of trial `n`.
pub fn kill_delays(seed: u64, n: u64, max_ms: u64) -> [Duration; 2] {
    let mut x = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % max_ms.max(1)
    };
    [Duration::from_millis(next()), Duration::from_millis(next())]
}

/// The servers of a series of trials: one source, one destination with a fresh
/// mailbox per trial.
pub struct KillLoop {
    pub src: Dovecot,
    pub dst: Dovecot,
    source: BTreeMap<String, Vec<Content>>,
    state: tempfile::TempDir,
}

/// What one trial found.
#[derive(Debug)]
pub struct Verdict {
    pub trial: u64,
    pub delays: [Duration; 2],
    /// Empty when the destination is the source, byte for byte.
    pub problems: Vec<String>,
}

impl KillLoop {
    pub async fn start() -> anyhow::Result<Self> {
        let options = Options {
            layout: Layout::Slash,
            ..Default::default()
        };
        let src = Dovecot::start_with(options.clone())?;
        let dst = Dovecot::start_with(options)?;
        src.add_user(SRC_USER, PW)?;
        let mut s = imap::login(&src, SRC_USER, PW).await?;
        imap::seed_mailbox(&src, &mut s, &mailbox()).await?;
        let source = read(&src, SRC_USER).await?;
        Ok(Self {
            src,
            dst,
            source,
            state: tempfile::tempdir()?,
        })
    }

    /// One trial: two runs killed after `delays`, a third to the end, then the check.
    pub async fn trial(&self, trial: u64, delays: [Duration; 2]) -> anyhow::Result<Verdict> {
        let user = format!("trial{trial}");
        self.dst.add_user(&user, PW)?;
        let state = self.state.path().join(format!("{user}.json"));
        let mut problems = Vec::new();
        for delay in delays {
            let mut child = tokio::process::Command::from(self.command(&user, &state))
                .kill_on_drop(true)
                .spawn()?;
            if tokio::time::timeout(delay, child.wait()).await.is_err() {
                child.kill().await?;
            }
        }
        let out = tokio::process::Command::from(self.command(&user, &state))
            .output()
            .await?;
        if !out.status.success() {
            problems.push(format!(
                "the last run exited {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let dest = read(&self.dst, &user).await?;
        problems.extend(compare(&self.source, &dest));
        Ok(Verdict {
            trial,
            delays,
            problems,
        })
    }

    fn command(&self, user: &str, state: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(ferry_binary());
        cmd.arg("migrate")
            .args(["--source-host", "127.0.0.1", "--source-security", "none"])
            .args(["--source-port", &self.src.port.to_string()])
            .args(["--source-user", SRC_USER])
            .args(["--dest-host", "127.0.0.1", "--dest-security", "none"])
            .args(["--dest-port", &self.dst.port.to_string()])
            .args(["--dest-user", user, "--connections", "3", "--json"])
            .arg("--state")
            .arg(state)
            .env("FERRY_SOURCE_PASSWORD", PW)
            .env("FERRY_DEST_PASSWORD", PW)
            .env("RUST_LOG", "error")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd
    }
}

async fn read(server: &Dovecot, user: &str) -> anyhow::Result<BTreeMap<String, Vec<Content>>> {
    let mut s = imap::login(server, user, PW).await?;
    let all = imap::read_all(&mut s).await?;
    Ok(all
        .into_iter()
        .map(|(folder, messages)| {
            let mut contents: Vec<Content> = messages
                .iter()
                .map(|m| (m.body.clone(), m.flags.clone(), m.internal_date.timestamp()))
                .collect();
            contents.sort();
            (folder, contents)
        })
        .collect())
}

/// Every source folder's messages at the destination, as a multiset: what is missing
/// and what is doubled, folder by folder.
fn compare(
    source: &BTreeMap<String, Vec<Content>>,
    dest: &BTreeMap<String, Vec<Content>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (folder, want) in source {
        let got = dest.get(folder).cloned().unwrap_or_default();
        if &got != want {
            let missing = want.iter().filter(|m| !got.contains(m)).count();
            problems.push(format!(
                "{folder}: {} at the destination for {} at the source ({missing} missing or changed)",
                got.len(),
                want.len()
            ));
        }
    }
    problems
}
