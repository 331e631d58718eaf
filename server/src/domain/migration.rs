//! A migration's vocabulary: its statuses, the work it waits for, its options and the
//! records the store returns. Pure: the rules that move a migration live in
//! `service::migrations`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{
    DuplicatePolicy, Endpoint, FolderMap, FolderStrategy, MigrationId, MigrationKind, Mode, PassId,
};

/// Where a migration is in its life (the API's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum MigrationStatus {
    /// Received; its credentials are about to be checked.
    Pending,
    /// Logging in to both servers.
    Validating,
    /// Waiting for its window (or for capacity).
    Scheduled,
    /// A pass is copying.
    Processing,
    /// The pre-MX pass is done; waiting for the domain's MX to point at the provider.
    WaitingForMx,
    /// Paused by a person (a project's pause): no work starts, a running pass stops at
    /// its next heartbeat with its checkpoints kept; resume goes back to where it was.
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl MigrationStatus {
    pub const ALL: [MigrationStatus; 9] = [
        Self::Pending,
        Self::Validating,
        Self::Scheduled,
        Self::Processing,
        Self::WaitingForMx,
        Self::Paused,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Validating => "validating",
            Self::Scheduled => "scheduled",
            Self::Processing => "processing",
            Self::WaitingForMx => "waiting_for_mx",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The status as staff read it in the console.
    pub fn words(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Validating => "checking accounts",
            Self::Scheduled => "scheduled",
            Self::Processing => "copying",
            Self::WaitingForMx => "waiting for the MX change",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Not finished: counts against capacity and blocks a second migration of the
    /// same destination mailbox.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Statuses still active, for queries.
    pub fn active() -> Vec<&'static str> {
        Self::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .map(Self::as_str)
            .collect()
    }
}

impl fmt::Display for MigrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which pass: the full copy before the MX change, the delta after it, or another
/// delta on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassKind {
    PreMx,
    PostMx,
    Sync,
}

impl PassKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreMx => "pre_mx",
            Self::PostMx => "post_mx",
            Self::Sync => "sync",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::PreMx, Self::PostMx, Self::Sync]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// For people: "pre-MX pass".
    pub fn label(self) -> &'static str {
        match self {
            Self::PreMx => "first copy",
            Self::PostMx => "final copy",
            Self::Sync => "catch-up copy",
        }
    }
}

/// The work a migration waits for; a worker leases the row and does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Log in to both servers.
    Validate,
    Pass(PassKind),
    /// Remove from the destination what this migration appended, from pass N on.
    DeleteMigrated {
        from_pass: u32,
    },
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::Validate => f.write_str("validate"),
            Work::Pass(kind) => f.write_str(kind.as_str()),
            Work::DeleteMigrated { from_pass } => write!(f, "delete_migrated:{from_pass}"),
        }
    }
}

impl FromStr for Work {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "validate" {
            return Ok(Work::Validate);
        }
        if let Some(n) = s.strip_prefix("delete_migrated:") {
            return n
                .parse()
                .map(|from_pass| Work::DeleteMigrated { from_pass })
                .map_err(|_| format!("bad work {s:?}"));
        }
        PassKind::parse(s)
            .map(Work::Pass)
            .ok_or_else(|| format!("bad work {s:?}"))
    }
}

/// What to copy and how (the engine's options, as stored with the migration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationOptions {
    pub mode: Mode,
    pub duplicates: DuplicatePolicy,
    pub delete_source: bool,
    pub count_first: bool,
    pub import_since: Option<NaiveDate>,
    #[serde(default)]
    pub selected_folders: Vec<String>,
    #[serde(default)]
    pub excluded_folders: Vec<String>,
    pub folder_strategy: FolderStrategy,
    /// Source folders sent to destination folders of the user's choice.
    #[serde(default)]
    pub folder_map: Vec<FolderMap>,
    /// Later passes remove the copies of messages expunged at the source.
    #[serde(default)]
    pub sync_deletions: bool,
    /// Contacts and calendars: what an item already at the destination gets.
    #[serde(default)]
    pub policy: super::ItemPolicy,
}

/// A migration as stored.
#[derive(Debug, Clone)]
pub struct Migration {
    pub id: MigrationId,
    pub status: MigrationStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub requester_email: String,
    pub kind: MigrationKind,
    pub source: Endpoint,
    pub dest: Endpoint,
    pub options: MigrationOptions,
    pub two_pass: bool,
    pub mx_domain: String,
    pub window_start: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub next_work: Option<Work>,
    /// The work to do once validation passes (a retry resumes where it failed).
    pub resume_work: Option<Work>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub mx_switched_at: Option<DateTime<Utc>>,
    pub mx_checked_at: Option<DateTime<Utc>>,
    /// The MX hosts last seen for `mx_domain`.
    pub mx_answer: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub error_code: Option<super::ErrorCode>,
    pub error_message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub credentials_purged_at: Option<DateTime<Utc>>,
    /// The customer page's token, encrypted; `None` for migrations from before it.
    pub customer_token: Option<String>,
    /// Whether the progress of the work in hand is emailed to the customer.
    pub notify_customer: bool,
    /// The customer's own reference (an order or ticket number).
    pub customer_ref: Option<String>,
    /// The staff member who owns it.
    pub owner: Option<super::UserId>,
    /// The ticket it was made from.
    pub ticket: Option<super::TicketId>,
    /// The project it belongs to.
    pub project: Option<super::ProjectId>,
    /// While paused: the status a resume goes back to.
    pub paused_status: Option<MigrationStatus>,
}

