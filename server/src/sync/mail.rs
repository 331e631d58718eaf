//! Copies one mailbox from a source IMAP server to a destination IMAP server: the
//! folder tree, then every folder's messages in UID order, in batches, with the
//! checkpoint saved after each batch.
//!
//! Nothing lost, nothing doubled: a message counts as done only once its copy is
//! confirmed (tagged OK to APPEND) and the ledger says so on disk. Before a batch is
//! appended its keys are saved as "in flight"; after a crash, a destination message
//! with an in-flight key that no ledger entry claims is that batch's copy and is
//! claimed instead of copied again.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde::Serialize;

use super::checkpoint::{CheckpointStore, Entry, FolderState, MigrationState};
use crate::connectors::imap::{ConnectError, ImapConnection, MessageMeta, OpError};
use crate::domain::{DuplicatePolicy, ImapEndpoint, Mode};
use crate::planner::folders::{FolderPlan, Selection, Skipped, map_folders};

/// Messages fetched and appended per batch (and per checkpoint).
const BATCH_MESSAGES: usize = 200;
/// Bytes fetched per batch; a larger message goes in a batch of its own.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// Reconnections after a dropped connection before the run gives up.
const MAX_RECONNECTS: u32 = 6;
/// Backoff between reconnections: doubles from the first to the last.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(80);

#[derive(Debug, Clone)]
pub struct MailJob {
    pub source: ImapEndpoint,
    pub dest: ImapEndpoint,
    pub mode: Mode,
    pub duplicates: DuplicatePolicy,
    pub delete_source: bool,
    /// Only messages whose INTERNALDATE is on or after this day (UTC).
    pub since: Option<NaiveDate>,
    pub selection: Selection,
    pub count_first: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    Refused(String),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// One message that could not be copied.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub uid: u32,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderReport {
    pub source: String,
    pub source_path: String,
    pub dest: String,
    pub dest_path: String,
    /// Messages this run looked at (new or retried).
    pub expected: u64,
    pub copied: u64,
    /// Already at the destination, or outside `--since`.
    pub skipped: u64,
    pub failed: u64,
    /// Handled by an earlier run.
    pub already_done: u64,
    pub bytes: u64,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub expected: u64,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub source: String,
    pub dest: String,
    pub folders: Vec<FolderReport>,
    pub skipped_folders: Vec<Skipped>,
    pub created_folders: Vec<String>,
    pub totals: Totals,
    pub elapsed_ms: u64,
}

impl Report {
    /// Every message copied or deliberately skipped.
    pub fn complete(&self) -> bool {
        self.totals.failed == 0
    }
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Copied,
    Skipped,
    Failed,
}

/// Where progress goes: bars on a terminal, log lines elsewhere, the database for jobs.
pub trait Progress: Send + Sync {
    /// Before copying: each folder and, with a pre-count, its message count.
    fn planned(&self, _folders: &[(String, Option<u64>)]) {}
    fn folder_started(&self, _folder: &str, _pending: u64) {}
    fn message(&self, _folder: &str, _bytes: u64, _outcome: Outcome) {}
    fn folder_done(&self, _report: &FolderReport) {}
}

/// Progress that goes nowhere.
pub struct Silent;
impl Progress for Silent {}

struct Sides {
    src: ImapConnection,
    dst: ImapConnection,
}

async fn connect(job: &MailJob) -> Result<Sides, ConnectError> {
    let (src, dst) = tokio::join!(
        ImapConnection::connect(&job.source),
        ImapConnection::connect(&job.dest)
    );
    Ok(Sides {
        src: src?,
        dst: dst?,
    })
}

