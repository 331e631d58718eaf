//! `/api/v1/projects`: the bulk API that providers' panels drive. A project is made
//! from JSON rows or a CSV/XLSX file (multipart), previewed with `?preview=true`,
//! listed, read with each mailbox's status and counts, acted on as a whole
//! (`{id}:pause|resume|sync|retry-failed|cancel|approve|mx-switched`), given more
//! mailboxes, and deleted. Scopes `projects:read` and `projects:write`. The project's
//! `id` is its public code (`FY-7K3M-Q9P2`).

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiRequest, ApiResponse, Multipart, Object, OpenApi};
use secrecy::{ExposeSecret, SecretString};

use super::api::{ApiError, TokenAuth, actor, services};
use super::api_bodies::{AccountBody, account_body};
use super::api_tickets::{RowBody, row_bodies};
use super::choice::Choice;
use crate::domain::{
    self, DuplicatePolicy, ItemPolicy, ListedRequest, MigrationId, MigrationKind, MigrationStatus,
    Mode, OptionTexts, ProjectOptions, ProjectStatus, Scope,
};
use crate::intake::lists::{self, RowDefaults};
use crate::service::{ProjectAction, ProjectInput, ProjectView, ServiceError, Services};
use crate::store::ProjectFilter;

/// What every mailbox of the project copies, and how. Each field has its default.
#[derive(Debug, Object, Default)]
pub struct ProjectOptionsBody {
    /// `full` (default) or `folders_only`.
    pub mode: Option<Choice<Mode>>,
    /// A message already at the destination: `skip` (default), …
    pub duplicates: Option<Choice<DuplicatePolicy>>,
    /// Only messages from this day on (`2024-01-31`).
    pub import_since: Option<String>,
    /// A full pass before the MX change and a final one after it (default true); false:
    /// one pass.
    pub two_pass: Option<bool>,
    /// A daily digest to the requester while it runs (default true).
    pub digest: Option<bool>,
    /// Each row's mail (default true; false for a contacts-only project).
    pub mail: Option<bool>,
    /// Each row's address books too (default false), from the old provider's CardDAV
    /// server to the provider's (setting `provider.dav_url`), with the row's logins.
    pub contacts: Option<bool>,
    /// Each row's calendars and tasks too (default false), likewise over CalDAV.
    pub calendars: Option<bool>,
    /// The old provider's CardDAV/CalDAV server (a URL, or a host to discover it
    /// from); each row's `source_host` when not given.
    pub dav_url: Option<String>,
    /// Contacts and calendar items already at the destination: `skip` (default),
    /// `overwrite`, `create`, or `merge` (contacts merged; calendars then skip).
    pub policy: Option<Choice<ItemPolicy>>,
}

/// One mailbox to move: the short template's columns; the long template's are taken
/// too.
#[derive(Debug, Object, Default)]
pub struct ProjectRowBody {
    pub source_email: Option<String>,
    #[oai(write_only)]
    pub source_password: Option<String>,
    /// `imap.old.example` or `imap.old.example:143`.
    pub source_host: Option<String>,
    /// Defaults to the source's address.
    pub destination_email: Option<String>,
    /// Needed unless the provider's master user is set.
    #[oai(write_only)]
    pub destination_password: Option<String>,
    /// `2026-12-04T22:00` (in the project's time zone) or `2026-12-04T22:00 Europe/Paris`;
    /// the project's window when left out.
    pub window: Option<String>,
    pub source_type: Option<String>,
    pub destination_type: Option<String>,
    pub destination_host: Option<String>,
    pub source_security: Option<String>,
    pub destination_security: Option<String>,
    pub source_admin: Option<String>,
    pub destination_admin: Option<String>,
}

