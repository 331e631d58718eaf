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

use super::checkpoint::{CheckpointStore, Entry, FolderState, save};
use crate::connectors::imap::{
    AppendItem, Bodies, ConnectError, FolderStatus, ImapConnection, MessageMeta, OpError,
    StreamError, stream_append,
};
use crate::connectors::net::Reach;
use crate::domain::{DuplicatePolicy, ImapEndpoint, Mode};
use crate::planner::folders::{FolderPlan, MappedBy, Selection, Skipped, map_folders};

/// Messages fetched and appended per batch (one MULTIAPPEND, one checkpoint).
const BATCH_MESSAGES: usize = 200;
/// Bytes fetched per batch; a larger message goes in a batch of its own. A worker
/// holds at most two batches (one being appended, the next being fetched), within
/// `BYTES_IN_FLIGHT` for all workers together.
const BATCH_BYTES: u64 = 4 * 1024 * 1024;
/// Message bytes held in memory at once by all the folders being copied: what bounds
/// a run's memory (with `STREAM_ABOVE`), whatever `--connections` says. 24 MiB keeps
/// three connections' batches and their prefetches in flight (the 64 MiB goal of
/// `scripts/bench` leaves the rest to buffers and the ledger).
const BYTES_IN_FLIGHT: u64 = 24 * 1024 * 1024;
/// The budget's unit.
const BUDGET_UNIT: u64 = 64 * 1024;
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
    /// What the connections may reach and their deadlines.
    pub reach: Reach,
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
    /// Remove at the destination the copies this migration made of source messages
    /// expunged since (never a message it did not copy).
    pub sync_deletions: bool,
}

/// How many of a folder's unaccounted UIDs a report names (the count is always whole).
const UNACCOUNTED_NAMED: usize = 20;

/// Which server of a migration something happened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Connecting or logging in failed, on this side.
    #[error("{1}")]
    Connect(Side, ConnectError),
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

#[derive(Debug, Clone, Serialize)]
pub struct FolderReport {
    pub source: String,
    pub source_path: String,
    pub dest: String,
    pub dest_path: String,
    /// Why the folder landed there: its own name, a role by attribute or by name, or
    /// the user's mapping.
    pub mapped_by: MappedBy,
    /// The source's messages at the end of the pass, counted apart from the copy loop
    /// (`UID SEARCH ALL` checked against EXISTS) among those it had at the start.
    pub source_messages: u64,
    /// The destination folder's messages after the pass (its own, and copies); not
    /// asked for a folder left unopened because nothing changed.
    pub dest_messages: Option<u64>,
    /// Source messages neither copied, skipped nor failed: the pass does not add up
    /// when this is not 0.
    pub unaccounted: u64,
    /// The first of those, by source UID.
    pub unaccounted_uids: Vec<u32>,
    /// Copies whose flags were brought in line with the source's.
    pub flags_updated: u64,
    /// Copies removed because their source message was expunged (`sync_deletions`).
    pub removed: u64,
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
    pub source_messages: u64,
    pub unaccounted: u64,
    pub flags_updated: u64,
    pub removed: u64,
}

impl Totals {
    pub fn add(&mut self, f: &FolderReport) {
        self.expected += f.expected;
        self.copied += f.copied;
        self.skipped += f.skipped;
        self.failed += f.failed;
        self.bytes += f.bytes;
        self.source_messages += f.source_messages;
        self.unaccounted += f.unaccounted;
        self.flags_updated += f.flags_updated;
        self.removed += f.removed;
    }
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
    /// Every source message is accounted for: copied, skipped or failed with a reason.
    /// A report that does not add up is never a success, whatever else it says.
    pub fn adds_up(&self) -> bool {
        self.totals.unaccounted == 0
    }

    /// It adds up, and every message was copied or deliberately skipped.
    pub fn complete(&self) -> bool {
        self.adds_up() && self.totals.failed == 0
    }

