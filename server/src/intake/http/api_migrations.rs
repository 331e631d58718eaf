//! `/api/v1/migrations`: check a server, request a migration, follow it, cancel or
//! delete it. The shapes follow seed 003 where it fits; the rules live in
//! `service::migrations`.

use super::choice::Choice;
use super::strict::StrictString;
use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::SecretString;

use super::api::{ApiError, TokenAuth, actor, services};
use crate::domain::{
    self, DuplicatePolicy, EmailAddress, ErrorCode, FolderStrategy, Migration, MigrationId,
    MigrationRequest, MigrationStatus, Mode, Pace, Scope, Security, ServerInput, mask,
};
use crate::service::{MigrationDetail, ServiceError};
use crate::store::MigrationFilter;

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
    pub username: String,
    /// Write-only: never returned.
    pub password: Option<StrictString>,
    /// An admin or master user who logs in on the mailbox's behalf.
    pub authuser: Option<String>,
}

impl ServerBody {
    /// `side` names the fields in errors (`source`, `destination`, or none).
    fn input(self, side: &str) -> ServerInput {
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
    pub source: ServerBody,
    pub destination: ServerBody,
    /// Default full.
    pub mode: Option<Choice<Mode>>,
    /// When the destination folder already has the message; default skip.
    pub duplicates: Option<Choice<DuplicatePolicy>>,
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
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct FolderSummaryBody {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct TestConnectionOk {
    pub success: bool,
    pub folders: Vec<FolderSummaryBody>,
}

#[derive(Debug, ApiResponse)]
pub enum TestConnectionResponse {
    /// Logged in; the folders with their counts and sizes.
    #[oai(status = 200)]
    Ok(Json<TestConnectionOk>),
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct AccountBody {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Masked: `j***e@example.com`.
    pub username: String,
    /// The admin login, masked like the username.
    pub authuser: Option<String>,
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
    /// pending, validating, scheduled, processing, waiting_for_mx, completed, failed, cancelled.
    pub status: String,
    pub source: AccountBody,
    pub destination: AccountBody,
    /// Masked.
    pub requester_email: String,
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

#[derive(Debug, ApiResponse)]
pub enum Created {
    #[oai(status = 201)]
    Created(Json<MigrationBody>),
}

#[derive(Debug, ApiResponse)]
pub enum Deleted {
    #[oai(status = 204)]
    NoContent,
}

/// A text field's value, when something was given.
fn given(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

fn account_body(a: &crate::domain::ServerAccount) -> AccountBody {
    AccountBody {
        host: a.host.clone(),
        port: a.port,
        security: a.security,
        username: mask(&a.username),
        authuser: a.authuser.as_deref().map(mask),
    }
}

/// `now`: for the running pass's pace.
fn migration_body(
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
        status: m.status.as_str().to_owned(),
        source: account_body(&m.source),
        destination: account_body(&m.dest),
        requester_email: mask(&m.requester_email),
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

fn detail_body(d: MigrationDetail, now: DateTime<Utc>) -> MigrationBody {
    migration_body(d.migration, d.passes, d.folders, now)
}

pub struct MigrationsApi;

#[OpenApi]
impl MigrationsApi {
    /// Logs in to a server and lists its folders with message counts and sizes, or
    /// answers 422 with why it failed: `dns`, `tcp`, `tls`, `auth`, `protocol` or
    /// `private_target`. Needs `migrations:write`.
    #[oai(path = "/migrations/test-connection", method = "post")]
    async fn test_connection(
        &self,
        req: &Request,
        auth: TokenAuth,
        body: Json<ServerBody>,
    ) -> Result<TestConnectionResponse, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        match services
            .test_connection(&actor(&auth), &body.0.input(""))
            .await?
        {
            Ok(folders) => Ok(TestConnectionResponse::Ok(Json(TestConnectionOk {
                success: true,
                folders: folders
                    .into_iter()
                    .map(|f| FolderSummaryBody {
                        name: f.name,
                        messages: f.messages,
                        bytes: f.bytes,
                    })
                    .collect(),
            }))),
            Err(problem) => Err(ApiError::Invalid(ApiError::make(
                problem.code,
                problem.message,
            ))),
        }
    }

    /// Requests a migration. 201 with the migration; 422 with one error per field (the
    /// notice rule names the earliest window allowed); 409 `active_migration_exists`;
    /// 503 `migration_capacity_reached` (retryable). Needs `migrations:write`; a
    /// request without a window needs `migrations:override` too.
    #[oai(path = "/migrations", method = "post")]
    async fn create(
        &self,
        req: &Request,
        auth: TokenAuth,
        body: Json<MigrationRequestBody>,
    ) -> Result<Created, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let b = body.0;
        let (window_start, time_zone) = match b.window {
            Some(w) => (w.start, w.time_zone),
            None => (None, None),
        };
        let request = MigrationRequest {
            source: b.source.input("source"),
            destination: b.destination.input("destination"),
            mode: b.mode.map(|c| c.field("mode")),
            duplicates: b.duplicates.map(|c| c.field("duplicates")),
            delete_source: b.delete_source,
            count_first: b.count_first,
            import_since: given(b.import_since).map(|d| domain::day("import_since", &d)),
            selected_folders: b.selected_folders,
            excluded_folders: b.excluded_folders,
            folder_map: (b.folder_map.iter())
                .map(|m| domain::folder_map("folder_map", m))
                .collect(),
            sync_deletions: b.sync_deletions,
            folder_strategy: b.folder_strategy.map(|c| c.field("folder_strategy")),
            two_pass: b.two_pass,
            mx_domain: b.mx_domain,
            window_start: given(window_start).map(|s| domain::local_time("window.start", &s)),
            time_zone: given(time_zone).map(|tz| domain::time_zone("window.time_zone", &tz)),
            requester_email: Some(EmailAddress::parse("requester_email", &b.requester_email)),
        };
        let may_override = auth.0.scopes.contains(Scope::MigrationsOverride);
        let m = services
            .request_migration(&actor(&auth), may_override, request)
            .await?;
        Ok(Created::Created(Json(migration_body(
            m,
            Vec::new(),
            Vec::new(),
            services.now(),
        ))))
    }

    /// Migrations, newest first. Needs `migrations:read`.
    #[oai(path = "/migrations", method = "get")]
    async fn list(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// Only this status.
        status: Query<Option<String>>,
        /// Part of an address (source, destination or requester).
        search: Query<Option<String>>,
        /// From 1, up to 100000.
        #[oai(validator(minimum(value = "0"), maximum(value = "100000")))]
        page: Query<Option<u64>>,
        /// 1 to 100 (default 20).
        #[oai(validator(minimum(value = "0"), maximum(value = "100")))]
        per_page: Query<Option<u64>>,
    ) -> Result<Json<MigrationPage>, ApiError> {
        auth.require(Scope::MigrationsRead)?;
        let services = services(req)?;
        let status = match status.0.as_deref() {
            None | Some("") => None,
            Some(s) => Some(MigrationStatus::parse(s).ok_or_else(|| {
                ApiError::from(ServiceError::field(
                    "status",
                    format!("{s:?} is not a status"),
                ))
            })?),
        };
        let page = page.0.unwrap_or(1).max(1);
        let per_page = per_page.0.unwrap_or(20).clamp(1, 100);
        let (list, total) = services
            .list_migrations(&MigrationFilter {
                status,
                search: search.0,
                page: page - 1,
                per_page,
            })
            .await?;
        Ok(Json(MigrationPage {
            data: list
                .into_iter()
                .map(|m| migration_body(m, Vec::new(), Vec::new(), services.now()))
                .collect(),
            total,
            page,
            per_page,
        }))
    }

    /// One migration with its passes and per-folder progress. Needs `migrations:read`.
    #[oai(path = "/migrations/:id", method = "get")]
    async fn get(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<MigrationId>,
    ) -> Result<Json<MigrationBody>, ApiError> {
        auth.require(Scope::MigrationsRead)?;
        let services = services(req)?;
        Ok(Json(detail_body(
            services.migration_detail(id.0).await?,
            services.now(),
        )))
    }

    /// Deletes a migration that is not running (cancel it first): 204, or 409
    /// `migration_running`. Needs `migrations:write`.
    #[oai(path = "/migrations/:id", method = "delete")]
    async fn delete(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<MigrationId>,
    ) -> Result<Deleted, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        services(req)?.delete_migration(&actor(&auth), id.0).await?;
        Ok(Deleted::NoContent)
    }

    /// Replaces a migration's stored passwords (after the customer changed one, or
    /// after they were erased); then `:retry`. Not while it runs (409). Needs
    /// `migrations:write`.
    #[oai(path = "/migrations/:id/credentials", method = "post")]
    async fn credentials(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<MigrationId>,
        body: Json<CredentialsBody>,
    ) -> Result<Json<MigrationBody>, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let body = body.0;
        services
            .update_credentials(
                &actor(&auth),
                id.0,
                body.source_password.map(|p| SecretString::from(p.0)),
                body.destination_password.map(|p| SecretString::from(p.0)),
            )
            .await?;
        Ok(Json(detail_body(
            services.migration_detail(id.0).await?,
            services.now(),
        )))
    }

    /// Moves a scheduled migration to a new window, checked like a request's (422 names
    /// the rule and the earliest window); the requester's time zone is kept unless one
    /// is given. No `start` starts it as soon as a slot is free and needs
    /// `migrations:override`. 409 `not_scheduled` once it has started. Needs
    /// `migrations:write`.
    #[oai(path = "/migrations/:id/window", method = "put")]
    async fn reschedule(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<MigrationId>,
        body: Json<WindowBody>,
    ) -> Result<Json<MigrationBody>, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let may_override = auth.0.scopes.contains(Scope::MigrationsOverride);
        services
            .reschedule_migration(
                &actor(&auth),
                id.0,
                may_override,
                given(body.0.start).map(|s| domain::local_time("window.start", &s)),
                given(body.0.time_zone).map(|tz| domain::time_zone("window.time_zone", &tz)),
            )
            .await?;
        Ok(Json(detail_body(
            services.migration_detail(id.0).await?,
            services.now(),
        )))
    }

    /// An action on a migration, `POST /migrations/{id}:{action}`: `cancel` (stops
    /// a pass at once; `?reason=` for the audit log), `retry` (a failed or cancelled
    /// migration, duplicates skipped), `sync` (another delta pass now),
    /// `mx-switched` (the post-MX pass starts after the grace period),
    /// `delete-migrated` (removes from the destination what this migration copied, from
    /// pass `?from_pass=N` on; all passes by default). Answers the migration; 409 when
    /// its status does not allow the action. Needs `migrations:write`.
    #[oai(path = "/migrations/:target", method = "post")]
    async fn action(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// `{id}:{action}`, e.g. `12:cancel`.
        #[oai(validator(pattern = "^[0-9]+:(cancel|retry|sync|mx-switched|delete-migrated)$"))]
        target: Path<String>,
        /// Why, for the audit log (`cancel`).
        reason: Query<Option<String>>,
        /// The first pass whose copies `delete-migrated` removes.
        #[oai(validator(minimum(value = "0"), maximum(value = "4294967295")))]
        from_pass: Query<Option<u32>>,
    ) -> Result<Json<MigrationBody>, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let (id, action) = target
            .0
            .split_once(':')
            .and_then(|(id, action)| {
                Some((MigrationId(id.parse::<i64>().ok()?), action.to_owned()))
            })
            .ok_or_else(|| ApiError::from(ServiceError::NotFound("migration action")))?;
        match action.as_str() {
            "cancel" => {
                services
                    .cancel_migration(&actor(&auth), id, reason.0)
                    .await?;
            }
            "retry" => {
                services.retry_migration(&actor(&auth), id).await?;
            }
            "sync" => {
                services.sync_migration(&actor(&auth), id).await?;
            }
            "mx-switched" => {
                services.migration_mx_switched(&actor(&auth), id).await?;
            }
            "delete-migrated" => {
                services
                    .delete_migrated(&actor(&auth), id, from_pass.0)
                    .await?;
            }
            _ => return Err(ApiError::from(ServiceError::NotFound("migration action"))),
        }
        Ok(Json(detail_body(
            services.migration_detail(id).await?,
            services.now(),
        )))
    }
}
