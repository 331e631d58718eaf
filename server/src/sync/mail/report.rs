//! What a run reports: per folder and in total, with the proof that each folder adds up
//! (the source's messages counted apart from the copy loop).

use super::*;

/// How many of a folder's unaccounted UIDs a report names (the count is always whole).
pub(super) const UNACCOUNTED_NAMED: usize = 20;

/// One message that could not be copied.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The source message's UID (an item's number for contacts and calendars).
    pub uid: u32,
    /// Contacts and calendars: the item for people (its file name, or its place in a
    /// file); none for a message.
    pub item: Option<String>,
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

pub(crate) fn folder_report(plan: &FolderPlan) -> FolderReport {
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

/// What the end of a pass found, folder by folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Proof {
    /// Messages the source had both at the start and at the end of the pass.
    pub(super) source_messages: u64,
    /// Those the ledger does not hold and that did not fail with a reason.
    pub(super) unaccounted: Vec<u32>,
}

/// Every message the source had when the pass started and still has must be in the
/// ledger (copied or skipped) or among the failures. Messages that came during the
/// pass are the next pass's; messages expunged during it are no one's.
pub(super) fn reconcile(fs: &FolderState, at_start: &[u32], at_end: &[u32]) -> Proof {
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
