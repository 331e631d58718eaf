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

use super::checkpoint::{CheckpointStore, Entry, FolderState, MigrationState, save};
use crate::clock::SharedClock;
use crate::connectors::imap::{
    AppendItem, Bodies, ConnectError, FolderStatus, ImapConnection, MessageMeta, OpError,
    StreamError, stream_append,
};
use crate::connectors::net::Reach;
use crate::domain::{DuplicatePolicy, ImapEndpoint, Mode};
use crate::planner::folders::{
    FolderMapping, FolderPlan, ListedFolder, MappedBy, Selection, Skipped, map_folders,
};

mod batch;
mod changes;
mod decide;
mod delete;
mod folder;
mod report;

use batch::*;

use changes::*;

use decide::*;

pub use delete::{Removed, delete_migrated};
use folder::*;
pub(crate) use report::folder_report;
pub use report::{Failure, FolderReport, Report, Totals};

use report::*;

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
    /// The time a batch in flight is stamped with, kept in its checkpoint.
    pub clock: SharedClock,
}

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
    let (src, dst) = connect_pair(&job.source, &job.dest, &job.reach)
        .await
        .map_err(|(side, err)| MigrateError::Connect(side, err))?;
    Ok(Sides { src, dst })
}

/// Connects and logs in on both sides at once. When one side fails, the other is
/// logged out and the failure names its side (the source's when both fail).
pub(crate) async fn connect_pair(
    source: &ImapEndpoint,
    dest: &ImapEndpoint,
    reach: &Reach,
) -> Result<(ImapConnection, ImapConnection), (Side, ConnectError)> {
    let (src, dst) = tokio::join!(
        ImapConnection::connect(source, reach),
        ImapConnection::connect(dest, reach)
    );
    match (src, dst) {
        (Ok(src), Ok(dst)) => Ok((src, dst)),
        (Err(err), other) => {
            if let Ok(conn) = other {
                conn.logout().await;
            }
            Err((Side::Source, err))
        }
        (Ok(conn), Err(err)) => {
            conn.logout().await;
            Err((Side::Destination, err))
        }
    }
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
    let (mapping, dest_folders) = plan_folders(&mut sides, job).await?;
    let mut report = Report {
        source: job.source.to_string(),
        dest: job.dest.to_string(),
        skipped_folders: mapping.skipped.clone(),
        ..Default::default()
    };
    make_tree(&mut sides, &mapping, &dest_folders, &mut report).await?;
    if job.mode == Mode::FoldersOnly {
        report.folders = mapping.folders.iter().map(folder_report).collect();
        report.elapsed_ms = elapsed_ms(started);
        return Ok(report);
    }
    let (queue, done) = survey(&mut sides, job, &mapping, &state, progress).await?;
    let mut folders = copy_queue(job, checkpoints, progress, sides, queue, done).await?;
    folders.sort_by_key(|(index, _)| *index);
    for (_, folder_report) in folders {
        report.totals.add(&folder_report);
        report.folders.push(folder_report);
    }
    report.elapsed_ms = elapsed_ms(started);
    Ok(report)
}

/// Both folder trees listed, and where each source folder lands.
async fn plan_folders(
    sides: &mut Sides,
    job: &MailJob,
) -> Result<(FolderMapping, Vec<ListedFolder>), MigrateError> {
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
    Ok((mapping, dest_folders))
}

/// The tree first: parents before children, so the order of `mapping` (sorted) works.
async fn make_tree(
    sides: &mut Sides,
    mapping: &FolderMapping,
    dest_folders: &[ListedFolder],
    report: &mut Report,
) -> Result<(), MigrateError> {
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
    Ok(())
}

/// A folder to copy: its place in the report, its plan, its state and its STATUS.
type Queued<'a> = (usize, &'a FolderPlan, FolderState, FolderStatus);

/// STATUS on every folder: the pre-count, and the folders with nothing to do (a
/// second pass on an unchanged mailbox opens none), reported at once.
async fn survey<'a>(
    sides: &mut Sides,
    job: &MailJob,
    mapping: &'a FolderMapping,
    state: &MigrationState,
    progress: &dyn Progress,
) -> Result<(VecDeque<Queued<'a>>, Vec<(usize, FolderReport)>), MigrateError> {
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
    Ok((queue, reports))
}

/// The queued folders copied by `job.connections` workers at once, each with its own
/// connection pair (the first reuses `sides`); returns every folder's report.
async fn copy_queue<C: CheckpointStore>(
    job: &MailJob,
    checkpoints: &C,
    progress: &dyn Progress,
    sides: Sides,
    queue: VecDeque<Queued<'_>>,
    done: Vec<(usize, FolderReport)>,
) -> Result<Vec<(usize, FolderReport)>, MigrateError> {
    let workers = job.connections.clamp(1, queue.len().max(1));
    let budget = Budget::new();
    let queue = Mutex::new(queue);
    let results = Mutex::new(done);
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
    Ok(results.into_inner().unwrap_or_else(|e| e.into_inner()))
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

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn op_error(err: OpError) -> MigrateError {
    MigrateError::Other(anyhow::anyhow!("{err}"))
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
                    version: None,
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
            clock: std::sync::Arc::new(crate::clock::SystemClock),
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

    pub(super) fn meta(uid: u32, key: &str) -> MessageMeta {
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
            let (copies, later, replace) = decide_and_record(
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
