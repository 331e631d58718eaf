//! Where a migration job keeps its checkpoints and shows its progress: the database.
//! Checkpoints are written as the engine saves them (after every batch); progress is
//! counted in memory and written once a second, so the console and the API follow a
//! pass without slowing it.

use crate::clock::SharedClock;
use crate::domain::MigrationId;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::planner::folders::FolderPlan;
use crate::store::{FolderCounts, PlannedFolder, Store};
use crate::sync::checkpoint::{
    CheckpointStore, FolderState, LedgerChanges, MigrationState, STATE_VERSION,
};
use crate::sync::mail::{FolderReport, Outcome, Progress};

/// How often progress is written while a pass runs.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A migration's checkpoints: one JSON document per source folder (its head), in its
/// folder row, and the ledger in `migration_ledger` rows, written together and only
/// while `holder` holds the migration's lease.
pub struct DbCheckpoints {
    pub store: Store,
    pub migration_id: MigrationId,
    /// The lease token of the claim the work runs under.
    pub holder: String,
    pub clock: SharedClock,
}

/// Another worker holds the migration now: this one stops before it writes or copies
/// anything more.
#[derive(Debug, thiserror::Error)]
#[error("the lease on migration {0} ran out and another worker may hold it")]
pub struct LeaseLost(pub MigrationId);

impl LeaseLost {
    /// Whether `err` is (or was caused by) a lost lease.
    pub fn caused(err: &anyhow::Error) -> bool {
        err.chain().any(|cause| cause.is::<LeaseLost>())
    }
}

impl CheckpointStore for DbCheckpoints {
    async fn load(&self) -> anyhow::Result<MigrationState> {
        let mut folders = BTreeMap::new();
        let mut ledger = self.store.ledger(self.migration_id).await?;
        for (folder, json) in self.store.folder_checkpoints(self.migration_id).await? {
            let head: FolderState = serde_json::from_str(&json).map_err(|e| {
                anyhow::anyhow!(
                    "The checkpoint of folder {folder:?} of migration {} is damaged: {e}",
                    self.migration_id
                )
            })?;
            let entries = ledger.remove(&folder).unwrap_or_default();
            folders.insert(folder, FolderState::loaded(head, entries));
        }
        Ok(MigrationState {
            version: STATE_VERSION,
            folders,
        })
    }

    async fn save_folder(
        &self,
        folder: &str,
        head: &FolderState,
        changes: &LedgerChanges,
    ) -> anyhow::Result<()> {
        // The head only: the ledger is not serialised with it.
        let json = serde_json::to_string(head)?;
        let held = self
            .store
            .save_folder_checkpoint(
                self.migration_id,
                folder,
                &json,
                (changes.replace, &changes.entries),
                &self.holder,
                self.clock.now(),
            )
            .await?;
        anyhow::ensure!(held, LeaseLost(self.migration_id));
        Ok(())
    }
}

#[derive(Default)]
struct Counts {
    plan: Option<Vec<PlannedFolder>>,
    folders: BTreeMap<String, FolderCounts>,
    dirty: BTreeSet<String>,
    /// By source path: (copied, skipped) by earlier runs of this pass.
    base: HashMap<String, (u64, u64)>,
}

/// Progress counted in memory and written by [`DbProgress::run_flusher`].
pub struct DbProgress {
    store: Store,
    migration_id: MigrationId,
    clock: SharedClock,
    counts: Mutex<Counts>,
    stop: Notify,
}

