//! Copies one mailbox from a source IMAP server to a destination IMAP server: the
//! folder tree, then every folder's messages in UID order, in batches, with the
//! checkpoint saved after each batch.
//!
//! Nothing lost, nothing doubled: a message counts as done only once its copy is
//! confirmed (tagged OK to APPEND) and the ledger says so on disk. Before a batch is
//! appended its keys are saved as "in flight"; after a crash, a destination message
//! with an in-flight key that no ledger entry claims is that batch's copy and is
//! claimed instead of copied again. A server may still finish that batch after its
//! client died, so what is not there at once is looked for again after the rest of
//! the folder, once `IN_FLIGHT_GRACE` has passed since the batch was sent.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde::Serialize;

use super::checkpoint::{CheckpointStore, Entry, FolderState};
use crate::connectors::imap::{
    AppendItem, Bodies, ConnectError, ImapConnection, MessageMeta, OpError, StreamError,
    stream_append,
};
use crate::domain::{DuplicatePolicy, ImapEndpoint, Mode};
use crate::planner::folders::{FolderPlan, Selection, Skipped, map_folders};

/// Messages fetched and appended per batch (one MULTIAPPEND, one checkpoint).
const BATCH_MESSAGES: usize = 200;
/// Bytes fetched per batch; a larger message goes in a batch of its own. A worker
/// holds at most two batches (one being appended, the next being fetched).
const BATCH_BYTES: u64 = 6 * 1024 * 1024;
/// Messages larger than this are streamed in chunks, never held whole.
const STREAM_ABOVE: u64 = 4 * 1024 * 1024;
/// How long a folder must stay unchanged after a crash before its copies are counted.
const SETTLE: Duration = Duration::from_secs(1);
/// How long after a batch was sent its copies may still appear at the destination
/// when the run that sent it died (a server finishing the command of a dead client, a
/// slow link delivering its last bytes). Only ever waited for after a crash or a
/// dropped connection, and only for what is not found at once.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(15);
/// Folders copied at once (each with its own connection to either server) unless
/// the job says otherwise.
pub const DEFAULT_CONNECTIONS: usize = 3;
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
    /// Connections per side, one folder each (at least 1).
    pub connections: usize,
    /// The pass this run belongs to, recorded with each copy so that "delete migrated
    /// items from pass N on" knows what to remove (0 for `ferry migrate`).
    pub pass: u32,
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
    /// Before copying: each folder to copy and, with a pre-count, its message count.
    fn planned(&self, _folders: &[(&FolderPlan, Option<u64>)]) {}
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
    let state = checkpoints.load().await?;
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

    // STATUS on every folder: the pre-count, and the folders with nothing to do (a
    // second pass on an unchanged mailbox opens none).
    let mut counts = Vec::new();
    let mut queue = VecDeque::new();
    let mut reports: Vec<(usize, FolderReport)> = Vec::new();
    for (index, plan) in mapping
        .folders
        .iter()
        .filter(|p| p.copy_messages)
        .enumerate()
    {
        let status = sides.src.status(&plan.source).await.map_err(op_error)?;
        let fs = state.folders.get(&plan.source);
        counts.push((plan, job.count_first.then_some(u64::from(status.exists))));
        match fs.filter(|fs| nothing_to_do(fs, plan, status, job)) {
            Some(fs) => {
                let mut r = folder_report(plan);
                r.already_done = fs.ledger.len() as u64;
                reports.push((index, r));
            }
            None => queue.push_back((index, plan, fs.cloned().unwrap_or_default())),
        }
    }
    progress.planned(&counts);
    for (_, r) in &reports {
        progress.folder_done(r);
    }

    let workers = job.connections.clamp(1, queue.len().max(1));
    let queue = Mutex::new(queue);
    let results = Mutex::new(reports);
    let first = Mutex::new(Some(sides));
    let worker = |_| async {
        let mut sides = lock(&first).take();
        loop {
            let Some((index, plan, fs)) = lock(&queue).pop_front() else {
                break;
            };
            let connected = match sides.take() {
                Some(s) => s,
                None => connect(job).await?,
            };
            let (done, folder_report) =
                copy_folder_with_retries(connected, job, plan, fs, checkpoints, progress).await?;
            progress.folder_done(&folder_report);
            lock(&results).push((index, folder_report));
            sides = Some(done);
        }
        if let Some(sides) = sides {
            tokio::join!(sides.src.logout(), sides.dst.logout());
        }
        Ok::<_, MigrateError>(())
    };
    futures::future::try_join_all((0..workers).map(worker)).await?;

    let mut folders = results.into_inner().unwrap_or_else(|e| e.into_inner());
    folders.sort_by_key(|(index, _)| *index);
    for (_, folder_report) in folders {
        let t = &mut report.totals;
        t.expected += folder_report.expected;
        t.copied += folder_report.copied;
        t.skipped += folder_report.skipped;
        t.failed += folder_report.failed;
        t.bytes += folder_report.bytes;
        report.folders.push(folder_report);
    }
    report.elapsed_ms = elapsed_ms(started);
    Ok(report)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when the checkpoint says the folder is done and the source has nothing new.