    /// One sentence per folder that does not add up, for errors and emails.
    pub fn unaccounted_summary(&self) -> String {
        self.folders
            .iter()
            .filter(|f| f.unaccounted > 0)
            .map(|f| {
                format!(
                    "{}: the source has {} messages, {} were neither copied, skipped nor failed (UIDs {})",
                    f.source_path,
                    f.source_messages,
                    f.unaccounted,
                    f.unaccounted_uids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
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

async fn connect(job: &MailJob) -> Result<Sides, MigrateError> {
    let (src, dst) = tokio::join!(
        ImapConnection::connect(&job.source, &job.reach),
        ImapConnection::connect(&job.dest, &job.reach)
    );
    Ok(Sides {
        src: src.map_err(|e| MigrateError::Connect(Side::Source, e))?,
        dst: dst.map_err(|e| MigrateError::Connect(Side::Destination, e))?,
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
    let mapping = map_folders(
        &source_folders,
        &sides.src.folder_namespace(&source_folders),
        &dest_folders,
        &sides.dst.folder_namespace(&dest_folders),
        &job.selection,
    );
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
        match fs.filter(|fs| unchanged(fs, plan, status, job)) {
            Some(fs) => {
                // It added up last time, and nothing came, went or changed since: the
                // count holds (no UID below the same UIDNEXT can appear).
                // The destination is not asked: `dest_messages` stays unknown.
                let mut r = folder_report(plan);
                r.already_done = fs.ledger().len() as u64;
                r.source_messages = u64::from(status.exists);
                reports.push((index, r));
            }
            None => queue.push_back((index, plan, fs.cloned().unwrap_or_default(), status)),
        }
    }
    progress.planned(&counts);
    for (_, r) in &reports {
        progress.folder_done(r);
    }

    let workers = job.connections.clamp(1, queue.len().max(1));
    let budget = Budget::new();
    let queue = Mutex::new(queue);
    let results = Mutex::new(reports);
    let first = Mutex::new(Some(sides));
    let worker = |_| async {
        let mut sides = lock(&first).take();
        loop {
            let Some((index, plan, fs, status)) = lock(&queue).pop_front() else {
                break;
            };
            let connected = match sides.take() {
                Some(s) => s,
                None => connect(job).await?,
            };
            let (done, folder_report) = copy_folder_with_retries(
                connected,
                Cx {
                    job,
                    plan,
                    checkpoints,
                    progress,
                    budget: &budget,
                },
                fs,
                status,
            )
            .await?;
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
        report.totals.add(&folder_report);
        report.folders.push(folder_report);
    }
    report.elapsed_ms = elapsed_ms(started);
    Ok(report)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when the folder added up at its last pass and STATUS shows that nothing came,
/// went or changed since: the same UIDVALIDITY, UIDNEXT and message count, and (for
/// flags) the same HIGHESTMODSEQ. Without UIDNEXT or CONDSTORE in the answer the folder
/// is opened: a guess never stands for a look.
fn unchanged(fs: &FolderState, plan: &FolderPlan, status: FolderStatus, job: &MailJob) -> bool {
    fs.uidvalidity == status.uidvalidity
        && fs.dest == plan.dest
        && fs.source_uidnext != 0
        && status.uidnext == Some(fs.source_uidnext)
        && status.exists == fs.source_messages
        && fs.source_modseq != 0
        && status.highest_modseq == Some(fs.source_modseq)
        && fs.failed.is_empty()
        && fs.in_flight.is_empty()
        && (!job.delete_source
            || fs
                .ledger()
                .values()
                .all(|e| e.source_deleted || e.dest_uid.is_none()))
}

/// Copies one folder, reconnecting with backoff when a connection breaks; the
/// checkpoint carries the work from one attempt to the next. Its log lines carry the
/// folder (and, under a worker, the migration and pass of the span around it).
#[tracing::instrument(name = "folder", skip_all, fields(folder = %cx.plan.source_path))]
async fn copy_folder_with_retries<C: CheckpointStore>(
    mut sides: Sides,
    cx: Cx<'_, C>,
    mut fs: FolderState,
    status: FolderStatus,
) -> Result<(Sides, FolderReport), MigrateError> {
    let Cx { job, plan, .. } = cx;
    let mut report = folder_report(plan);
    report.already_done = fs.ledger().len() as u64;
    // Messages whose size did not match their bytes: copied whole, not streamed.
    let mut whole = HashSet::new();
    let mut attempt = 0;
    loop {
        let copied = copy_folder(&mut sides, cx, &mut fs, &mut report, &mut whole, status).await;
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
            // A deliberate pause is a sign of life too.
            job.reach.alive_for(backoff + job.reach.connect_timeout);
            tokio::time::sleep(backoff).await;
            match connect(job).await {
                Ok(new) => break new,
                // A refused login or target does not get better by waiting.
                Err(
                    err @ MigrateError::Connect(
                        _,
                        ConnectError::Auth(..) | ConnectError::Target(..),
                    ),
                ) => {
                    return Err(err);
                }
                Err(err) => why = err.to_string(),
            }
        };
    }
    report.failed = report.failures.len() as u64;
    report.expected = report.copied + report.skipped + report.failed;
    tracing::info!(
        copied = report.copied,
        skipped = report.skipped,
        failed = report.failed,
        flags_updated = report.flags_updated,
        removed = report.removed,
        "Folder done"
    );
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
        mapped_by: plan.mapped_by,
        source_messages: 0,
        dest_messages: None,
        unaccounted: 0,
        unaccounted_uids: Vec::new(),
        flags_updated: 0,
        removed: 0,
        expected: 0,
        copied: 0,
        skipped: 0,
        failed: 0,
        already_done: 0,
        bytes: 0,
        failures: Vec::new(),
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

    fn bytes(&self) -> u64 {
        self.messages.iter().map(|m| u64::from(m.size)).sum()
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
    /// Not returned by the source (expunged since the listing, or a server that hides
    /// it): nothing copied, nothing recorded.
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
    budget: &'a Budget,
}

/// The message bytes all workers may hold at once (`BYTES_IN_FLIGHT`). A worker that
/// holds nothing waits for its share; a worker that holds a batch only prefetches the
/// next one when the budget allows at once, so no two workers wait on each other.
struct Budget(tokio::sync::Semaphore);

impl Budget {
    fn new() -> Self {
        Self(tokio::sync::Semaphore::new(
            usize::try_from(BYTES_IN_FLIGHT / BUDGET_UNIT).unwrap_or(1),
        ))
    }

    fn units(bytes: u64) -> u32 {
        u32::try_from(
            bytes
                .div_ceil(BUDGET_UNIT)
                .clamp(1, BYTES_IN_FLIGHT / BUDGET_UNIT),
        )
        .unwrap_or(1)
    }

    /// Waits for `bytes` of the budget (at most all of it).
    async fn take(&self, bytes: u64) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.0.acquire_many(Self::units(bytes)).await.ok()
    }

    /// `bytes` of the budget if they are free now.
    fn try_take(&self, bytes: u64) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.0.try_acquire_many(Self::units(bytes)).ok()
    }
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
    before: FolderStatus,
) -> Result<(), FolderError> {
    let Cx {
        job,
        plan,
        checkpoints,
        progress,
        ..
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
        let previous_keys: Vec<String> = fs.ledger().values().map(|e| e.key.clone()).collect();
        *fs = FolderState::restart(status.uidvalidity, &plan.dest);
        // Counted as ours: their copies at the destination are claimed, not doubled.
        for (i, key) in previous_keys.into_iter().enumerate() {
            fs.in_flight
                .insert(u32::MAX - u32::try_from(i).unwrap_or(u32::MAX), key);
        }
    }

    // Every source message the ledger does not hold is pending, whatever UIDNEXT or an
    // earlier run said: failures, what was in flight, what is new. The listing is the
    // count the pass is proven against at the end.
    let listed = sides.src.list_uids(status.exists).await?;
    // Copies made by earlier runs, whose flags may have changed at the source since.
    let earlier: Vec<u32> = fs
        .ledger()
        .iter()
        .filter(|(_, e)| !e.skipped && !e.removed)
        .map(|(uid, _)| *uid)
        .collect();
    let wanted: Vec<u32> = listed
        .iter()
        .copied()
        .filter(|uid| !fs.ledger().contains_key(uid))
        .collect();
    let mut pending = if wanted.is_empty() {
        Vec::new()
    } else {
        sides.src.fetch_meta(&wanted).await?
    };
    pending.retain(|m| !fs.ledger().contains_key(&m.uid));
    if let Some(since) = job.since {
        let (keep, old): (Vec<_>, Vec<_>) = pending.into_iter().partition(|m| {
            m.internal_date
                .is_none_or(|d| d.with_timezone(&chrono::Utc).date_naive() >= since)
        });
        report.skipped += old.len() as u64;
        for m in &old {
            fs.record(m.uid, entry(job, &m.key, None, true));
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
        fs.update_all(|entry| entry.dest_uid.take().is_some());
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
    fs.last_uid = fs.last_uid.max(listed.last().copied().unwrap_or(0));

    if job.delete_source {
        // Copies confirmed by an earlier run, and messages the destination already had.
        let left: Vec<u32> = fs
            .ledger()
            .iter()
            .filter(|(_, e)| e.dest_uid.is_some() && !e.source_deleted)
            .map(|(uid, _)| *uid)
            .collect();
        delete_from_source(sides, fs, &left).await?;
    }
    // Flags changed at the source since the copies were made: brought over.
    report.flags_updated += sync_flags(sides, fs, &earlier, &listed, before).await?;

    // The proof: the source counted again, apart from the copy loop (the folder is
    // still selected: SEARCH answers what it holds now).
    let now_listed = sides.src.search_uids().await?;
    if job.sync_deletions {
        report.removed += sync_deletions(sides, fs, &now_listed).await?;
    }
    let proof = reconcile(fs, &listed, &now_listed);
    report.source_messages = proof.source_messages;
    report.unaccounted = proof.unaccounted.len() as u64;
    report.unaccounted_uids = proof
        .unaccounted
        .into_iter()
        .take(UNACCOUNTED_NAMED)
        .collect();
    // A server that will not answer STATUS on the selected folder leaves it unknown.
    report.dest_messages = sides
        .dst
        .status(&plan.dest)
        .await
        .ok()
        .map(|s| u64::from(s.exists));
    if report.unaccounted == 0 {
        fs.source_uidnext = before.uidnext.unwrap_or(0);
        fs.source_messages = u32::try_from(now_listed.len()).unwrap_or(u32::MAX);
        fs.source_modseq = before.highest_modseq.unwrap_or(0);
    } else {
        tracing::error!(folder = %plan.source_path, source_messages = report.source_messages, unaccounted = report.unaccounted, "The folder does not add up");
        fs.source_uidnext = 0;
    }
    save(checkpoints, &plan.source, fs).await?;
    Ok(())
}

/// A ledger entry made by this pass.
fn entry(job: &MailJob, key: &str, dest_uid: Option<u32>, skipped: bool) -> Entry {
    Entry {
        key: key.to_owned(),
        dest_uid,
        skipped,
        source_deleted: false,
        pass: job.pass,
        removed: false,
    }
}

/// What the end of a pass found, folder by folder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proof {
    /// Messages the source had both at the start and at the end of the pass.
    source_messages: u64,
    /// Those the ledger does not hold and that did not fail with a reason.
    unaccounted: Vec<u32>,
}

/// Every message the source had when the pass started and still has must be in the
/// ledger (copied or skipped) or among the failures. Messages that came during the
/// pass are the next pass's; messages expunged during it are no one's.
fn reconcile(fs: &FolderState, at_start: &[u32], at_end: &[u32]) -> Proof {
    let start: HashSet<u32> = at_start.iter().copied().collect();
    let mut source_messages = 0;
    let mut unaccounted = Vec::new();
    for uid in at_end.iter().filter(|uid| start.contains(uid)) {
        source_messages += 1;
        if !fs.ledger().contains_key(uid) && !fs.failed.contains_key(uid) {
            unaccounted.push(*uid);
        }
    }
    Proof {
        source_messages,
        unaccounted,
    }
}

/// Brings the flags of copies made by earlier runs in line with their source
/// messages: with CONDSTORE, only the messages changed since the mod-sequence of the
/// last pass that added up; without it, every one (a FLAGS fetch on either side).
/// Returns how many copies changed.
async fn sync_flags(
    sides: &mut Sides,
    fs: &mut FolderState,
    earlier: &[u32],
    listed: &[u32],
    before: FolderStatus,
) -> Result<u64, FolderError> {
    let present: HashSet<u32> = listed.iter().copied().collect();
    let ours: Vec<u32> = earlier
        .iter()
        .copied()
        .filter(|uid| present.contains(uid))
        .collect();
    if ours.is_empty() {
        return Ok(0);
    }
    let changed_since = if sides.src.caps.condstore && fs.source_modseq != 0 {
        if before.highest_modseq == Some(fs.source_modseq) {
            return Ok(0);
        }
        Some(fs.source_modseq)
    } else {
        None
    };
    let source_flags = sides.src.fetch_flags(&ours, changed_since).await?;
    if source_flags.is_empty() {
        return Ok(0);
    }
    // Copies made without UIDPLUS are known by key only: found once, then by UID.
    if source_flags
        .iter()
        .any(|(uid, _)| fs.ledger().get(uid).is_some_and(|e| e.dest_uid.is_none()))
    {
        locate_copies(&mut sides.dst, fs).await?;
    }
    // Source UID → destination UID of its copy.
    let copies: BTreeMap<u32, u32> = source_flags
        .iter()
        .filter_map(|(uid, _)| {
            fs.ledger()
                .get(uid)
                .and_then(|e| e.dest_uid)
                .map(|d| (*uid, d))
        })
        .collect();
    if copies.is_empty() {
        return Ok(0);
    }
    let dest_uids: Vec<u32> = copies.values().copied().collect();
    let dest_flags: BTreeMap<u32, Vec<String>> = sides
        .dst
        .fetch_flags(&dest_uids, None)
        .await?
        .into_iter()
        .collect();
    let updates = flag_updates(&source_flags, &copies, &dest_flags);
    let mut n = 0;
    for (flags, uids) in &updates {
        sides.dst.set_flags(uids, flags).await?;
        n += uids.len() as u64;
    }
    Ok(n)
}

/// Finds the destination UIDs of this migration's copies that the ledger knows by key
/// only (a destination without UIDPLUS): each key's copies, in UID order, among the
/// destination messages no ledger entry names.
async fn locate_copies(dst: &mut ImapConnection, fs: &mut FolderState) -> Result<(), FolderError> {
    let named: HashSet<u32> = fs.ledger().values().filter_map(|e| e.dest_uid).collect();
    let mut by_key: BTreeMap<String, VecDeque<u32>> = BTreeMap::new();
    for m in dst.fetch_meta_set("1:*").await? {
        if !named.contains(&m.uid) {
            by_key.entry(m.key).or_default().push_back(m.uid);
        }
    }
    fs.update_all(|e| {
        if e.dest_uid.is_some() || e.skipped || e.removed {
            return false;
        }
        e.dest_uid = by_key.get_mut(&e.key).and_then(VecDeque::pop_front);
        e.dest_uid.is_some()
    });
    Ok(())
}

/// The destination copies whose flags differ from their source message's, grouped by
/// the flags they must have (one STORE per group). Pure.
fn flag_updates(
    source: &[(u32, Vec<String>)],
    copies: &BTreeMap<u32, u32>,
    dest: &BTreeMap<u32, Vec<String>>,
) -> BTreeMap<Vec<String>, Vec<u32>> {
    let mut out: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
    for (uid, flags) in source {
        let Some(dest_uid) = copies.get(uid) else {
            continue;
        };
        // A copy gone from the destination has nothing to update.
        let Some(current) = dest.get(dest_uid) else {
            continue;
        };
        if current != flags {
            out.entry(flags.clone()).or_default().push(*dest_uid);
        }
    }
    out
}

/// Removes at the destination the copies this migration made of source messages that
/// are no longer at the source, and notes each in the ledger. Never a message the
/// migration found there (skipped) or whose copy it cannot name (no UIDPLUS).
async fn sync_deletions(
    sides: &mut Sides,
    fs: &mut FolderState,
    now_listed: &[u32],
) -> Result<u64, FolderError> {
    let present: HashSet<u32> = now_listed.iter().copied().collect();
    let gone: Vec<(u32, u32)> = fs
        .ledger()
        .iter()
        .filter(|(uid, e)| !present.contains(uid) && !e.skipped && !e.removed && !e.source_deleted)
        .filter_map(|(uid, e)| e.dest_uid.map(|d| (*uid, d)))
        .collect();
    if gone.is_empty() {
        return Ok(0);
    }
    if !sides.dst.caps.uidplus {
        return Err(FolderError::Other(anyhow::anyhow!(
            "deletions cannot be brought over: the destination has no UIDPLUS, so Ferry cannot expunge exactly its own copies"
        )));
    }
    let mut removed = 0;
    for chunk in gone.chunks(BATCH_MESSAGES) {
        let dest_uids: Vec<u32> = chunk.iter().map(|(_, d)| *d).collect();
        sides.dst.delete_uids(&dest_uids).await?;
        for (uid, _) in chunk {
            fs.update(*uid, |e| e.removed = true);
        }
        removed += chunk.len() as u64;
    }
    Ok(removed)
}

/// Indexes the destination's messages above `dest_seen_uid` by key: those neither
/// copied by this migration (its ledger) nor claimed already are `dest_unclaimed`.
/// UIDNEXT, when the server gives it, only saves the FETCH when nothing is new.
async fn index_dest(
    dst: &mut ImapConnection,
    fs: &mut FolderState,
    uidnext: Option<u32>,
) -> Result<(), FolderError> {
    if uidnext.is_some_and(|n| n.saturating_sub(1) <= fs.dest_seen_uid) {
        return Ok(());
    }
    let claimed: HashSet<u32> = fs.ledger().values().filter_map(|e| e.dest_uid).collect();
    let mut ledger_without_uid: BTreeMap<String, usize> = BTreeMap::new();
    for e in fs
        .ledger()
        .values()
        .filter(|e| e.dest_uid.is_none() && !e.skipped)
    {
        *ledger_without_uid.entry(e.key.clone()).or_default() += 1;
    }
    // `n:*` always answers the highest message even below n: filtered by UID.
    let index = dst
        .fetch_meta_set(&format!("{}:*", fs.dest_seen_uid + 1))
        .await?;
    let seen = fs.dest_seen_uid;
    let newest = index.iter().map(|m| m.uid).max().unwrap_or(seen).max(seen);
    for m in index
        .into_iter()
        .filter(|m| m.uid > seen && !claimed.contains(&m.uid))
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
    fs.dest_seen_uid = newest;
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
                fs.record(
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
        budget,
    } = cx;
    let unresolved = fs.in_flight.clone();
    let batches = batches(copies, whole);
    let mut prefetched: Option<(Bodies, Option<tokio::sync::SemaphorePermit<'_>>)> = None;
    for (i, batch) in batches.iter().enumerate() {
        fs.in_flight.clone_from(&unresolved);
        fs.in_flight
            .extend(batch.messages.iter().map(|m| (m.uid, m.key.clone())));
        fs.in_flight_at = chrono::Utc::now().timestamp();
        save(checkpoints, &plan.source, fs).await?;

        let (outcomes, broken, next) = if batch.stream {
            let m = batch.messages[0];
            // A chunk being read and one being written.
            let _held = budget.take(2 * crate::connectors::imap::STREAM_CHUNK).await;
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
            let (bodies, _held) = match prefetched.take() {
                Some(fetched) => fetched,
                None => {
                    let held = budget.take(batch.bytes()).await;
                    (sides.src.fetch_bodies(&batch.uids()).await?, held)
                }
            };
            // The next batch is fetched meanwhile when the budget has room for it now.
            let following = batches
                .get(i + 1)
                .filter(|b| !b.stream)
                .and_then(|b| budget.try_take(b.bytes()).map(|held| (b.uids(), held)));
            let ((outcomes, broken), next) = tokio::join!(
                append_batch(&mut sides.dst, &plan.dest, &batch.messages, &bodies),
                async {
                    match following {
                        Some((uids, held)) => {
                            Some(sides.src.fetch_bodies(&uids).await.map(|b| (b, Some(held))))
                        }
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
                    fs.record(
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
                    // Not recorded: if the source still has it, the end of the pass
                    // finds it unaccounted for and says so.
                    tracing::warn!(folder = %plan.source_path, uid = m.uid, "The source did not return the message; it is checked again at the end");
                }
            }
        }
        if let Some(err) = broken {
            // The in-flight keys stay: whatever reached the destination is claimed next time.
            save(checkpoints, &plan.source, fs).await?;
            return Err(err.into());
        }
        fs.in_flight.clone_from(&unresolved);
        fs.last_uid = fs.last_uid.max(batch.messages.last().map_or(0, |m| m.uid));
        save(checkpoints, &plan.source, fs).await?;
        match next {
            Some(Ok(fetched)) => prefetched = Some(fetched),
            Some(Err(err)) => return Err(err.into()),
            None => {}
        }
        if job.delete_source && !confirmed.is_empty() {
            delete_from_source(sides, fs, &confirmed).await?;
        }
    }

    Ok(())
}

/// Waits until a folder's UIDNEXT and count stay the same for `SETTLE` (at most ten
/// rounds).
async fn settle(dst: &mut ImapConnection, folder: &str) -> Result<(), OpError> {
    let look = |s: FolderStatus| (s.uidnext, s.exists);
    let mut last = look(dst.status(folder).await?);
    for _ in 0..10 {
        tokio::time::sleep(SETTLE).await;
        let now = look(dst.status(folder).await?);
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
                fs.update(*uid, |entry| entry.source_deleted = true);
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

/// A test hook for the crash tests, compiled only with the `failpoints` feature (the
/// test harness turns it on; a release build has no such code): with
/// `FERRY_TEST_ABORT_AFTER_APPENDS=N` in the environment, the process aborts right after
/// the Nth confirmed APPEND, before the checkpoint records it: the worst moment for a
/// crash.
#[cfg(feature = "failpoints")]
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

#[cfg(not(feature = "failpoints"))]
mod crash_point {
    pub fn after_append() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(ledger: &[u32], failed: &[u32]) -> FolderState {
        let mut fs = FolderState::restart(1, "INBOX");
        for uid in ledger {
            fs.record(
                *uid,
                Entry {
                    key: format!("k{uid}"),
                    dest_uid: Some(uid + 100),
                    skipped: false,
                    source_deleted: false,
                    pass: 1,
                    removed: false,
                },
            );
        }
        for uid in failed {
            fs.failed.insert(*uid, "too large".into());
        }
        fs
    }

    #[test]
    fn a_folder_adds_up_only_when_every_message_it_kept_is_accounted_for() {
        // (ledger, failed, listed at the start, listed at the end) → (count, unaccounted)
        type Case<'a> = (&'a [u32], &'a [u32], &'a [u32], &'a [u32], u64, &'a [u32]);
        let cases: [Case<'_>; 6] = [
            (&[1, 2, 3], &[], &[1, 2, 3], &[1, 2, 3], 3, &[]),
            // A failure with its reason counts; a message nobody handled does not.
            (&[1, 3], &[2], &[1, 2, 3], &[1, 2, 3], 3, &[]),
            (&[1, 3], &[], &[1, 2, 3], &[1, 2, 3], 3, &[2]),
            // Expunged during the pass: no one's.
            (&[1], &[], &[1, 2], &[1], 1, &[]),
            // Arrived during the pass: the next pass's.
            (&[1], &[], &[1], &[1, 9], 1, &[]),
            // Nothing copied at all is never "all is well".
            (&[], &[], &[1, 2, 3, 4], &[1, 2, 3, 4], 4, &[1, 2, 3, 4]),
        ];
        for (ledger, failed, start, end, count, unaccounted) in cases {
            let proof = reconcile(&state_with(ledger, failed), start, end);
            assert_eq!(
                (proof.source_messages, proof.unaccounted.as_slice()),
                (count, unaccounted),
                "ledger {ledger:?} failed {failed:?} start {start:?} end {end:?}"
            );
        }
    }

    #[test]
    fn only_copies_whose_flags_differ_are_stored_once_per_set_of_flags() {
        let flags = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let source = vec![
            (1, flags(&["\\Seen"])),
            (2, flags(&["$Work", "\\Flagged"])),
            (3, flags(&["\\Seen"])),
            (4, flags(&[])),
            (5, flags(&["\\Seen"])),
        ];
        let copies: BTreeMap<u32, u32> = [(1, 11), (2, 12), (3, 13), (4, 14)].into();
        let dest: BTreeMap<u32, Vec<String>> = [
            (11, flags(&["\\Seen"])),
            (12, flags(&["\\Flagged"])),
            (13, flags(&[])),
            (14, flags(&["\\Seen"])),
        ]
        .into();
        let updates = flag_updates(&source, &copies, &dest);
        let want: BTreeMap<Vec<String>, Vec<u32>> = [
            (flags(&[]), vec![14]),
            (flags(&["$Work", "\\Flagged"]), vec![12]),
            (flags(&["\\Seen"]), vec![13]),
        ]
        .into();
        assert_eq!(updates, want);
    }

    fn job(duplicates: DuplicatePolicy) -> MailJob {
        let side = || ImapEndpoint {
            host: "127.0.0.1".into(),
            port: 143,
            security: crate::domain::Security::None,
            username: "jane".into(),
            authuser: None,
            password: secrecy::SecretString::from("x".to_owned()),
            verify_tls: false,
        };
        MailJob {
            source: side(),
            dest: side(),
            reach: Reach::default(),
            mode: Mode::Full,
            duplicates,
            delete_source: false,
            since: None,
            selection: Selection::default(),
            count_first: false,
            connections: 1,
            pass: 2,
            sync_deletions: false,
        }
    }

    fn plan() -> FolderPlan {
        FolderPlan {
            source: "INBOX".into(),
            source_path: "INBOX".into(),
            dest: "INBOX".into(),
            dest_path: "INBOX".into(),
            special_use: None,
            mapped_by: MappedBy::Name,
            copy_messages: true,
            create: false,
            subscribe: false,
        }
    }

    fn meta(uid: u32, key: &str) -> MessageMeta {
        MessageMeta {
            uid,
            flags: Vec::new(),
            internal_date: None,
            size: 100,
            key: key.into(),
        }
    }

    /// What `decide` does with one pending message, given whether its key was in
    /// flight, whether the destination has an unclaimed message with that key, the
    /// duplicates policy and whether this is the last look:
    /// (claimed as ours, claimed as skipped, copied, later, replaced).
    #[test]
    fn each_pending_message_is_claimed_copied_or_looked_for_again_never_dropped() {
        use DuplicatePolicy::{Create, Overwrite, Skip};
        // (in flight, at the destination, policy, last look) → outcome
        let cases = [
            ((true, true, Skip, false), "ours"),
            ((true, true, Create, false), "ours"),
            ((true, false, Skip, false), "later"),
            ((true, false, Skip, true), "copy"),
            ((false, true, Skip, false), "skipped"),
            ((false, true, Overwrite, false), "replace"),
            ((false, true, Create, false), "copy"),
            ((false, false, Skip, false), "copy"),
            ((false, false, Skip, true), "copy"),
        ];
        for ((in_flight, at_dest, policy, last_look), want) in cases {
            let mut fs = FolderState::restart(1, "INBOX");
            if at_dest {
                fs.dest_unclaimed.insert("k".into(), vec![42]);
            }
            let flying: HashSet<String> = if in_flight {
                ["k".to_owned()].into()
            } else {
                HashSet::new()
            };
            let mut report = folder_report(&plan());
            let pending = [meta(7, "k")];
            let (copies, later, replace) = decide(
                &job(policy),
                &plan(),
                &mut fs,
                &mut report,
                &Silent,
                &pending,
                &flying,
                last_look,
            );
            let got = match (
                fs.ledger().get(&7),
                copies.len(),
                later.len(),
                replace.as_slice(),
            ) {
                (Some(e), 0, 0, []) if !e.skipped && e.dest_uid == Some(42) => "ours",
                (Some(e), 0, 0, []) if e.skipped && e.dest_uid == Some(42) => "skipped",
                (None, 1, 0, [42]) => "replace",
                (None, 1, 0, []) => "copy",
                (None, 0, 1, []) => "later",
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(
                got, want,
                "in flight {in_flight}, at the destination {at_dest}, {policy:?}, last look {last_look}"
            );
            // Whatever happened, the message is accounted for or still pending.
            let accounted = fs.ledger().contains_key(&7) || !copies.is_empty() || !later.is_empty();
            assert!(accounted);
        }
    }
}