impl Migration {
    /// Whether a worker holds it now.
    pub fn is_running(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }

    /// The work a retry goes back to once the passwords are checked again: the pass it
    /// was stopped in or waiting for, or the first one.
    pub fn retry_work(&self) -> Work {
        match self.resume_work.or(self.next_work) {
            Some(Work::Pass(kind)) => Work::Pass(kind),
            _ => Work::Pass(PassKind::PreMx),
        }
    }

    /// Whether a retry returns to waiting for the MX change rather than copying: the
    /// post-MX pass waits until the domain's MX points at the provider.
    pub fn retry_waits_for_mx(&self) -> bool {
        self.retry_work() == Work::Pass(PassKind::PostMx) && self.mx_switched_at.is_none()
    }
}

/// One pass of a migration and its report.
#[derive(Debug, Clone)]
pub struct Pass {
    pub id: PassId,
    pub migration_id: MigrationId,
    pub number: u32,
    pub kind: String,
    /// running, succeeded, failed, cancelled.
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub report: Option<serde_json::Value>,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
}

/// A folder's progress in the current (or last) pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderProgress {
    pub position: u32,
    pub source_folder: String,
    pub source_path: String,
    pub dest_path: String,
    /// pending, copying, done.
    pub status: String,
    pub expected: u64,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// How fast a running pass goes: what its folders have done since it started, and the
/// time left at that rate (none while nothing is expected).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    pub messages_per_second: f64,
    pub bytes_per_second: f64,
    pub seconds_left: Option<u64>,
}

impl Pace {
    /// `None` until a message is done.
    pub fn of(
        folders: &[FolderProgress],
        started: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let expected: u64 = folders.iter().map(|f| f.expected).sum();
        let done: u64 = folders
            .iter()
            .map(|f| f.copied + f.skipped + f.failed)
            .sum();
        if done == 0 {
            return None;
        }
        let bytes: u64 = folders.iter().map(|f| f.bytes).sum();
        // At least a second: a pass a moment old has no meaningful rate yet.
        let seconds = (now - started).num_milliseconds().max(1000) as f64 / 1000.0;
        let messages_per_second = done as f64 / seconds;
        Some(Pace {
            messages_per_second,
            bytes_per_second: bytes as f64 / seconds,
            seconds_left: (expected > 0).then(|| {
                (expected.saturating_sub(done) as f64 / messages_per_second).ceil() as u64
            }),
        })
    }
}

impl Migration {
    /// A migration as unit tests start from: scheduled, nothing run yet.
    #[cfg(test)]
    pub fn example(now: DateTime<Utc>) -> Self {
        let account = |user: &str| {
            Endpoint::Imap(super::ServerAccount {
                host: "imap.example".into(),
                port: 993,
                security: super::Security::Ssl,
                username: user.into(),
                authuser: None,
            })
        };
        Migration {
            id: super::MigrationId(7),
            status: MigrationStatus::Scheduled,
            created_at: now,
            updated_at: now,
            created_by: "cli".into(),
            requester_email: "ana@new.example".into(),
            kind: MigrationKind::Mail,
            source: account("ana@old.example"),
            dest: account("ana@new.example"),
            options: MigrationOptions::default(),
            two_pass: true,
            mx_domain: "new.example".into(),
            window_start: None,
            time_zone: "UTC".into(),
            next_work: None,
            resume_work: None,
            next_run_at: None,
            mx_switched_at: None,
            mx_checked_at: None,
            mx_answer: None,
            lease_owner: None,
            lease_until: None,
            error_code: None,
            error_message: None,
            started_at: None,
            finished_at: None,
            credentials_purged_at: None,
            customer_token: None,
            notify_customer: true,
            customer_ref: None,
            owner: None,
            ticket: None,
            project: None,
            paused_status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(expected: u64, copied: u64, bytes: u64) -> FolderProgress {
        FolderProgress {
            expected,
            copied,
            bytes,
            ..Default::default()
        }
    }

    #[test]
    fn pace_is_what_was_done_since_the_pass_started_and_the_rest_at_that_rate() {
        let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let now = start + chrono::Duration::seconds(100);
        let folders = [folder(3000, 900, 90_000_000), folder(3000, 100, 10_000_000)];
        assert_eq!(
            Pace::of(&folders, start, now),
            Some(Pace {
                messages_per_second: 10.0,
                bytes_per_second: 1e6,
                // 5,000 left at 10 a second.
                seconds_left: Some(500),
            })
        );
        assert_eq!(Pace::of(&[folder(10, 0, 0)], start, now), None);
        let just_started = Pace::of(&[folder(10, 5, 0)], start, start).unwrap();
        assert_eq!(just_started.messages_per_second, 5.0, "at least a second");
        assert_eq!(
            Pace::of(&[folder(0, 3, 0)], start, now)
                .unwrap()
                .seconds_left,
            None,
            "nothing expected: no time left to tell"
        );
    }
}
