//! What a migration remembers between runs, folder by folder: the source UIDVALIDITY,
//! what the source looked like when the folder last added up, what is in flight, and a
//! ledger from source UID to the destination copy and its key.
//!
//! A folder's state is saved after every batch in two parts: its head (everything but
//! the ledger: small) and the ledger entries that changed since the last save. The
//! ledger is never rewritten whole, so a batch costs the batch, not the folder: rows in
//! the database for jobs, an append-only log for `ferry migrate --state`. A run killed
//! at any instruction resumes from the last save with nothing lost and nothing doubled
//! (see `sync::mail`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub use crate::domain::CopyRecord as Entry;

/// A state log is compacted when it holds more saves than this many per folder, plus
/// `COMPACT_AFTER_SAVES`: a few thousand lines of heads are cheap to replay, and a
/// second run of an unchanged mailbox then rewrites nothing.
const COMPACT_AFTER_SAVES_PER_FOLDER: usize = 20;
const COMPACT_AFTER_SAVES: usize = 2000;

/// The state file's format: a log of JSON lines (2). Version 1 was one JSON document;
/// it is read and turned into a log.
pub const STATE_VERSION: u32 = 2;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationState {
    pub version: u32,
    /// By source folder name, as the source server spells it.
    pub folders: BTreeMap<String, FolderState>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderState {
    pub uidvalidity: u32,
    pub dest: String,
    /// The highest source UID listed so far (for people; what is pending is whatever
    /// the ledger lacks).
    pub last_uid: u32,
    /// Source UID → what became of it. Saved apart from the head, entry by entry; read
    /// from an old checkpoint that still carries it.
    #[serde(default, skip_serializing)]
    ledger: BTreeMap<u32, Entry>,
    /// Source UID → the server's reason; tried again on the next run.
    #[serde(default)]
    pub failed: BTreeMap<u32, String>,
    /// Written before a batch is appended: a crash between APPEND and the checkpoint
    /// leaves copies at the destination that these keys claim instead of copying again.
    #[serde(default)]
    pub in_flight: BTreeMap<u32, String>,
    /// When the last batch was saved as in flight (Unix seconds; 0 when unknown).
    #[serde(default)]
    pub in_flight_at: i64,
    pub dest_uidvalidity: u32,
    /// Destination UIDs up to this one are indexed below or claimed by the ledger.
    pub dest_seen_uid: u32,
    /// Destination messages that are not copies made by this migration, by key.
    #[serde(default)]
    pub dest_unclaimed: BTreeMap<String, Vec<u32>>,
    /// The source's UIDNEXT when the folder last added up (every message it had then
    /// handled); 0 when it never did, or did not since. With `source_messages` and
    /// `source_modseq`, what lets a later pass leave an unchanged folder unopened.
    #[serde(default)]
    pub source_uidnext: u32,
    /// The source's message count when the folder last added up.
    #[serde(default)]
    pub source_messages: u32,
    /// The source's HIGHESTMODSEQ up to which flag changes are brought over (CONDSTORE;
    /// 0 when unknown: every flag is compared).
    #[serde(default)]
    pub source_modseq: u64,
    /// Ledger entries changed since the last save.
    #[serde(skip)]
    dirty: BTreeSet<u32>,
    /// The ledger was emptied since the last save: the saved one goes.
    #[serde(skip)]
    replaced: bool,
}

/// What of a folder's ledger changed since its last save.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerChanges {
    /// The saved ledger is dropped before `entries` are written.
    pub replace: bool,
    pub entries: Vec<(u32, Entry)>,
}

impl FolderState {
    /// A folder's state as a checkpoint store read it: its head and its ledger.
    pub fn loaded(mut head: FolderState, ledger: BTreeMap<u32, Entry>) -> Self {
        if head.ledger.is_empty() {
            head.ledger = ledger;
        } else if ledger.is_empty() {
            // An old checkpoint with its ledger inside: saved as entries next time.
            head.dirty = head.ledger.keys().copied().collect();
            head.replaced = true;
        }
        head
    }

    /// A fresh state for a folder whose UIDs mean something else now: the saved
    /// ledger goes with the next save.
    pub fn restart(uidvalidity: u32, dest: &str) -> Self {
        Self {
            uidvalidity,
            dest: dest.to_owned(),
            replaced: true,
            ..Default::default()
        }
    }

    pub fn ledger(&self) -> &BTreeMap<u32, Entry> {
        &self.ledger
    }

    /// Records what became of a source message.
    pub fn record(&mut self, uid: u32, entry: Entry) {
        self.ledger.insert(uid, entry);
        self.dirty.insert(uid);
    }

    /// Changes the entry of a source message, if there is one.
    pub fn update(&mut self, uid: u32, change: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.ledger.get_mut(&uid) {
            change(e);
            self.dirty.insert(uid);
        }
    }

