//! What a migration remembers between runs, folder by folder: the source UIDVALIDITY,
//! the highest source UID handled, and a ledger from source UID to the destination
//! copy and its key. Saved after every batch; a run killed at any instruction resumes
//! from the last save with nothing lost and nothing doubled (see `sync::mail`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub const STATE_VERSION: u32 = 1;

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
    /// Every source UID up to this one is handled (copied, skipped or failed).
    pub last_uid: u32,
    /// Source UID → what became of it.
    pub ledger: BTreeMap<u32, Entry>,
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
}

impl FolderState {
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    /// The copy's UID at the destination (UIDPLUS), when known.
    pub dest_uid: Option<u32>,
    /// True when the destination already had it and nothing was copied.
    pub skipped: bool,
    /// True once the source's message is deleted (`--delete-source`).
    #[serde(default)]
    pub source_deleted: bool,
    /// The pass that made the copy (or found it).
    #[serde(default)]
    pub pass: u32,
    /// True once the copy was removed from the destination ("delete migrated items").
    #[serde(default)]
    pub removed: bool,
}

/// Where checkpoints are kept: a file for `ferry migrate`, the database for jobs.
/// Folders are saved one at a time (several folders are copied at once).
pub trait CheckpointStore: Sync {
    fn load(&self) -> impl Future<Output = anyhow::Result<MigrationState>> + Send;
    fn save_folder(
        &self,
        folder: &str,
        state: &FolderState,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

fn empty_state() -> MigrationState {
    MigrationState {
        version: STATE_VERSION,
        folders: BTreeMap::new(),
    }
}

/// Checkpoints in a JSON file, replaced atomically (write, fsync, rename).
#[derive(Debug)]
pub struct FileCheckpoints {
    path: PathBuf,
    /// The whole state as last written; folders are merged into it.
    state: tokio::sync::Mutex<Option<MigrationState>>,
}

impl FileCheckpoints {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            state: tokio::sync::Mutex::new(None),
        }
    }

    async fn read(&self) -> anyhow::Result<MigrationState> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => {
                let state: MigrationState = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "The state file {} is damaged; move it away to start over",
                        self.path.display()
                    )
                })?;
                anyhow::ensure!(
                    state.version == STATE_VERSION,
                    "The state file {} has version {}, this Ferry reads {STATE_VERSION}",
                    self.path.display(),
                    state.version
                );
                Ok(state)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(empty_state()),
            Err(err) => Err(err)
                .with_context(|| format!("Failed to read the state file {}", self.path.display())),
        }
    }
}

impl CheckpointStore for FileCheckpoints {
    async fn load(&self) -> anyhow::Result<MigrationState> {
        let state = self.read().await?;
        *self.state.lock().await = Some(state.clone());
        Ok(state)
    }

    async fn save_folder(&self, folder: &str, folder_state: &FolderState) -> anyhow::Result<()> {
        // Held across the write: saves land in the order they were made.
        let mut guard = self.state.lock().await;
        if guard.is_none() {
            *guard = Some(self.read().await?);
        }
        let Some(state) = guard.as_mut() else {
            anyhow::bail!("checkpoint state missing");
        };
        state
            .folders
            .insert(folder.to_owned(), folder_state.clone());
        let bytes = serde_json::to_vec(state)?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let tmp = path.with_extension("tmp");
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok::<_, std::io::Error>(())
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

    async fn save_folder(&self, folder: &str, folder_state: &FolderState) -> anyhow::Result<()> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .get_or_insert_with(empty_state)
            .folders
            .insert(folder.to_owned(), folder_state.clone());
        Ok(())
    }
}