fn nothing_to_do(
    fs: &FolderState,
    plan: &FolderPlan,
    status: crate::connectors::imap::FolderStatus,
    job: &MailJob,
) -> bool {
    fs.uidvalidity == status.uidvalidity
        && fs.dest == plan.dest
        && status.uidnext.saturating_sub(1) <= fs.last_uid
        && fs.failed.is_empty()
        && fs.in_flight.is_empty()
        && (!job.delete_source
            || fs
                .ledger
                .values()
                .all(|e| e.source_deleted || e.dest_uid.is_none()))
}

/// Copies one folder, reconnecting with backoff when a connection breaks; the
/// checkpoint carries the work from one attempt to the next.
async fn copy_folder_with_retries<C: CheckpointStore>(
    mut sides: Sides,
    job: &MailJob,
    plan: &FolderPlan,
    mut fs: FolderState,
    checkpoints: &C,
    progress: &dyn Progress,
) -> Result<(Sides, FolderReport), MigrateError> {
    let mut report = folder_report(plan);
    report.already_done = fs.ledger.len() as u64;
    // Messages whose size did not match their bytes: copied whole, not streamed.
    let mut whole = HashSet::new();
    let mut attempt = 0;
    loop {
        let cx = Cx {
            job,
            plan,
            checkpoints,
            progress,
        };
        let copied = copy_folder(&mut sides, cx, &mut fs, &mut report, &mut whole).await;
        let mut why = match copied {
            Ok(()) => break,
            Err(FolderError::Other(err)) => return Err(MigrateError::Other(err)),
            Err(FolderError::Connection(why)) => why,
        };
        // A broken connection is closed now and never used again: a command cut short
        // may still be answered on it, or still be arriving at the server.
        drop(sides);
        sides = loop {
            if attempt >= MAX_RECONNECTS {
                return Err(MigrateError::Other(anyhow::anyhow!(
                    "Gave up on {} after {MAX_RECONNECTS} reconnections: {why}",
                    plan.source_path
                )));
            }
            attempt += 1;
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << (attempt - 1))
                .min(MAX_BACKOFF);
            tracing::warn!(folder = %plan.source_path, attempt, error = %why, backoff_s = backoff.as_secs(), "Connection lost; reconnecting");
            tokio::time::sleep(backoff).await;
            match connect(job).await {
                Ok(new) => break new,
                Err(err) => why = err.to_string(),
            }
        };
    }
    report.failed = report.failures.len() as u64;
    report.expected = report.copied + report.skipped + report.failed;
    Ok((sides, report))
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
    /// In flight when the last run ended and not at the destination (yet).
    Later,
}

/// Messages appended together: one MULTIAPPEND, or one large message streamed.
struct Batch<'a> {
    messages: Vec<&'a MessageMeta>,
    stream: bool,
}

impl Batch<'_> {
    fn uids(&self) -> Vec<u32> {
        self.messages.iter().map(|m| m.uid).collect()
    }
}

fn batches<'a>(copies: &[&'a MessageMeta], whole: &HashSet<u32>) -> Vec<Batch<'a>> {
    let mut out: Vec<Batch<'a>> = Vec::new();
    let mut current: Vec<&'a MessageMeta> = Vec::new();
    let mut bytes = 0u64;
    for &m in copies {
        let size = u64::from(m.size);
        if size > STREAM_ABOVE && !whole.contains(&m.uid) {
            out.push(Batch {
                messages: vec![m],
                stream: true,
            });
            continue;
        }
        if !current.is_empty() && (current.len() >= BATCH_MESSAGES || bytes + size > BATCH_BYTES) {
            out.push(Batch {
                messages: std::mem::take(&mut current),
                stream: false,
            });
            bytes = 0;
        }
        bytes += size;
        current.push(m);
    }
    if !current.is_empty() {
        out.push(Batch {
            messages: current,
            stream: false,
        });
    }
    out
}