    /// Changes every entry for which `change` returns true.
    pub fn update_all(&mut self, mut change: impl FnMut(&mut Entry) -> bool) {
        for (uid, e) in &mut self.ledger {
            if change(e) {
                self.dirty.insert(*uid);
            }
        }
    }

    /// What changed since the last save; the state counts as saved from now on.
    pub fn take_changes(&mut self) -> LedgerChanges {
        let dirty = std::mem::take(&mut self.dirty);
        LedgerChanges {
            replace: std::mem::take(&mut self.replaced),
            entries: dirty
                .into_iter()
                .filter_map(|uid| self.ledger.get(&uid).map(|e| (uid, e.clone())))
                .collect(),
        }
    }

    /// Puts back changes whose save failed, so that the next save writes them.
    pub fn keep_changes(&mut self, changes: &LedgerChanges) {
        self.replaced |= changes.replace;
        self.dirty
            .extend(changes.entries.iter().map(|(uid, _)| *uid));
    }

    /// Applies a save to a copy of the state kept elsewhere (memory, the log).
    fn apply(&mut self, head: &FolderState, changes: &LedgerChanges) {
        let mut ledger = std::mem::take(&mut self.ledger);
        if changes.replace {
            ledger.clear();
        }
        ledger.extend(changes.entries.iter().cloned());
        *self = head.head();
        self.ledger = ledger;
    }

    /// The state without its ledger.
    fn head(&self) -> FolderState {
        FolderState {
            uidvalidity: self.uidvalidity,
            dest: self.dest.clone(),
            last_uid: self.last_uid,
            ledger: BTreeMap::new(),
            failed: self.failed.clone(),
            in_flight: self.in_flight.clone(),
            in_flight_at: self.in_flight_at,
            dest_uidvalidity: self.dest_uidvalidity,
            dest_seen_uid: self.dest_seen_uid,
            dest_unclaimed: self.dest_unclaimed.clone(),
            source_uidnext: self.source_uidnext,
            source_messages: self.source_messages,
            source_modseq: self.source_modseq,
            dirty: BTreeSet::new(),
            replaced: false,
        }
    }

    /// (copied, skipped) by pass `pass`, from the ledger.
    pub fn pass_counts(&self, pass: u32) -> (u64, u64) {
        self.ledger
            .values()
            .filter(|e| e.pass == pass)
            .fold(
                (0, 0),
                |(c, s), e| if e.skipped { (c, s + 1) } else { (c + 1, s) },
            )
    }
}

/// Saves a folder's state: its head and the ledger entries changed since the last save.
pub async fn save<C: CheckpointStore>(
    store: &C,
    folder: &str,
    state: &mut FolderState,
) -> anyhow::Result<()> {
    let changes = state.take_changes();
    let saved = store.save_folder(folder, state, &changes).await;
    if saved.is_err() {
        state.keep_changes(&changes);
    }
    saved
}