impl ProjectRowBody {
    fn record(self) -> Vec<(String, String)> {
        [
            ("source_email", self.source_email),
            ("source_password", self.source_password),
            ("source_host", self.source_host),
            ("destination_email", self.destination_email),
            ("destination_password", self.destination_password),
            ("window", self.window),
            ("source_type", self.source_type),
            ("destination_type", self.destination_type),
            ("destination_host", self.destination_host),
            ("source_security", self.source_security),
            ("destination_security", self.destination_security),
            ("source_admin", self.source_admin),
            ("destination_admin", self.destination_admin),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
    }
}

/// A new project as JSON.
#[derive(Debug, Object)]
#[oai(example)]
pub struct NewProjectBody {
    pub name: String,
    /// Gets the project's emails; each row's requester unless it gives one.
    pub requester_email: String,
    /// An IANA zone (`Europe/Paris`); UTC when left out.
    pub time_zone: Option<String>,
    pub options: Option<ProjectOptionsBody>,
    /// When its copies may start, a local time in `time_zone` (`2026-12-04T22:00`); a
    /// row may give its own. Left out: as soon as each mailbox's logins are checked
    /// (needs `migrations:override`).
    pub window: Option<String>,
    /// Mailboxes copying at once (default `capacity.project_concurrency`).
    #[oai(validator(minimum(value = "1"), maximum(value = "64")))]
    pub concurrency: Option<u32>,
    /// At least 10 characters; Ferry makes one (and answers it once) when left out.
    #[oai(write_only)]
    pub password: Option<String>,
    pub rows: Vec<ProjectRowBody>,
}

/// A new project as a form with a CSV/XLSX/ODS file of mailboxes. Every field is text,
/// checked by Ferry: a wrong value is a 422 naming it.
#[derive(Debug, Multipart)]
pub struct NewProjectForm {
    pub name: String,
    pub requester_email: String,
    pub time_zone: Option<String>,
    pub window: Option<String>,
    /// 1 to 64.
    pub concurrency: Option<String>,
    pub password: Option<String>,
    /// `full` or `folders_only`.
    pub mode: Option<String>,
    pub duplicates: Option<String>,
    pub import_since: Option<String>,
    /// `true` (default) or `false`.
    pub two_pass: Option<String>,
    /// `true` (default) or `false`.
    pub digest: Option<String>,
    /// `true` (default) or `false`: each row's mail.
    pub mail: Option<String>,
    /// `true` or `false` (default): each row's address books too.
    pub contacts: Option<String>,
    /// `true` or `false` (default): each row's calendars too.
    pub calendars: Option<String>,
    /// The old provider's CardDAV/CalDAV server; each row's source host when empty.
    pub dav_url: Option<String>,
    /// `skip` (default), `overwrite`, `create` or `merge`.
    pub policy: Option<String>,
    /// The list: the templates at `/templates/migration-request.csv` and `.xlsx`.
    pub file: Upload,
}

// One per request, parsed and taken apart at once; poem-openapi's derive takes each
// payload by value.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, ApiRequest)]
pub enum NewProjectRequest {
    Json(Json<NewProjectBody>),
    Form(NewProjectForm),
}

/// More mailboxes for a project, as JSON.
#[derive(Debug, Object)]
#[oai(example)]
pub struct RowsBody {
    pub rows: Vec<ProjectRowBody>,
}

/// The example row of the OpenAPI document.
fn example_row(who: &str) -> ProjectRowBody {
    ProjectRowBody {
        source_email: Some(format!("{who}@acme-old.example")),
        source_password: Some("their old password".into()),
        source_host: Some("imap.old-provider.example".into()),
        destination_email: Some(format!("{who}@acme.example")),
        destination_password: Some("their new password".into()),
        ..Default::default()
    }
}

impl poem_openapi::types::Example for NewProjectBody {
    fn example() -> Self {
        Self {
            name: "Acme GmbH, December".into(),
            requester_email: "it@acme.example".into(),
            time_zone: Some("Europe/Berlin".into()),
            options: None,
            window: Some("2026-12-04T22:00".into()),
            concurrency: Some(4),
            password: None,
            rows: vec![example_row("ana"), example_row("bob")],
        }
    }
}

impl poem_openapi::types::Example for RowsBody {
    fn example() -> Self {
        Self {
            rows: vec![example_row("carla")],
        }
    }
}

/// More mailboxes for a project, as a file.
#[derive(Debug, Multipart)]
pub struct RowsForm {
    pub file: Upload,
}

#[derive(Debug, ApiRequest)]
pub enum RowsRequest {
    Json(Json<RowsBody>),
    Form(RowsForm),
}

#[derive(Debug, Object)]
pub struct PreviewBody {
    pub rows: Vec<RowBody>,
}

/// One mailbox of a project.
#[derive(Debug, Object)]
pub struct ProjectMailboxBody {
    pub id: MigrationId,
    /// `mail`, `contacts` or `calendars`: a row of a project that moves contacts and
    /// calendars makes one of each.
    pub kind: MigrationKind,
    pub status: MigrationStatus,
    pub source: AccountBody,
    pub destination: AccountBody,
    /// Of the current pass; null before it has listed its folders.
    pub percent: Option<u64>,
    /// Messages copied in every pass.
    pub copied: u64,
    /// Messages refused in the last pass.
    pub failed: u64,
    pub error_code: Option<domain::ErrorCode>,
    pub error_message: Option<String>,
    pub window_start: Option<DateTime<Utc>>,
}

#[derive(Debug, Object)]
pub struct ProjectCountsBody {
    pub mailboxes: u64,
    pub active: u64,
    pub paused: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

#[derive(Debug, Object)]
pub struct ProjectTotalsBody {
    /// Of the whole project's current passes.
    pub percent: Option<u64>,
    pub messages_copied: u64,
    pub bytes: u64,
    pub messages_per_second: f64,
    /// At the rate of the mailboxes copying now.
    pub seconds_left: Option<u64>,
}

/// A project.
#[derive(Debug, Object)]
pub struct ProjectBody {
    /// Its code, like `FY-7K3M-Q9P2`.
    pub id: String,
    pub name: String,
    pub status: ProjectStatus,
    pub requester_email: String,
    pub time_zone: String,
    pub window_start: Option<DateTime<Utc>>,
    pub concurrency: u32,
    pub mode: Mode,
    pub duplicates: DuplicatePolicy,
    pub import_since: Option<String>,
    pub two_pass: bool,
    pub digest: bool,
    pub mail: bool,
    pub contacts: bool,
    pub calendars: bool,
    pub dav_url: Option<String>,
    pub policy: ItemPolicy,
    pub ticket_id: Option<crate::domain::TicketId>,
    pub created_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub counts: ProjectCountsBody,
    pub totals: ProjectTotalsBody,
}

#[derive(Debug, Object)]
pub struct ProjectDetailBody {
    #[oai(flatten)]
    pub project: ProjectBody,
    pub migrations: Vec<ProjectMailboxBody>,
}

/// A project made.
#[derive(Debug, Object)]
pub struct ProjectCreatedBody {
    #[oai(flatten)]
    pub project: ProjectBody,
    /// Only when Ferry generated it: shown this once, never again.
    pub password: Option<String>,
    pub migrations: Vec<ProjectMailboxBody>,
    /// Every row's report; rows with problems were not started.
    pub rows: Vec<RowBody>,
}

#[derive(Debug, Object)]
pub struct ProjectPage {
    pub data: Vec<ProjectBody>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

#[derive(Debug, Object)]
pub struct SkippedBody {
    pub migration: MigrationId,
    pub reason: String,
}

/// What a whole-project action did.
#[derive(Debug, Object)]
pub struct ActionBody {
    #[oai(flatten)]
    pub project: ProjectBody,
    pub changed: Vec<MigrationId>,
    pub skipped: Vec<SkippedBody>,
}

#[derive(Debug, Object)]
pub struct RowsAddedBody {
    pub rows: Vec<RowBody>,
    pub migrations: Vec<MigrationId>,
}

#[derive(Debug, ApiResponse)]
pub enum CreateAnswer {
    /// `?preview=true`: every row's check; nothing made.
    #[oai(status = 200)]
    Preview(Json<PreviewBody>),
    #[oai(status = 201)]
    Created(Json<Box<ProjectCreatedBody>>),
}

#[derive(Debug, ApiResponse)]
pub enum RowsAnswer {
    #[oai(status = 200)]
    Preview(Json<PreviewBody>),
    #[oai(status = 201)]
    Added(Json<RowsAddedBody>),
}

#[derive(Debug, ApiResponse)]
pub enum Deleted {
    #[oai(status = 204)]
    NoContent,
}

pub(super) fn project_body(view: &ProjectView) -> ProjectBody {
    let (p, c, t) = (&view.project, &view.counts, &view.totals);
    ProjectBody {
        id: p.code.to_string(),
        name: p.name.clone(),
        status: view.status,
        requester_email: domain::mask(&p.requester_email),
        time_zone: p.time_zone.clone(),
        window_start: p.window_start,
        concurrency: p.concurrency,
        mode: p.options.mode,
        duplicates: p.options.duplicates,
        import_since: p.options.import_since.map(|d| d.to_string()),
        two_pass: p.options.two_pass,
        digest: p.options.digest,
        mail: p.options.mail,
        contacts: p.options.contacts,
        calendars: p.options.calendars,
        dav_url: p.options.dav_url.clone(),
        policy: p.options.policy,
        ticket_id: p.ticket,
        created_at: p.created_at,
        approved_at: p.approved_at,
        paused_at: p.paused_at,
        completed_at: p.completed_at,
        counts: ProjectCountsBody {
            mailboxes: c.mailboxes,
            active: c.active,
            paused: c.paused,
            completed: c.completed,
            failed: c.failed,
            cancelled: c.cancelled,
        },
        totals: ProjectTotalsBody {
            percent: t.percent,
            messages_copied: t.copied,
            bytes: t.bytes,
            messages_per_second: (t.messages_per_second * 10.0).round() / 10.0,
            seconds_left: t.seconds_left,
        },
    }
}

fn mailbox_bodies(view: &ProjectView) -> Vec<ProjectMailboxBody> {
    view.migrations
        .iter()
        .map(|(m, progress)| ProjectMailboxBody {
            id: m.id,
            kind: m.kind,
            status: m.status,
            source: account_body(&m.source),
            destination: account_body(&m.dest),
            percent: progress.percent,
            copied: progress.copied,
            failed: progress.failed,
            error_code: m.error_code,
            error_message: m.error_message.clone(),
            window_start: m.window_start,
        })
        .collect()
}

/// The project's options from the JSON body, each wrong word its field's error.
fn options_of(body: Option<ProjectOptionsBody>) -> Result<ProjectOptions, ServiceError> {
    let body = body.unwrap_or_default();
    let mut errors = Vec::new();
    let defaults = ProjectOptions::default();
    let mode = body
        .mode
        .and_then(|c| c.field("options.mode").map_err(|e| errors.push(e)).ok());
    let duplicates = body.duplicates.and_then(|c| {
        c.field("options.duplicates")
            .map_err(|e| errors.push(e))
            .ok()
    });
    let policy = body
        .policy
        .and_then(|c| c.field("options.policy").map_err(|e| errors.push(e)).ok());
    let dav_url = body
        .dav_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .and_then(|u| {
            domain::dav_url("options.dav_url", u)
                .map_err(|e| errors.push(e))
                .ok()
        });
    let import_since = match body.import_since.as_deref().filter(|s| !s.is_empty()) {
        Some(day) => match domain::day("options.import_since", day) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    let options = ProjectOptions {
        mode: mode.unwrap_or(defaults.mode),
        duplicates: duplicates.unwrap_or(defaults.duplicates),
        import_since,
        two_pass: body.two_pass.unwrap_or(defaults.two_pass),
        digest: body.digest.unwrap_or(defaults.digest),
        mail: body.mail.unwrap_or(defaults.mail),
        contacts: body.contacts.unwrap_or(defaults.contacts),
        calendars: body.calendars.unwrap_or(defaults.calendars),
        dav_url,
        policy: policy.unwrap_or(defaults.policy),
    };
    errors.extend(options.nothing_chosen().map(|e| domain::FieldError {
        field: "options.mail",
        ..e
    }));
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    Ok(options)
}

/// The options of a form's text fields.
fn form_options(form: &NewProjectForm) -> Result<ProjectOptions, ServiceError> {
    let text = |v: &Option<String>| v.as_deref().unwrap_or_default().trim().to_owned();
    let mut errors = Vec::new();
    let mut switch = |field: &'static str, value: &Option<String>| match text(value).as_str() {
        "" => None,
        "true" | "on" | "1" | "yes" => Some(true),
        "false" | "off" | "0" | "no" => Some(false),
        _ => {
            errors.push(domain::FieldError::new(field, "write true or false"));
            None
        }
    };
    let (two_pass, digest) = (
        switch("two_pass", &form.two_pass),
        switch("digest", &form.digest),
    );
    let (mail, contacts, calendars) = (
        switch("mail", &form.mail),
        switch("contacts", &form.contacts),
        switch("calendars", &form.calendars),
    );
    let options = ProjectOptions::from_texts(OptionTexts {
        mode: &text(&form.mode),
        duplicates: &text(&form.duplicates),
        import_since: &text(&form.import_since),
        two_pass,
        digest,
        mail,
        contacts,
        calendars,
        dav_url: &text(&form.dav_url),
        policy: &text(&form.policy),
    });
    match options {
        Ok(options) if errors.is_empty() => Ok(options),
        Ok(_) => Err(ServiceError::Invalid(errors)),
        Err(more) => Err(ServiceError::Invalid([errors, more].concat())),
    }
}

/// A file's rows, read by the lists' reader; a file that is not a list is an error
/// under `file`.
pub(super) async fn file_rows(
    services: &Services,
    file: Upload,
    defaults: &RowDefaults,
) -> Result<Vec<ListedRequest>, ServiceError> {
    let name = file.file_name().unwrap_or("list.csv").to_owned();
    let limit = services.settings().limits.upload_bytes;
    if file.size() > limit {
        return Err(ServiceError::field(
            "file",
            format!("a file may have {limit} bytes at most; split the list into several files"),
        ));
    }
    let bytes = file
        .into_vec()
        .await
        .map_err(|e| ServiceError::field("file", format!("the file could not be read: {e}")))?;
    let list =
        lists::read(&name, &bytes).map_err(|e| ServiceError::field("file", e.to_string()))?;
    Ok(list.requests(defaults))
}

/// JSON rows, read by the lists' reader as a file's would be.
pub(super) fn json_rows(
    rows: Vec<ProjectRowBody>,
    defaults: &RowDefaults,
) -> Result<Vec<ListedRequest>, ServiceError> {
    let records: Vec<Vec<(String, String)>> =
        rows.into_iter().map(ProjectRowBody::record).collect();
    let list =
        lists::from_records(&records).map_err(|e| ServiceError::field("rows", e.to_string()))?;
    Ok(list.requests(defaults))
}

fn secret(text: Option<String>) -> Option<SecretString> {
    text.filter(|t| !t.is_empty()).map(SecretString::from)
}

async fn project_of(services: &Services, id: &str) -> Result<ProjectView, ApiError> {
    let project = services.project_by_code(id).await?;
    Ok(services.project_view(project.id).await?)
}

pub struct ProjectsApi;

#[OpenApi]
impl ProjectsApi {
    /// Makes a project from JSON rows or a CSV/XLSX/ODS file (`multipart/form-data`
    /// with the same fields and a `file` part). Every row is checked as a single
    /// request is (and against the other rows and the migrations in progress); rows
    /// with problems are reported and not started. `?preview=true` answers the rows'
    /// report (200) and makes nothing. Otherwise 201 with the project, its password
    /// once when Ferry generated it, and its migrations; 422 when no row is ready.
    /// Needs `projects:write` (and `migrations:override` for a project without a
    /// window).
    #[oai(path = "/projects", method = "post")]
    async fn create_project(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// Check the rows and answer their report; make nothing.
        preview: Query<Option<bool>>,
        body: NewProjectRequest,
    ) -> Result<CreateAnswer, ApiError> {
        auth.require(Scope::ProjectsWrite)?;
        let services = services(req)?;
        let (input, rows) = match body {
            NewProjectRequest::Json(Json(body)) => {
                let options = options_of(body.options)?;
                let defaults = RowDefaults {
                    requester_email: Some(body.requester_email.clone()),
                    time_zone: body.time_zone.clone(),
                };
                let rows = json_rows(body.rows, &defaults)?;
                let input = ProjectInput {
                    name: body.name,
                    requester_email: body.requester_email,
                    time_zone: body.time_zone,
                    options,
                    window: body.window,
                    concurrency: body.concurrency,
                    password: secret(body.password),
                    may_override: auth.0.scopes.contains(Scope::MigrationsOverride),
                };
                (input, rows)
            }
            NewProjectRequest::Form(form) => {
                let options = form_options(&form)?;
                let defaults = RowDefaults {
                    requester_email: Some(form.requester_email.clone()),
                    time_zone: form.time_zone.clone(),
                };
                let input = ProjectInput {
                    name: form.name,
                    requester_email: form.requester_email,
                    time_zone: form.time_zone,
                    options,
                    window: form.window,
                    concurrency: domain::concurrency_text(
                        form.concurrency.as_deref().unwrap_or_default(),
                    )
                    .map_err(|e| ServiceError::Invalid(vec![e]))?,
                    password: secret(form.password),
                    may_override: auth.0.scopes.contains(Scope::MigrationsOverride),
                };
                let rows = file_rows(services, form.file, &defaults).await?;
                (input, rows)
            }
        };
        let actor = actor(&auth);
        if preview.0.unwrap_or(false) {
            let reports = services.preview_project(&actor, &input, rows).await?;
            return Ok(CreateAnswer::Preview(Json(PreviewBody {
                rows: row_bodies(&reports),
            })));
        }
        let made = services
            .create_project(&actor, input, rows, None, true)
            .await?;
        let view = services.project_view(made.project.id).await?;
        Ok(CreateAnswer::Created(Json(Box::new(ProjectCreatedBody {
            project: project_body(&view),
            password: made.password.map(|p| p.expose_secret().to_owned()),
            migrations: mailbox_bodies(&view),
            rows: row_bodies(&made.rows),
        }))))
    }