/// What became of one message of a batch.
enum Appended {
    Copied {
        dest_uid: Option<u32>,
        bytes: u64,
    },
    Refused(String),
    /// Expunged at the source since the listing: nothing to copy.
    Gone,
}

/// Appends a batch whose bodies are fetched: one MULTIAPPEND when the server offers
/// it (all or nothing), else, or when it refuses, one APPEND per message so that a
/// refusal is the refused message's alone. Returns the outcome of each message up to
/// the first broken connection, and that break.
async fn append_batch(
    dst: &mut ImapConnection,
    folder: &str,
    messages: &[&MessageMeta],
    bodies: &Bodies,
) -> (Vec<Appended>, Option<OpError>) {
    let items: Vec<Option<AppendItem<'_>>> = messages
        .iter()
        .map(|m| {
            bodies.get(m.uid).map(|body| AppendItem {
                flags: &m.flags,
                internal_date: m.internal_date,
                body,
            })
        })
        .collect();
    let present: Vec<AppendItem<'_>> = items.iter().flatten().copied().collect();
    let fits = |item: &AppendItem<'_>| {
        dst.caps
            .appendlimit
            .is_none_or(|limit| item.body.len() as u64 <= limit)
    };
    if dst.caps.multiappend && present.len() > 1 && present.iter().all(fits) {
        match dst.append_many(folder, &present).await {
            Ok(uids) => {
                let mut uids = uids.into_iter();
                let known = uids.len() == present.len();
                let outcomes = items
                    .iter()
                    .map(|item| match item {
                        Some(item) => Appended::Copied {
                            dest_uid: if known { uids.next() } else { None },
                            bytes: item.body.len() as u64,
                        },
                        None => Appended::Gone,
                    })
                    .collect();
                return (outcomes, None);
            }
            Err(OpError::Refused(why)) => {
                tracing::warn!(%folder, %why, "MULTIAPPEND refused; appending one by one");
            }
            Err(err) => return (Vec::new(), Some(err)),
        }
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for item in &items {
        let Some(item) = item else {
            outcomes.push(Appended::Gone);
            continue;
        };
        match dst.append(folder, item).await {
            Ok(dest_uid) => outcomes.push(Appended::Copied {
                dest_uid,
                bytes: item.body.len() as u64,
            }),
            Err(OpError::Refused(reason)) => outcomes.push(Appended::Refused(reason)),
            Err(err) => return (outcomes, Some(err)),
        }
    }
    (outcomes, None)
}

/// What a folder's copy works for and reports to.
struct Cx<'a, C> {
    job: &'a MailJob,
    plan: &'a FolderPlan,
    checkpoints: &'a C,
    progress: &'a dyn Progress,
}

impl<C> Clone for Cx<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for Cx<'_, C> {}

