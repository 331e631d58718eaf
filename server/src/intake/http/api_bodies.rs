//! The JSON shapes of `/api/v1/migrations` (what a request sends and what an answer
//! holds, as the OpenAPI document lists them) and the records turned into them. The
//! shapes follow seed 003 where it fits; passwords are write-only and names masked.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use secrecy::SecretString;

use super::choice::Choice;
use super::strict::StrictString;
use crate::domain::{
    DuplicatePolicy, ErrorCode, FolderStrategy, Migration, MigrationId, MigrationStatus, Mode,
    Pace, Security, ServerInput, mask,
};
use crate::service::MigrationDetail;

/// One server account in a request.
#[derive(Debug, Object)]
pub struct ServerBody {
    /// Host name; for the destination, the provider's IMAP server when omitted.
    #[oai(default)]
    pub host: String,
    /// 993 for ssl, 143 otherwise, when omitted.
    #[oai(validator(minimum(value = "0"), maximum(value = "65535")))]
    pub port: Option<u16>,
    /// 993 and ssl when both are omitted.
    pub security: Option<Choice<Security>>,
    /// The login; not needed for a file source.
    #[oai(default)]
    pub username: String,
    /// Write-only: never returned.
    pub password: Option<StrictString>,
    /// An admin or master user who logs in on the mailbox's behalf.
    pub authuser: Option<String>,
    /// A CardDAV/CalDAV server: a URL or just the host (discovery finds the rest).
    /// `test-connection` with it lists the account's address books and calendars.
    pub dav_url: Option<String>,
    /// A file uploaded with `POST /api/v1/uploads`: the source of an import (`.vcf`
    /// for contacts, `.ics` for calendars); nothing else is needed on that side.
    pub upload_id: Option<crate::domain::UploadId>,
}

impl ServerBody {
    /// `side` names the fields in errors (`source`, `destination`, or none).
    pub(super) fn input(self, side: &str) -> ServerInput {
        let security = match side {
            "source" => "source.security",
            "destination" => "destination.security",
            _ => "security",
        };
        ServerInput {
            host: self.host,
            port: self.port,
            security: self.security.map(|c| c.field(security)),
            username: self.username,
            password: self.password.map(|p| SecretString::from(p.0)),
            authuser: self.authuser,
            dav_url: self.dav_url.filter(|u| !u.trim().is_empty()),
            upload_id: self.upload_id,
        }
    }
}

#[derive(Debug, Object)]
pub struct WindowBody {
    /// Local wall-clock time in `time_zone`, `YYYY-MM-DDTHH:MM`.
    pub start: Option<String>,
    /// IANA name, e.g. Europe/Paris (default UTC).
    pub time_zone: Option<String>,
}