    /// Projects, newest first, in the page shape of `GET /migrations`. Needs
    /// `projects:read`.
    #[oai(path = "/projects", method = "get")]
    async fn list_projects(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// Part of the name, the requester's address or the ID.
        search: Query<Option<String>>,
        /// From 1, up to 100000.
        #[oai(validator(minimum(value = "0"), maximum(value = "100000")))]
        page: Query<Option<u64>>,
        /// 1 to 100 (default 20).
        #[oai(validator(minimum(value = "0"), maximum(value = "100")))]
        per_page: Query<Option<u64>>,
    ) -> Result<Json<ProjectPage>, ApiError> {
        auth.require(Scope::ProjectsRead)?;
        let services = services(req)?;
        let page = page.0.unwrap_or(1).max(1);
        let per_page = per_page.0.unwrap_or(20).clamp(1, 100);
        let (views, total) = services
            .list_projects(&ProjectFilter {
                search: search.0,
                page: page - 1,
                per_page,
            })
            .await?;
        Ok(Json(ProjectPage {
            data: views.iter().map(project_body).collect(),
            total,
            page,
            per_page,
        }))
    }

    /// One project with each mailbox's status and counts. Needs `projects:read`.
    #[oai(path = "/projects/:id", method = "get")]
    async fn get_project(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// The project's code, like `FY-7K3M-Q9P2`.
        id: Path<String>,
    ) -> Result<Json<ProjectDetailBody>, ApiError> {
        auth.require(Scope::ProjectsRead)?;
        let view = project_of(services(req)?, &id.0).await?;
        Ok(Json(ProjectDetailBody {
            project: project_body(&view),
            migrations: mailbox_bodies(&view),
        }))
    }