/// Where checkpoints are kept: a file for `ferry migrate`, the database for jobs.
/// Folders are saved one at a time (several folders are copied at once).
pub trait CheckpointStore: Sync {
    fn load(&self) -> impl Future<Output = anyhow::Result<MigrationState>> + Send;
    /// Saves a folder's head (its ledger left out) and the ledger's `changes`; callers
    /// go through [`save`].
    fn save_folder(
        &self,
        folder: &str,
        head: &FolderState,
        changes: &LedgerChanges,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

fn empty_state() -> MigrationState {
    MigrationState {
        version: STATE_VERSION,
        folders: BTreeMap::new(),
    }
}

/// Checkpoints in a log file of JSON lines: a save appends the folder's head and the
/// ledger entries that changed (then fsync), so it costs what changed. When it is
/// loaded with many saves behind it, the log is compacted (rewritten atomically: write,
/// fsync, rename). A line cut short by a crash is the last one and is ignored.
#[derive(Debug)]
pub struct FileCheckpoints {
    path: PathBuf,
    /// The appending handle, opened at the first save.
    file: tokio::sync::Mutex<Option<std::fs::File>>,
}

/// One line of the log: a save is one line, so that it lands whole or not at all.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Version(u32),
    Save {
        folder: String,
        head: Box<FolderState>,
        #[serde(default)]
        replace: bool,
        #[serde(default)]
        entries: Vec<(u32, Entry)>,
    },
}

impl FileCheckpoints {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: tokio::sync::Mutex::new(None),
        }
    }

    fn damaged(&self) -> String {
        format!(
            "The state file {} is damaged; move it away to start over",
            self.path.display()
        )
    }

    /// Replays the log (or reads a version 1 document); with the number of saves read,
    /// and whether the last line was cut short (it must not stay before new lines).
    fn read(&self) -> anyhow::Result<(MigrationState, usize, bool)> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok((empty_state(), 0, false));
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("Failed to read the state file {}", self.path.display())
                });
            }
        };
        let mut lines = std::io::BufReader::new(file).lines().peekable();
        let mut state = empty_state();
        let mut first = true;
        let mut saves = 0;
        while let Some(line) = lines.next() {
            let line = line.with_context(|| self.damaged())?;
            let last = lines.peek().is_none();
            if first && serde_json::from_str::<Line>(&line).is_err() {
                // Version 1: the whole state in one document, ledgers inside.
                let old: MigrationState =
                    serde_json::from_str(&line).with_context(|| self.damaged())?;
                anyhow::ensure!(
                    old.version == 1,
                    "The state file {} has version {}, this Ferry reads {STATE_VERSION}",
                    self.path.display(),
                    old.version
                );
                for (folder, fs) in old.folders {
                    state
                        .folders
                        .insert(folder, FolderState::loaded(fs, BTreeMap::new()));
                }
                // Always written again, as a log.
                return Ok((state, 0, true));
            }
            first = false;
            let parsed: Line = match serde_json::from_str(&line) {
                Ok(l) => l,
                // The last line may be cut short by a crash mid-write: never saved.
                Err(_) if last => return Ok((state, saves, true)),
                Err(err) => return Err(err).with_context(|| self.damaged()),
            };
            match parsed {
                Line::Version(v) => anyhow::ensure!(
                    v == STATE_VERSION,
                    "The state file {} has version {v}, this Ferry reads {STATE_VERSION}",
                    self.path.display()
                ),
                Line::Save {
                    folder,
                    head,
                    replace,
                    entries,
                } => {
                    saves += 1;
                    let fs = state.folders.entry(folder).or_default();
                    fs.apply(head.as_ref(), &LedgerChanges { replace, entries });
                }
            }
        }
        Ok((state, saves, false))
    }

    /// The whole state as a fresh log, written atomically.
    fn compact(&self, state: &MigrationState) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        writeln!(
            out,
            "{}",
            serde_json::to_string(&Line::Version(STATE_VERSION))?
        )?;
        for (folder, fs) in &state.folders {
            write_folder(
                &mut out,
                folder,
                fs,
                &fs.ledger.clone().into_iter().collect::<Vec<_>>(),
                true,
            )?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// A folder's head and ledger entries as one line.
fn write_folder(
    out: &mut impl Write,
    folder: &str,
    head: &FolderState,
    entries: &[(u32, Entry)],
    replace: bool,
) -> anyhow::Result<()> {
    let line = Line::Save {
        folder: folder.to_owned(),
        head: Box::new(head.head()),
        replace,
        entries: entries.to_vec(),
    };
    writeln!(out, "{}", serde_json::to_string(&line)?)?;
    Ok(())
}

impl CheckpointStore for FileCheckpoints {
    async fn load(&self) -> anyhow::Result<MigrationState> {
        let (state, saves, rewrite) = self.read()?;
        // Each save left a head line behind: rewritten once they outnumber the folders
        // well, so that a log stays about the size of its ledger.
        if rewrite
            || saves > COMPACT_AFTER_SAVES_PER_FOLDER * state.folders.len() + COMPACT_AFTER_SAVES
        {
            self.compact(&state).with_context(|| {
                format!("Failed to write the state file {}", self.path.display())
            })?;
        }
        *self.file.lock().await = None;
        Ok(state)
    }

    async fn save_folder(
        &self,
        folder: &str,
        head: &FolderState,
        changes: &LedgerChanges,
    ) -> anyhow::Result<()> {
        // Held across the write: saves land in the order they were made.
        let mut guard = self.file.lock().await;
        if guard.is_none() {
            let new = !self.path.exists();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| {
                    format!("Failed to open the state file {}", self.path.display())
                })?;
            if new {
                writeln!(
                    file,
                    "{}",
                    serde_json::to_string(&Line::Version(STATE_VERSION))?
                )?;
            }
            *guard = Some(file);
        }
        let Some(file) = guard.as_mut() else {
            anyhow::bail!("the state file is not open");
        };
        let mut buf = Vec::new();
        write_folder(&mut buf, folder, head, &changes.entries, changes.replace)?;
        let mut file = file.try_clone()?;
        tokio::task::spawn_blocking(move || {
            file.write_all(&buf)?;
            file.sync_data()
        })
        .await?
        .with_context(|| format!("Failed to write the state file {}", self.path.display()))
    }
}

/// Checkpoints kept in memory only (a run without `--state`).
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    state: std::sync::Mutex<Option<MigrationState>>,
}