#[derive(Debug, Object)]
pub struct MigrationRequestBody {
    /// `mail` (the default), `contacts` or `calendars`.
    pub kind: Option<Choice<crate::domain::MigrationKind>>,
    pub source: ServerBody,
    pub destination: ServerBody,
    /// Default full.
    pub mode: Option<Choice<Mode>>,
    /// When the destination folder already has the message; default skip.
    pub duplicates: Option<Choice<DuplicatePolicy>>,
    /// Contacts and calendars: an item whose UID is at the destination already is
    /// left (`skip`, the default), replaced (`overwrite`), written anew (`create`), or
    /// for contacts merged with the same person (`merge`).
    pub policy: Option<Choice<crate::domain::ItemPolicy>>,
    #[oai(default)]
    pub delete_source: bool,
    #[oai(default)]
    pub count_first: bool,
    /// Only messages from this day on (YYYY-MM-DD).
    pub import_since: Option<String>,
    #[oai(default)]
    pub selected_folders: Vec<String>,
    #[oai(default)]
    pub excluded_folders: Vec<String>,
    /// Source folders sent to destination folders of your choice, before any
    /// special-folder rule: `"SOURCE=DESTINATION"`, paths with `/` between levels
    /// (`"Sent Items=Archive/Sent"`); subfolders follow.
    #[oai(default)]
    pub folder_map: Vec<String>,
    /// Later passes remove at the destination the copies of messages expunged at the
    /// source since (only copies this migration made). Default false.
    #[oai(default)]
    pub sync_deletions: bool,
    /// Default all.
    pub folder_strategy: Option<Choice<FolderStrategy>>,
    /// A pre-MX and a post-MX pass (default true).
    pub two_pass: Option<bool>,
    /// The domain whose MX to watch (default: the destination address's domain).
    pub mx_domain: Option<String>,
    /// Omit to start as soon as capacity allows (needs `migrations:override`).
    pub window: Option<WindowBody>,
    pub requester_email: String,
    /// The customer's own reference (an order or ticket number), up to 100 characters.
    pub customer_ref: Option<String>,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct FolderSummaryBody {
    /// A folder's name, or an address book's or a calendar's.
    pub name: String,
    /// Messages, or cards, or events and tasks.
    pub messages: u64,
    /// The messages' size (0 for address books and calendars).
    pub bytes: u64,
    /// What it holds: `mail`, `contacts` or `calendars`.
    pub kind: crate::domain::MigrationKind,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct TestConnectionOk {
    pub success: bool,
    pub folders: Vec<FolderSummaryBody>,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct AccountBody {
    /// The server's host (a DAV URL's host; empty for a file).
    pub host: String,
    /// IMAP only.
    pub port: Option<u16>,
    /// IMAP only.
    pub security: Option<Security>,
    /// Masked: `j***e@example.com`; a file's name for a file.
    pub username: String,
    /// The admin login, masked like the username.
    pub authuser: Option<String>,
    /// A CardDAV/CalDAV side's URL.
    pub dav_url: Option<String>,
    /// A file source's upload.
    pub upload_id: Option<crate::domain::UploadId>,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct FolderBody {
    pub source: String,
    pub destination: String,
    /// pending, copying, done.
    pub status: String,
    pub expected: u64,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct PassBody {
    pub number: u32,
    /// pre_mx, post_mx or sync.
    pub kind: String,
    /// running, succeeded, failed, cancelled.
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
    /// Per folder counts and each failure with the server's reason.
    pub report: Option<serde_json::Value>,
}

/// How fast the running pass goes, from what it did since it started.
#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct PaceBody {
    pub messages_per_second: f64,
    pub bytes_per_second: f64,
    /// At this rate; none while the folders' counts are not known yet.
    pub seconds_left: Option<u64>,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct ErrorInfo {
    pub code: Option<ErrorCode>,
    pub message: Option<String>,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct MigrationBody {
    pub id: MigrationId,
    pub status: MigrationStatus,
    /// `mail`, `contacts` or `calendars`.
    pub kind: crate::domain::MigrationKind,
    /// Contacts and calendars: what an item already at the destination gets.
    pub policy: crate::domain::ItemPolicy,
    pub source: AccountBody,
    pub destination: AccountBody,
    /// Masked.
    pub requester_email: String,
    /// The customer's own reference, when one was given.
    pub customer_ref: Option<String>,
    /// The support ticket it was made from.
    pub ticket_id: Option<crate::domain::TicketId>,
    pub mode: Mode,
    pub duplicates: DuplicatePolicy,
    pub delete_source: bool,
    pub count_first: bool,
    pub import_since: Option<String>,
    pub selected_folders: Vec<String>,
    pub folder_strategy: FolderStrategy,
    pub two_pass: bool,
    pub mx_domain: String,
    /// The requested window's start (UTC), when one was requested.
    pub window_start: Option<DateTime<Utc>>,
    pub time_zone: String,
    /// When the next step is due.
    pub next_run_at: Option<DateTime<Utc>>,
    pub mx_switched_at: Option<DateTime<Utc>>,
    /// The MX hosts last seen for `mx_domain` (`10 mx.example, 20 mx2.example`).
    pub mx_answer: Option<String>,
    pub mx_checked_at: Option<DateTime<Utc>>,
    pub error: Option<ErrorInfo>,
    pub passes: Vec<PassBody>,
    pub folders: Vec<FolderBody>,
    /// While a pass runs.
    pub pace: Option<PaceBody>,
    /// How often to poll: 5 s while starting, 10 s while copying, none when finished.
    pub poll_hint_seconds: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the stored passwords were erased (`retention.credential_days` after the end).
    pub credentials_purged_at: Option<DateTime<Utc>>,
}

/// New passwords for a migration; give one side or both.
#[derive(Debug, Object)]
pub struct CredentialsBody {
    pub source_password: Option<StrictString>,
    pub destination_password: Option<StrictString>,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct MigrationPage {
    pub data: Vec<MigrationBody>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

/// A text field's value, when something was given.
pub(super) fn given(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

pub(super) fn account_body(e: &crate::domain::Endpoint) -> AccountBody {
    use crate::domain::Endpoint;
    let imap = e.imap();
    AccountBody {
        host: e.host().to_owned(),
        port: imap.map(|a| a.port),
        security: imap.map(|a| a.security),
        username: match e {
            Endpoint::File(f) => f.name.clone(),
            _ => mask(e.username()),
        },
        authuser: imap.and_then(|a| a.authuser.as_deref()).map(mask),
        dav_url: match e {
            Endpoint::Dav(d) => Some(d.url.clone()),
            _ => None,
        },
        upload_id: match e {
            Endpoint::File(f) => Some(f.upload),
            _ => None,
        },
    }
}

/// `now`: for the running pass's pace.
pub(super) fn migration_body(
    m: Migration,
    passes: Vec<crate::domain::Pass>,
    folders: Vec<crate::domain::FolderProgress>,
    now: DateTime<Utc>,
) -> MigrationBody {
    let poll_hint_seconds = match m.status {
        MigrationStatus::Pending | MigrationStatus::Validating => Some(5),
        MigrationStatus::Processing => Some(10),
        MigrationStatus::Scheduled | MigrationStatus::WaitingForMx => Some(60),
        _ => None,
    };
    let pace = passes
        .iter()
        .rev()
        .find(|p| p.status == "running")
        .and_then(|p| Pace::of(&folders, p.started_at, now))
        .map(|p| PaceBody {
            messages_per_second: (p.messages_per_second * 10.0).round() / 10.0,
            bytes_per_second: p.bytes_per_second.round(),
            seconds_left: p.seconds_left,
        });
    MigrationBody {
        pace,
        id: m.id,
        status: m.status,
        kind: m.kind,
        policy: m.options.policy,
        source: account_body(&m.source),
        destination: account_body(&m.dest),
        requester_email: mask(&m.requester_email),
        customer_ref: m.customer_ref.clone(),
        ticket_id: m.ticket,
        mode: m.options.mode,
        duplicates: m.options.duplicates,
        delete_source: m.options.delete_source,
        count_first: m.options.count_first,
        import_since: m.options.import_since.map(|d| d.to_string()),
        selected_folders: m.options.selected_folders.clone(),
        folder_strategy: m.options.folder_strategy,
        two_pass: m.two_pass,
        mx_domain: m.mx_domain,
        window_start: m.window_start,
        time_zone: m.time_zone,
        next_run_at: m.next_run_at,
        mx_switched_at: m.mx_switched_at,
        mx_answer: m.mx_answer,
        mx_checked_at: m.mx_checked_at,
        error: (m.error_code.is_some() || m.error_message.is_some()).then_some(ErrorInfo {
            code: m.error_code,
            message: m.error_message,
        }),
        passes: passes
            .into_iter()
            .map(|p| PassBody {
                number: p.number,
                kind: p.kind,
                status: p.status,
                started_at: p.started_at,
                finished_at: p.finished_at,
                copied: p.copied,
                skipped: p.skipped,
                failed: p.failed,
                bytes: p.bytes,
                report: p.report,
            })
            .collect(),
        folders: folders
            .into_iter()
            .map(|f| FolderBody {
                source: f.source_path,
                destination: f.dest_path,
                status: f.status,
                expected: f.expected,
                copied: f.copied,
                skipped: f.skipped,
                failed: f.failed,
                bytes: f.bytes,
            })
            .collect(),
        poll_hint_seconds,
        created_at: m.created_at,
        updated_at: m.updated_at,
        finished_at: m.finished_at,
        credentials_purged_at: m.credentials_purged_at,
    }
}

pub(super) fn detail_body(d: MigrationDetail, now: DateTime<Utc>) -> MigrationBody {
    migration_body(d.migration, d.passes, d.folders, now)
}