impl DbProgress {
    /// `base`: by source folder (the server's name), what earlier runs of this pass
    /// copied and skipped, so that a resumed pass's bars go on from there.
    pub fn new(
        store: Store,
        migration_id: MigrationId,
        clock: SharedClock,
        base: HashMap<String, (u64, u64)>,
    ) -> Arc<Self> {
        let progress = Arc::new(Self {
            store,
            migration_id,
            clock,
            counts: Mutex::new(Counts::default()),
            stop: Notify::new(),
        });
        progress.counts().base = base;
        progress
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes progress every second until [`DbProgress::finish`].
    pub async fn run_flusher(self: Arc<Self>) {
        loop {
            let stopped = tokio::select! {
                () = self.stop.notified() => true,
                () = tokio::time::sleep(FLUSH_EVERY) => false,
            };
            if let Err(err) = self.flush().await {
                tracing::warn!(migration = %self.migration_id, error = %err, "Failed to write progress");
            }
            if stopped {
                return;
            }
        }
    }

    /// Stops the flusher after one last write.
    /// The bytes this run of the pass copied.
    pub fn bytes(&self) -> u64 {
        self.counts().folders.values().map(|c| c.bytes).sum()
    }

    pub fn finish(&self) {
        self.stop.notify_one();
    }

    async fn flush(&self) -> anyhow::Result<()> {
        let (plan, changed) = {
            let mut counts = self.counts();
            let dirty = std::mem::take(&mut counts.dirty);
            let changed: Vec<(String, FolderCounts)> = dirty
                .into_iter()
                .filter_map(|path| counts.folders.get(&path).map(|c| (path, c.clone())))
                .collect();
            (counts.plan.take(), changed)
        };
        let now = self.clock.now();
        if let Some(plan) = plan {
            self.store
                .plan_folders(self.migration_id, &plan, now)
                .await?;
        }
        for (path, c) in changed {
            self.store
                .folder_progress(self.migration_id, &path, &c, now)
                .await?;
        }
        Ok(())
    }

    fn base(&self, path: &str) -> (u64, u64) {
        self.counts().base.get(path).copied().unwrap_or_default()
    }

    fn update(&self, path: &str, f: impl FnOnce(&mut FolderCounts)) {
        let mut counts = self.counts();
        f(counts.folders.entry(path.to_owned()).or_default());
        counts.dirty.insert(path.to_owned());
    }
}

impl Progress for DbProgress {
    fn planned(&self, folders: &[(&FolderPlan, Option<u64>)]) {
        let plan = folders
            .iter()
            .map(|(p, _)| PlannedFolder {
                source_folder: p.source.clone(),
                source_path: p.source_path.clone(),
                dest_path: p.dest_path.clone(),
            })
            .collect();
        let mut counts = self.counts();
        counts.plan = Some(plan);
        // From here on the base is known by the paths the callbacks use.
        let by_raw = std::mem::take(&mut counts.base);
        for (p, expected) in folders {
            let (copied, skipped) = by_raw.get(&p.source).copied().unwrap_or_default();
            counts.base.insert(p.source_path.clone(), (copied, skipped));
            counts.dirty.insert(p.source_path.clone());
            counts.folders.insert(
                p.source_path.clone(),
                FolderCounts {
                    status: "pending",
                    expected: expected.unwrap_or(0).max(copied + skipped),
                    copied,
                    skipped,
                    ..Default::default()
                },
            );
        }
    }

    fn folder_started(&self, folder: &str, pending: u64) {
        let (copied, skipped) = self.base(folder);
        self.update(folder, |c| {
            c.status = "copying";
            c.expected = pending + copied + skipped;
        });
    }

    fn message(&self, folder: &str, bytes: u64, outcome: Outcome) {
        self.update(folder, |c| match outcome {
            Outcome::Copied => {
                c.copied += 1;
                c.bytes += bytes;
            }
            Outcome::Skipped => c.skipped += 1,
            Outcome::Failed => c.failed += 1,
        });
    }

    fn folder_done(&self, report: &FolderReport) {
        let (copied, skipped) = self.base(&report.source_path);
        self.update(&report.source_path, |c| {
            *c = FolderCounts {
                status: "done",
                expected: report.expected + copied + skipped,
                copied: report.copied + copied,
                skipped: report.skipped + skipped,
                failed: report.failed,
                bytes: report.bytes,
            };
        });
    }
}