impl CheckpointStore for MemoryCheckpoints {
    async fn load(&self) -> anyhow::Result<MigrationState> {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(guard.clone().unwrap_or_else(empty_state))
    }

    async fn save_folder(
        &self,
        folder: &str,
        head: &FolderState,
        changes: &LedgerChanges,
    ) -> anyhow::Result<()> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .get_or_insert_with(empty_state)
            .folders
            .entry(folder.to_owned())
            .or_default()
            .apply(head, changes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, dest_uid: u32) -> Entry {
        Entry {
            key: key.into(),
            dest_uid: Some(dest_uid),
            skipped: false,
            source_deleted: false,
            pass: 1,
            removed: false,
            version: None,
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_save_carries_what_changed_since_the_last_one_and_nothing_else() {
        let mut fs = FolderState::restart(7, "INBOX");
        fs.record(1, entry("a", 10));
        fs.record(2, entry("b", 11));
        let first = fs.take_changes();
        assert!(first.replace, "a new ledger replaces the saved one");
        assert_eq!(first.entries.len(), 2);
        assert_eq!(fs.take_changes(), LedgerChanges::default());
        fs.update(2, |e| e.removed = true);
        fs.update(99, |e| e.removed = true);
        let second = fs.take_changes();
        assert!(!second.replace);
        assert_eq!(
            second.entries,
            vec![(
                2,
                Entry {
                    removed: true,
                    ..entry("b", 11)
                }
            )]
        );
        // A save that failed is written by the next one.
        fs.keep_changes(&second);
        assert_eq!(fs.take_changes(), second);
    }

    #[test]
    fn the_log_replays_every_save_and_ignores_a_line_cut_by_a_crash() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.json");
        let store = FileCheckpoints::new(path.clone());
        let mut inbox = FolderState::restart(7, "INBOX");
        let mut sent = FolderState::restart(9, "Sent");
        rt().block_on(async {
            assert!(
                store
                    .load()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .folders
                    .is_empty()
            );
            for uid in 1..=3 {
                inbox.record(uid, entry(&format!("k{uid}"), 100 + uid));
                inbox.last_uid = uid;
                save(&store, "INBOX", &mut inbox)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            sent.record(5, entry("s5", 1));
            sent.in_flight.insert(6, "s6".into());
            save(&store, "Sent", &mut sent)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            inbox.update(2, |e| e.source_deleted = true);
            save(&store, "INBOX", &mut inbox)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        });
        // Each save is one line; nothing rewritten.
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text.lines().count(), 1 + 5);
        // A crash in the middle of a write leaves a torn last line.
        let mut torn = text.clone();
        torn.push_str("{\"save\":{\"folder\":\"INBOX\",\"head\":{\"uidval");
        std::fs::write(&path, torn).unwrap_or_else(|e| panic!("{e}"));

        let loaded = rt()
            .block_on(FileCheckpoints::new(path.clone()).load())
            .unwrap_or_else(|e| panic!("{e}"));
        let got = &loaded.folders["INBOX"];
        assert_eq!(got.ledger().len(), 3);
        assert!(got.ledger()[&2].source_deleted);
        assert_eq!(got.last_uid, 3);
        assert_eq!(loaded.folders["Sent"].in_flight.len(), 1);
        assert_eq!(loaded.folders["Sent"].ledger()[&5], entry("s5", 1));
        // The torn line is gone (the log was written again: one line per folder), so
        // that what is appended next is not glued to it.
        let compact = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(compact.lines().count(), 1 + 2);
        // A log without a torn line and with few saves is left as it is.
        let before = compact.clone();
        rt().block_on(FileCheckpoints::new(path.clone()).load())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), before);
        let again = rt()
            .block_on(FileCheckpoints::new(path).load())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, loaded);
    }

    #[test]
    fn a_version_one_state_file_is_read_and_its_ledger_saved_as_entries() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.json");
        let old = r#"{"version":1,"folders":{"INBOX":{"uidvalidity":7,"dest":"INBOX","last_uid":2,"ledger":{"1":{"key":"a","dest_uid":10,"skipped":false},"2":{"key":"b","dest_uid":null,"skipped":true}},"dest_uidvalidity":3,"dest_seen_uid":10}}}"#;
        std::fs::write(&path, old).unwrap_or_else(|e| panic!("{e}"));
        let loaded = rt()
            .block_on(FileCheckpoints::new(path.clone()).load())
            .unwrap_or_else(|e| panic!("{e}"));
        let inbox = &loaded.folders["INBOX"];
        assert_eq!(inbox.ledger().len(), 2);
        assert!(inbox.ledger()[&2].skipped);
        let reloaded = rt()
            .block_on(FileCheckpoints::new(path).load())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reloaded.folders["INBOX"].ledger(), inbox.ledger());
    }
}