/// Runs the migration to the end (or to a failure it cannot get past).
pub async fn run<C: CheckpointStore>(
    job: &MailJob,
    checkpoints: &C,
    progress: &dyn Progress,
) -> Result<Report, MigrateError> {
    let started = Instant::now();
    let mut sides = connect(job).await?;
    if job.delete_source && !sides.dst.caps.uidplus {
        return Err(MigrateError::Refused(
            "--delete-source needs a destination with UIDPLUS, to confirm each copy before deleting".into(),
        ));
    }
    let mut state = checkpoints.load().await?;
    let (source_folders, dest_folders) = (
        sides.src.list_folders().await,
        sides.dst.list_folders().await,
    );
    let (source_folders, dest_folders) = (
        source_folders.map_err(op_error)?,
        dest_folders.map_err(op_error)?,
    );
    let mapping = map_folders(&source_folders, &dest_folders, &job.selection);
    let mut report = Report {
        source: job.source.to_string(),
        dest: job.dest.to_string(),
        skipped_folders: mapping.skipped.clone(),
        ..Default::default()
    };

    // The tree first: parents before children, so the order of `mapping` (sorted) works.
    let dest_subscribed: HashSet<&str> = dest_folders
        .iter()
        .filter(|f| f.subscribed)
        .map(|f| f.raw.as_str())
        .collect();
    let mut created: HashSet<String> = HashSet::new();
    for plan in &mapping.folders {
        if plan.create && created.insert(plan.dest.clone()) {
            sides
                .dst
                .create_folder(&plan.dest)
                .await
                .map_err(op_error)?;
            report.created_folders.push(plan.dest.clone());
        }
        if plan.subscribe && !dest_subscribed.contains(plan.dest.as_str()) {
            // A server that refuses subscriptions does not stop a migration.
            if let Err(err) = sides.dst.subscribe(&plan.dest).await {
                tracing::warn!(folder = %plan.dest, error = %err, "Subscription not kept");
            }
        }
    }
    if job.mode == Mode::FoldersOnly {
        report.folders = mapping.folders.iter().map(folder_report).collect();
        report.elapsed_ms = elapsed_ms(started);
        return Ok(report);
    }

    let copied_folders: Vec<&FolderPlan> =
        mapping.folders.iter().filter(|p| p.copy_messages).collect();
    let mut counts = Vec::new();
    for plan in &copied_folders {
        let count = if job.count_first {
            Some(u64::from(
                sides
                    .src
                    .status(&plan.source)
                    .await
                    .map_err(op_error)?
                    .exists,
            ))
        } else {
            None
        };
        counts.push((plan.source_path.clone(), count));
    }
    progress.planned(&counts);

    for plan in copied_folders {
        let mut attempt = 0;
        let folder_report = loop {
            match copy_folder(&mut sides, job, plan, &mut state, checkpoints, progress).await {
                Ok(r) => break r,
                Err(FolderError::Other(err)) => return Err(MigrateError::Other(err)),
                Err(FolderError::Connection(why)) if attempt < MAX_RECONNECTS => {
                    attempt += 1;
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(1 << (attempt - 1))
                        .min(MAX_BACKOFF);
                    tracing::warn!(folder = %plan.source_path, attempt, error = %why, backoff_s = backoff.as_secs(), "Connection lost; reconnecting");
                    tokio::time::sleep(backoff).await;
                    match connect(job).await {
                        Ok(new) => sides = new,
                        Err(err) => tracing::warn!(error = %err, "Reconnect failed"),
                    }
                }
                Err(FolderError::Connection(why)) => {
                    return Err(MigrateError::Other(anyhow::anyhow!(
                        "Gave up on {} after {MAX_RECONNECTS} reconnections: {why}",
                        plan.source_path
                    )));
                }
            }
        };
        progress.folder_done(&folder_report);
        let t = &mut report.totals;
        t.expected += folder_report.expected;
        t.copied += folder_report.copied;
        t.skipped += folder_report.skipped;
        t.failed += folder_report.failed;
        t.bytes += folder_report.bytes;
        report.folders.push(folder_report);
    }
    sides.src.logout().await;
    sides.dst.logout().await;
    report.elapsed_ms = elapsed_ms(started);
    Ok(report)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn op_error(err: OpError) -> MigrateError {
    MigrateError::Other(anyhow::anyhow!("{err}"))
}

fn folder_report(plan: &FolderPlan) -> FolderReport {
    FolderReport {
        source: plan.source.clone(),
        source_path: plan.source_path.clone(),
        dest: plan.dest.clone(),
        dest_path: plan.dest_path.clone(),
        ..Default::default()
    }
}

enum FolderError {
    Connection(String),
    Other(anyhow::Error),
}

impl From<OpError> for FolderError {
    fn from(err: OpError) -> Self {
        match err {
            OpError::Connection(why) => FolderError::Connection(why),
            OpError::Refused(why) => FolderError::Other(anyhow::anyhow!("{why}")),
        }
    }
}

impl From<anyhow::Error> for FolderError {
    fn from(err: anyhow::Error) -> Self {
        FolderError::Other(err)
    }
}

/// What to do with one pending source message.
enum Decision {
    /// Its copy is at the destination already (uid of that copy).
    Claim {
        dest_uid: u32,
        ours: bool,
    },
    Copy,
}

async fn copy_folder<C: CheckpointStore>(
    sides: &mut Sides,
    job: &MailJob,
    plan: &FolderPlan,
    state: &mut MigrationState,
    checkpoints: &C,
    progress: &dyn Progress,
) -> Result<FolderReport, FolderError> {
    let mut report = folder_report(plan);
    let status = sides
        .src
        .select(&plan.source)
        .await
        .map_err(|e| folder_select_error(e, &plan.source_path))?;
    let mut fs = state.folders.get(&plan.source).cloned().unwrap_or_default();
    if fs.uidvalidity != status.uidvalidity || fs.dest != plan.dest {
        if fs.uidvalidity != 0 {
            tracing::warn!(folder = %plan.source_path, "UIDVALIDITY changed; matching by message key");
        }
        // Source UIDs are meaningless now: the ledger's keys still count the copies made.
        let previous_keys: Vec<String> = fs.ledger.values().map(|e| e.key.clone()).collect();
        fs = FolderState {
            uidvalidity: status.uidvalidity,
            dest: plan.dest.clone(),
            ..Default::default()
        };
        // Counted as ours: their copies at the destination are claimed, not doubled.
        for (i, key) in previous_keys.into_iter().enumerate() {
            fs.in_flight
                .insert(u32::MAX - u32::try_from(i).unwrap_or(u32::MAX), key);
        }
    }
    report.already_done = fs.ledger.len() as u64;
    let nothing_new = status.uidnext.saturating_sub(1) <= fs.last_uid
        && fs.failed.is_empty()
        && fs.in_flight.is_empty();
    if nothing_new {
        return Ok(report);
    }

    // What is new since the last run, and what failed then.
    let mut pending: Vec<MessageMeta> = sides
        .src
        .fetch_meta(&format!("{}:*", fs.last_uid + 1))
        .await?
        .into_iter()
        .filter(|m| m.uid > fs.last_uid)
        .collect();
    if !fs.failed.is_empty() {
        let retry: Vec<u32> = fs.failed.keys().copied().collect();
        pending.extend(
            sides
                .src
                .fetch_meta(&crate::connectors::imap::uid_set(&retry))
                .await?,
        );
    }
    // A batch cut short leaves its first messages in the ledger above `last_uid`.
    pending.retain(|m| !fs.ledger.contains_key(&m.uid));
    pending.sort_by_key(|m| m.uid);
    pending.dedup_by_key(|m| m.uid);
    let newest = pending.iter().map(|m| m.uid).max().unwrap_or(fs.last_uid);
    if let Some(since) = job.since {
        let (keep, old): (Vec<_>, Vec<_>) = pending.into_iter().partition(|m| {
            m.internal_date
                .is_none_or(|d| d.with_timezone(&chrono::Utc).date_naive() >= since)
        });
        report.skipped += old.len() as u64;
        report.expected += old.len() as u64;
        for m in &old {
            fs.failed.remove(&m.uid);
        }
        pending = keep;
    }
    report.expected += pending.len() as u64;
    progress.folder_started(&plan.source_path, pending.len() as u64);

    // The destination's own messages, indexed by key (only those not seen before).
    let dstatus = sides
        .dst
        .select(&plan.dest)
        .await
        .map_err(|e| folder_select_error(e, &plan.dest_path))?;
    if fs.dest_uidvalidity != dstatus.uidvalidity {
        fs.dest_uidvalidity = dstatus.uidvalidity;
        fs.dest_seen_uid = 0;
        fs.dest_unclaimed.clear();
        for entry in fs.ledger.values_mut() {
            entry.dest_uid = None;
        }
    }
    if !pending.is_empty() && dstatus.uidnext.saturating_sub(1) > fs.dest_seen_uid {
        let claimed: HashSet<u32> = fs.ledger.values().filter_map(|e| e.dest_uid).collect();
        let mut ledger_without_uid: BTreeMap<&str, usize> = BTreeMap::new();
        for e in fs
            .ledger
            .values()
            .filter(|e| e.dest_uid.is_none() && !e.skipped)
        {
            *ledger_without_uid.entry(e.key.as_str()).or_default() += 1;
        }
        let index = sides
            .dst
            .fetch_meta(&format!("{}:*", fs.dest_seen_uid + 1))
            .await?;
        for m in index
            .into_iter()
            .filter(|m| m.uid > fs.dest_seen_uid && !claimed.contains(&m.uid))
        {
            // Copies made without UIDPLUS are known by key only.
            if let Some(n) = ledger_without_uid
                .get_mut(m.key.as_str())
                .filter(|n| **n > 0)
            {
                *n -= 1;
                continue;
            }
            fs.dest_unclaimed.entry(m.key).or_default().push(m.uid);
        }
        fs.dest_seen_uid = dstatus.uidnext.saturating_sub(1);
    }

    // Decide each message, in UID order.
    let in_flight: HashSet<String> = fs.in_flight.values().cloned().collect();
    let mut decisions = Vec::with_capacity(pending.len());
    let mut to_replace: Vec<u32> = Vec::new();
    for m in &pending {
        let ours = in_flight.contains(&m.key);
        let unclaimed = fs.dest_unclaimed.get_mut(&m.key).filter(|v| !v.is_empty());
        let decision = match (unclaimed, job.duplicates) {
            (Some(list), _) if ours => Decision::Claim {
                dest_uid: list.remove(0),
                ours: true,
            },
            (Some(list), DuplicatePolicy::Skip) => Decision::Claim {
                dest_uid: list.remove(0),
                ours: false,
            },
            (Some(list), DuplicatePolicy::Overwrite) => {
                to_replace.push(list.remove(0));
                Decision::Copy
            }
            _ => Decision::Copy,
        };
        decisions.push(decision);
    }
    fs.dest_unclaimed.retain(|_, v| !v.is_empty());
    if !to_replace.is_empty() {
        sides.dst.delete_uids(&to_replace).await?;
    }

    // Claims first (no IO), then copies in batches.
    let mut copies: Vec<&MessageMeta> = Vec::new();
    for (m, decision) in pending.iter().zip(decisions) {
        match decision {
            Decision::Claim { dest_uid, ours } => {
                fs.ledger.insert(
                    m.uid,
                    Entry {
                        key: m.key.clone(),
                        dest_uid: Some(dest_uid),
                        skipped: !ours,
                    },
                );
                fs.failed.remove(&m.uid);
                let outcome = if ours {
                    Outcome::Copied
                } else {
                    Outcome::Skipped
                };
                if ours {
                    report.copied += 1;
                } else {
                    report.skipped += 1;
                }
                progress.message(&plan.source_path, u64::from(m.size), outcome);
            }
            Decision::Copy => copies.push(m),
        }
    }
    fs.in_flight.clear();

    let mut start = 0;
    while start < copies.len() {
        let mut end = start;
        let mut bytes = 0u64;
        while end < copies.len()
            && end - start < BATCH_MESSAGES
            && (end == start || bytes + u64::from(copies[end].size) <= BATCH_BYTES)
        {
            bytes += u64::from(copies[end].size);
            end += 1;
        }
        let batch = &copies[start..end];
        fs.in_flight = batch.iter().map(|m| (m.uid, m.key.clone())).collect();
        persist(state, checkpoints, &plan.source, &fs).await?;

        let uids: Vec<u32> = batch.iter().map(|m| m.uid).collect();
        let bodies: BTreeMap<u32, Vec<u8>> =
            sides.src.fetch_bodies(&uids).await?.into_iter().collect();
        let mut confirmed = Vec::new();
        for m in batch {
            let Some(body) = bodies.get(&m.uid) else {
                // Expunged at the source since the listing: nothing to copy.
                fs.ledger.insert(
                    m.uid,
                    Entry {
                        key: m.key.clone(),
                        dest_uid: None,
                        skipped: true,
                    },
                );
                report.skipped += 1;
                progress.message(&plan.source_path, 0, Outcome::Skipped);
                continue;
            };
            match sides
                .dst
                .append(&plan.dest, &m.flags, m.internal_date, body)
                .await
            {
                Ok(dest_uid) => {
                    crash_point::after_append();
                    fs.ledger.insert(
                        m.uid,
                        Entry {
                            key: m.key.clone(),
                            dest_uid,
                            skipped: false,
                        },
                    );
                    fs.failed.remove(&m.uid);
                    if dest_uid.is_some() {
                        confirmed.push(m.uid);
                    }
                    report.copied += 1;
                    report.bytes += body.len() as u64;
                    progress.message(&plan.source_path, body.len() as u64, Outcome::Copied);
                }
                Err(OpError::Refused(reason)) => {
                    tracing::warn!(folder = %plan.source_path, uid = m.uid, %reason, "Message refused by the destination");
                    fs.failed.insert(m.uid, reason.clone());
                    report.failed += 1;
                    report.failures.push(Failure { uid: m.uid, reason });
                    progress.message(&plan.source_path, 0, Outcome::Failed);
                }
                Err(err @ OpError::Connection(_)) => return Err(err.into()),
            }
        }
        fs.in_flight.clear();
        fs.last_uid = fs.last_uid.max(batch.last().map_or(0, |m| m.uid));
        persist(state, checkpoints, &plan.source, &fs).await?;
        if job.delete_source && !confirmed.is_empty() {
            sides.src.delete_uids(&confirmed).await?;
        }
        start = end;
    }

    fs.last_uid = fs.last_uid.max(newest);
    if job.delete_source {
        let claimed: Vec<u32> = fs
            .ledger
            .iter()
            .filter(|(_, e)| e.skipped && e.dest_uid.is_some())
            .map(|(uid, _)| *uid)
            .collect();
        if !claimed.is_empty() {
            sides.src.delete_uids(&claimed).await?;
        }
    }
    persist(state, checkpoints, &plan.source, &fs).await?;
    Ok(report)
}

/// Puts the folder's state in the migration's and saves the whole.
async fn persist<C: CheckpointStore>(
    state: &mut MigrationState,
    checkpoints: &C,
    source: &str,
    fs: &FolderState,
) -> anyhow::Result<()> {
    state.folders.insert(source.to_owned(), fs.clone());
    checkpoints.save(state).await
}

fn folder_select_error(err: OpError, folder: &str) -> FolderError {
    match err {
        OpError::Refused(why) => {
            FolderError::Other(anyhow::anyhow!("Cannot open folder {folder:?}: {why}"))
        }
        other => other.into(),
    }
}

/// A test hook for the crash tests: with `FERRY_TEST_ABORT_AFTER_APPENDS=N` in the
/// environment, the process aborts right after the Nth confirmed APPEND, before the
/// checkpoint records it: the worst moment for a crash.
mod crash_point {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    static APPENDS: AtomicU64 = AtomicU64::new(0);

    pub fn after_append() {
        let limit = LIMIT.get_or_init(|| {
            std::env::var("FERRY_TEST_ABORT_AFTER_APPENDS")
                .ok()
                .and_then(|v| v.parse().ok())
        });
        if let Some(limit) = limit
            && APPENDS.fetch_add(1, Ordering::SeqCst) + 1 >= *limit
        {
            std::process::abort();
        }
    }
}