    /// An action on the whole project, `POST /projects/{id}:{action}`: `pause` (its
    /// running passes stop, checkpoints kept; no new one starts), `resume`, `sync`
    /// (another delta pass for each mailbox waiting for its MX or complete),
    /// `retry-failed`, `cancel`, `approve` (a customer's own request: its mailboxes
    /// start), `mx-switched` (`?domain=`: the MX of that domain points at the provider).
    /// Each mailbox the action does not fit is listed in `skipped` with the reason.
    /// Needs `projects:write`.
    // The same path as GET and DELETE (`{id}` here is `{code}:{action}`): a project's
    // code is not a number, so two parameters at one place could not be told apart.
    #[oai(path = "/projects/:id", method = "post")]
    async fn action(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// `{id}:{action}`, e.g. `FY-7K3M-Q9P2:pause`.
        #[oai(validator(
            pattern = "^[A-Za-z0-9-]+:(pause|resume|sync|retry-failed|cancel|approve|mx-switched)$"
        ))]
        id: Path<String>,
        /// The domain whose MX switched (`mx-switched`).
        domain: Query<Option<String>>,
    ) -> Result<Json<ActionBody>, ApiError> {
        auth.require(Scope::ProjectsWrite)?;
        let services = services(req)?;
        let (id, action) =
            id.0.rsplit_once(':')
                .ok_or_else(|| ApiError::from(ServiceError::NotFound("project action")))?;
        let action = match action {
            "pause" => ProjectAction::Pause,
            "resume" => ProjectAction::Resume,
            "sync" => ProjectAction::Sync,
            "retry-failed" => ProjectAction::RetryFailed,
            "cancel" => ProjectAction::Cancel,
            "approve" => ProjectAction::Approve,
            "mx-switched" => match domain.0.filter(|d| !d.trim().is_empty()) {
                Some(d) => ProjectAction::MxSwitched(d),
                None => {
                    return Err(ServiceError::field(
                        "domain",
                        "give the domain whose MX now points at the provider (?domain=)",
                    )
                    .into());
                }
            },
            _ => return Err(ServiceError::NotFound("project action").into()),
        };
        let project = services.project_by_code(id).await?;
        let report = services
            .project_action(&actor(&auth), project.id, action)
            .await?;
        let view = services.project_view(project.id).await?;
        Ok(Json(ActionBody {
            project: project_body(&view),
            changed: report.changed,
            skipped: report
                .skipped
                .into_iter()
                .map(|(migration, reason)| SkippedBody { migration, reason })
                .collect(),
        }))
    }