async fn copy_folder<C: CheckpointStore>(
    sides: &mut Sides,
    cx: Cx<'_, C>,
    fs: &mut FolderState,
    report: &mut FolderReport,
    whole: &mut HashSet<u32>,
) -> Result<(), FolderError> {
    let Cx {
        job,
        plan,
        checkpoints,
        progress,
    } = cx;
    let status = sides
        .src
        .select(&plan.source)
        .await
        .map_err(|e| folder_select_error(e, &plan.source_path))?;
    if fs.uidvalidity != status.uidvalidity || fs.dest != plan.dest {
        if fs.uidvalidity != 0 {
            tracing::warn!(folder = %plan.source_path, "UIDVALIDITY changed; matching by message key");
        }
        // Source UIDs are meaningless now: the ledger's keys still count the copies made.
        let previous_keys: Vec<String> = fs.ledger.values().map(|e| e.key.clone()).collect();
        *fs = FolderState {
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

    // What is new since the last run, what failed then, and what was in flight when
    // it ended (those at or below `last_uid` when a later batch went first).
    let mut pending: Vec<MessageMeta> = if status.uidnext.saturating_sub(1) > fs.last_uid {
        sides
            .src
            .fetch_meta(&format!("{}:*", fs.last_uid + 1))
            .await?
            .into_iter()
            .filter(|m| m.uid > fs.last_uid)
            .collect()
    } else {
        Vec::new()
    };
    let retry: Vec<u32> = fs
        .failed
        .keys()
        .chain(fs.in_flight.keys().filter(|uid| **uid <= fs.last_uid))
        .copied()
        .collect();
    if !retry.is_empty() {
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
        for m in &old {
            fs.failed.remove(&m.uid);
            report.failures.retain(|f| f.uid != m.uid);
        }
        pending = keep;
    }
    progress.folder_started(&plan.source_path, pending.len() as u64);

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
    if !pending.is_empty() {
        index_dest(&mut sides.dst, fs, dstatus.uidnext).await?;
    }

    // The batch in flight when the last run ended may have reached the destination,
    // or may still be on its way: the server can finish a command whose client has
    // died, seconds later. What is not there yet waits until the rest is copied and
    // IN_FLIGHT_GRACE has passed since it was sent, then is looked for once more.
    let sent_at = fs.in_flight_at;
    let mut in_flight: HashSet<String> = fs.in_flight.values().cloned().collect();
    for last_look in [false, true] {
        if last_look {
            if pending.is_empty() {
                break;
            }
            let due = sent_at.saturating_add(IN_FLIGHT_GRACE.as_secs() as i64);
            let wait = due.saturating_sub(chrono::Utc::now().timestamp());
            if wait > 0 {
                let wait = Duration::from_secs(wait.unsigned_abs()).min(IN_FLIGHT_GRACE);
                tracing::info!(folder = %plan.source_path, messages = pending.len(), wait_s = wait.as_secs(), "Waiting for the batch in flight at the crash to arrive");
                tokio::time::sleep(wait).await;
            }
            settle(&mut sides.dst, &plan.dest).await?;
            let dstatus = sides
                .dst
                .select(&plan.dest)
                .await
                .map_err(|e| folder_select_error(e, &plan.dest_path))?;
            if dstatus.uidvalidity != fs.dest_uidvalidity {
                return Err(FolderError::Other(anyhow::anyhow!(
                    "the destination folder {} was recreated during the copy",
                    plan.dest_path
                )));
            }
            index_dest(&mut sides.dst, fs, dstatus.uidnext).await?;
        }
        let (copies, later, to_replace) = decide(
            job, plan, fs, report, progress, &pending, &in_flight, last_look,
        );
        if !to_replace.is_empty() {
            sides.dst.delete_uids(&to_replace).await?;
        }
        // Until found or copied again, they stay in flight in every checkpoint.
        fs.in_flight = later.iter().map(|m| (m.uid, m.key.clone())).collect();
        copy_batches(sides, cx, fs, report, whole, &copies).await?;
        in_flight = later.iter().map(|m| m.key.clone()).collect();
        let next: Vec<MessageMeta> = later.into_iter().cloned().collect();
        pending = next;
    }

    fs.last_uid = fs.last_uid.max(newest);
    if job.delete_source {
        // Copies confirmed by an earlier run, and messages the destination already had.
        let left: Vec<u32> = fs
            .ledger
            .iter()
            .filter(|(_, e)| e.dest_uid.is_some() && !e.source_deleted)
            .map(|(uid, _)| *uid)
            .collect();
        delete_from_source(sides, fs, &left).await?;
    }
    checkpoints.save_folder(&plan.source, fs).await?;
    Ok(())
}

/// Indexes the destination's messages above `dest_seen_uid` by key: those neither
/// copied by this migration (its ledger) nor claimed already are `dest_unclaimed`.
async fn index_dest(
    dst: &mut ImapConnection,
    fs: &mut FolderState,
    uidnext: u32,
) -> Result<(), FolderError> {
    if uidnext.saturating_sub(1) <= fs.dest_seen_uid {
        return Ok(());
    }
    let claimed: HashSet<u32> = fs.ledger.values().filter_map(|e| e.dest_uid).collect();
    let mut ledger_without_uid: BTreeMap<&str, usize> = BTreeMap::new();
    for e in fs
        .ledger
        .values()
        .filter(|e| e.dest_uid.is_none() && !e.skipped)
    {
        *ledger_without_uid.entry(e.key.as_str()).or_default() += 1;
    }
    let index = dst
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
    fs.dest_seen_uid = uidnext.saturating_sub(1);
    Ok(())
}

/// What to copy now, what to look for again later, and the destination copies to
/// replace (deleted before the copies are made).
type Decided<'a> = (Vec<&'a MessageMeta>, Vec<&'a MessageMeta>, Vec<u32>);

/// Decides each pending message, in UID order: a copy of it at the destination is
/// claimed (as this migration's when its key was in flight, else as skipped when
/// duplicates are skipped), the rest is returned to copy. A message in flight that
/// is not at the destination is returned apart (`later`), unless `last_look`.
#[allow(clippy::too_many_arguments)]
fn decide<'a>(
    job: &MailJob,
    plan: &FolderPlan,
    fs: &mut FolderState,
    report: &mut FolderReport,
    progress: &dyn Progress,
    pending: &'a [MessageMeta],
    in_flight: &HashSet<String>,
    last_look: bool,
) -> Decided<'a> {
    let mut decisions = Vec::with_capacity(pending.len());
    let mut to_replace: Vec<u32> = Vec::new();
    for m in pending {
        let ours = in_flight.contains(&m.key);
        let unclaimed = fs.dest_unclaimed.get_mut(&m.key).filter(|v| !v.is_empty());
        let decision = match (unclaimed, job.duplicates) {
            (Some(list), _) if ours => Decision::Claim {
                dest_uid: list.remove(0),
                ours: true,
            },
            (None, _) if ours && !last_look => Decision::Later,
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
    tracing::debug!(folder = %plan.source_path, pending = pending.len(), in_flight = in_flight.len(), seen = fs.dest_seen_uid, unclaimed = fs.dest_unclaimed.values().map(Vec::len).sum::<usize>(), "Decided");
    fs.dest_unclaimed.retain(|_, v| !v.is_empty());

    let (mut copies, mut later) = (Vec::new(), Vec::new());
    for (m, decision) in pending.iter().zip(decisions) {
        match decision {
            Decision::Claim { dest_uid, ours } => {
                fs.ledger.insert(
                    m.uid,
                    Entry {
                        key: m.key.clone(),
                        dest_uid: Some(dest_uid),
                        skipped: !ours,
                        source_deleted: false,
                        pass: job.pass,
                        removed: false,
                    },
                );
                fs.failed.remove(&m.uid);
                report.failures.retain(|f| f.uid != m.uid);
                let outcome = if ours {
                    report.copied += 1;
                    Outcome::Copied
                } else {
                    report.skipped += 1;
                    Outcome::Skipped
                };
                progress.message(&plan.source_path, u64::from(m.size), outcome);
            }
            Decision::Copy => copies.push(m),
            Decision::Later => later.push(m),
        }
    }
    (copies, later, to_replace)
}

/// Copies messages in batches, in order; while one is appended the next one's bodies
/// are fetched. Each batch is saved as in flight (with what `fs.in_flight` already
/// holds) before it is appended, and in the ledger once confirmed.
async fn copy_batches<C: CheckpointStore>(
    sides: &mut Sides,
    cx: Cx<'_, C>,
    fs: &mut FolderState,
    report: &mut FolderReport,
    whole: &mut HashSet<u32>,
    copies: &[&MessageMeta],
) -> Result<(), FolderError> {
    let Cx {
        job,
        plan,
        checkpoints,
        progress,
    } = cx;
    let unresolved = fs.in_flight.clone();
    let batches = batches(copies, whole);
    let mut prefetched: Option<Bodies> = None;
    for (i, batch) in batches.iter().enumerate() {
        fs.in_flight.clone_from(&unresolved);
        fs.in_flight
            .extend(batch.messages.iter().map(|m| (m.uid, m.key.clone())));
        fs.in_flight_at = chrono::Utc::now().timestamp();
        checkpoints.save_folder(&plan.source, fs).await?;

        let (outcomes, broken, next) = if batch.stream {
            let m = batch.messages[0];
            let streamed = stream_append(
                &mut sides.src,
                &mut sides.dst,
                m.uid,
                u64::from(m.size),
                &plan.dest,
                &m.flags,
                m.internal_date,
            )
            .await;
            match streamed {
                Ok(dest_uid) => (
                    vec![Appended::Copied {
                        dest_uid,
                        bytes: u64::from(m.size),
                    }],
                    None,
                    None,
                ),
                Err(StreamError::Refused(why)) => (vec![Appended::Refused(why)], None, None),
                Err(StreamError::Gone) => (vec![Appended::Gone], None, None),
                Err(StreamError::SizeMismatch(uid)) => {
                    // The destination connection is inside a literal: drop it.
                    whole.insert(uid);
                    (
                        Vec::new(),
                        Some(OpError::Connection(format!(
                            "message {uid}'s size was not its length; copying it whole"
                        ))),
                        None,
                    )
                }
                Err(StreamError::Connection(why)) => {
                    (Vec::new(), Some(OpError::Connection(why)), None)
                }
            }
        } else {
            let bodies = match prefetched.take() {
                Some(bodies) => bodies,
                None => sides.src.fetch_bodies(&batch.uids()).await?,
            };
            let following = batches.get(i + 1).filter(|b| !b.stream).map(Batch::uids);
            let ((outcomes, broken), next) = tokio::join!(
                append_batch(&mut sides.dst, &plan.dest, &batch.messages, &bodies),
                async {
                    match following {
                        Some(uids) => Some(sides.src.fetch_bodies(&uids).await),
                        None => None,
                    }
                }
            );
            (outcomes, broken, next)
        };

        let mut confirmed = Vec::new();
        for (m, outcome) in batch.messages.iter().zip(outcomes) {
            match outcome {
                Appended::Copied { dest_uid, bytes } => {
                    crash_point::after_append();
                    fs.ledger.insert(
                        m.uid,
                        Entry {
                            key: m.key.clone(),
                            dest_uid,
                            skipped: false,
                            source_deleted: false,
                            pass: job.pass,
                            removed: false,
                        },
                    );
                    fs.failed.remove(&m.uid);
                    report.failures.retain(|f| f.uid != m.uid);
                    if dest_uid.is_some() {
                        confirmed.push(m.uid);
                    }
                    report.copied += 1;
                    report.bytes += bytes;
                    progress.message(&plan.source_path, bytes, Outcome::Copied);
                }
                Appended::Refused(reason) => {
                    tracing::warn!(folder = %plan.source_path, uid = m.uid, %reason, "Message refused by the destination");
                    fs.failed.insert(m.uid, reason.clone());
                    report.failures.retain(|f| f.uid != m.uid);
                    report.failures.push(Failure { uid: m.uid, reason });
                    progress.message(&plan.source_path, 0, Outcome::Failed);
                }
                Appended::Gone => {
                    fs.ledger.insert(
                        m.uid,
                        Entry {
                            key: m.key.clone(),
                            dest_uid: None,
                            skipped: true,
                            source_deleted: false,
                            pass: job.pass,
                            removed: false,
                        },
                    );
                    fs.failed.remove(&m.uid);
                    report.failures.retain(|f| f.uid != m.uid);
                    report.skipped += 1;
                    progress.message(&plan.source_path, 0, Outcome::Skipped);
                }
            }
        }
        if let Some(err) = broken {
            // The in-flight keys stay: whatever reached the destination is claimed next time.
            checkpoints.save_folder(&plan.source, fs).await?;
            return Err(err.into());
        }
        fs.in_flight.clone_from(&unresolved);
        fs.last_uid = fs.last_uid.max(batch.messages.last().map_or(0, |m| m.uid));
        checkpoints.save_folder(&plan.source, fs).await?;
        match next {
            Some(Ok(bodies)) => prefetched = Some(bodies),
            Some(Err(err)) => return Err(err.into()),
            None => {}
        }
        if job.delete_source && !confirmed.is_empty() {
            delete_from_source(sides, fs, &confirmed).await?;
        }
    }

    Ok(())
}

/// Waits until a folder's UIDNEXT stays the same for `SETTLE` (at most ten rounds).
async fn settle(dst: &mut ImapConnection, folder: &str) -> Result<(), OpError> {
    let mut last = dst.status(folder).await?.uidnext;
    for _ in 0..10 {
        tokio::time::sleep(SETTLE).await;
        let now = dst.status(folder).await?.uidnext;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(())
}

/// Deletes source messages whose copies are confirmed, and notes it in the ledger
/// (saved with the next checkpoint; deleting a deleted UID again does nothing).
async fn delete_from_source(
    sides: &mut Sides,
    fs: &mut FolderState,
    uids: &[u32],
) -> Result<(), FolderError> {
    for chunk in uids.chunks(BATCH_MESSAGES) {
        if sides.src.delete_uids(chunk).await? {
            for uid in chunk {
                if let Some(entry) = fs.ledger.get_mut(uid) {
                    entry.source_deleted = true;
                }
            }
        }
    }
    Ok(())
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