    /// Deletes a project whose mailboxes are all finished, with their records; 409
    /// `project_active` otherwise. Needs `projects:write`.
    #[oai(path = "/projects/:id", method = "delete")]
    async fn delete_project(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        auth.require(Scope::ProjectsWrite)?;
        let services = services(req)?;
        let project = services.project_by_code(&id.0).await?;
        services.delete_project(&actor(&auth), project.id).await?;
        Ok(Deleted::NoContent)
    }

    /// Adds mailboxes to a project: JSON rows or a file, checked as at creation;
    /// `?preview=true` only checks. A paused project's new mailboxes wait paused too.
    /// Needs `projects:write`.
    #[oai(path = "/projects/:id/migrations", method = "post")]
    async fn add_rows(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<String>,
        preview: Query<Option<bool>>,
        body: RowsRequest,
    ) -> Result<RowsAnswer, ApiError> {
        auth.require(Scope::ProjectsWrite)?;
        let services = services(req)?;
        let project = services.project_by_code(&id.0).await?;
        let defaults = RowDefaults {
            requester_email: Some(project.requester_email.clone()),
            time_zone: Some(project.time_zone.clone()),
        };
        let rows = match body {
            RowsRequest::Json(Json(body)) => json_rows(body.rows, &defaults)?,
            RowsRequest::Form(form) => file_rows(services, form.file, &defaults).await?,
        };
        let preview = preview.0.unwrap_or(false);
        let reports = services
            .add_project_rows(
                &actor(&auth),
                project.id,
                rows,
                preview,
                auth.0.scopes.contains(Scope::MigrationsOverride),
            )
            .await?;
        if preview {
            return Ok(RowsAnswer::Preview(Json(PreviewBody {
                rows: row_bodies(&reports),
            })));
        }
        Ok(RowsAnswer::Added(Json(RowsAddedBody {
            migrations: reports
                .iter()
                .flat_map(|r| r.migrations.iter().map(|m| m.id))
                .collect(),
            rows: row_bodies(&reports),
        })))
    }
}
