//! Projects in the console: the list with each project's progress, "New project"
//! (its fields, then a list uploaded or typed with the import's preview, then the
//! project made and its password shown once), and a project's page: totals, each
//! mailbox's status and bar (polled live), the actions on the whole project, more
//! mailboxes, and its audit trail.

use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Form, Json, Multipart, Path, Query};
use poem::{IntoResponse, Response, handler};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::import::{RowView, preview_rows};
use super::{FileForm, Layout, Staff, internal_error, redirect_with_flash};
use crate::domain::{
    DuplicatePolicy, ItemPolicy, Mode, OptionTexts, ProjectOptions, ProjectStatus, UploadId,
    concurrency_text,
};
use crate::intake::http::error_page;
use crate::intake::lists::{self, RowDefaults};
use crate::service::{
    ProjectAction, ProjectInput, ProjectView, ServiceError, Services, project_status_words,
};
use crate::store::ProjectFilter;

const PER_PAGE: u64 = 50;

/// A project in the list.
#[derive(Serialize)]
pub(super) struct ProjectRow {
    code: String,
    name: String,
    status: &'static str,
    status_words: &'static str,
    requester: String,
    mailboxes: u64,
    completed: u64,
    failed: u64,
    paused: u64,
    percent: Option<u64>,
    created_at: String,
}

pub(super) fn project_row(v: &ProjectView) -> ProjectRow {
    ProjectRow {
        code: v.project.code.to_string(),
        name: v.project.name.clone(),
        status: v.status.as_str(),
        status_words: v.status.words(),
        requester: v.project.requester_email.clone(),
        mailboxes: v.counts.mailboxes,
        completed: v.counts.completed,
        failed: v.counts.failed,
        paused: v.counts.paused,
        percent: v.totals.percent,
        created_at: super::display_time(v.project.created_at),
    }
}

#[derive(Serialize)]
struct ListPage {
    layout: Layout,
    projects: Vec<ProjectRow>,
    q: String,
    total: u64,
    page: u64,
    pages: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<u64>,
}

#[handler]
pub async fn index(staff: Staff, Query(query): Query<ListQuery>) -> Response {
    let page = query.page.unwrap_or(1).clamp(1, 100_000);
    let filter = ProjectFilter {
        search: Some(query.q.clone()).filter(|q| !q.trim().is_empty()),
        page: page - 1,
        per_page: PER_PAGE,
    };
    let (views, total) = match staff.services.list_projects(&filter).await {
        Ok(found) => found,
        Err(err) => return internal_error(&staff.services, &err),
    };
    staff.render(
        "console/projects.html",
        &ListPage {
            layout: staff.layout("/projects"),
            projects: views.iter().map(project_row).collect(),
            q: query.q,
            total,
            page,
            pages: total.div_ceil(PER_PAGE).max(1),
        },
    )
}

/// The new-project form's fields, as typed (kept across the preview).
#[derive(Debug, Default, Clone, Serialize)]
pub(super) struct ProjectFields {
    pub name: String,
    pub requester_email: String,
    pub time_zone: String,
    pub window: String,
    pub concurrency: String,
    pub mode: String,
    pub duplicates: String,
    pub import_since: String,
    pub one_pass: bool,
    pub no_digest: bool,
    pub mail: bool,
    pub contacts: bool,
    pub calendars: bool,
    pub dav_url: String,
    pub policy: String,
}

impl ProjectFields {
    pub(super) fn read(form: &FileForm) -> Self {
        Self {
            name: form.text("name").trim().to_owned(),
            requester_email: form.text("requester_email").trim().to_owned(),
            time_zone: form.text("time_zone").trim().to_owned(),
            window: form.text("window").trim().to_owned(),
            concurrency: form.text("concurrency").trim().to_owned(),
            mode: form.text("mode").trim().to_owned(),
            duplicates: form.text("duplicates").trim().to_owned(),
            import_since: form.text("import_since").trim().to_owned(),
            one_pass: !form.text("one_pass").is_empty(),
            no_digest: !form.text("no_digest").is_empty(),
            mail: !form.text("mail").is_empty(),
            contacts: !form.text("contacts").is_empty(),
            calendars: !form.text("calendars").is_empty(),
            dav_url: form.text("dav_url").trim().to_owned(),
            policy: form.text("policy").trim().to_owned(),
        }
    }

    /// The project these fields ask for, or their field errors.
    pub(super) fn input(
        &self,
        password: Option<SecretString>,
    ) -> Result<ProjectInput, ServiceError> {
        let given = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let options = ProjectOptions::from_texts(OptionTexts {
            mode: &self.mode,
            duplicates: &self.duplicates,
            import_since: &self.import_since,
            two_pass: Some(!self.one_pass),
            digest: Some(!self.no_digest),
            mail: Some(self.mail),
            contacts: Some(self.contacts),
            calendars: Some(self.calendars),
            dav_url: &self.dav_url,
            policy: &self.policy,
        });
        let concurrency = concurrency_text(&self.concurrency);
        let (options, concurrency) = match (options, concurrency) {
            (Ok(o), Ok(c)) => (o, c),
            (o, c) => {
                let mut errors = o.err().unwrap_or_default();
                errors.extend(c.err());
                return Err(ServiceError::Invalid(errors));
            }
        };
        Ok(ProjectInput {
            name: self.name.clone(),
            requester_email: self.requester_email.clone(),
            time_zone: given(&self.time_zone),
            options,
            window: given(&self.window).map(|w| w.replace(' ', "T")),
            concurrency,
            password,
            // Staff may start a project at once, as a single migration.
            may_override: true,
        })
    }

    fn defaults(&self) -> RowDefaults {
        RowDefaults {
            requester_email: Some(self.requester_email.clone()).filter(|e| !e.is_empty()),
            time_zone: Some(self.time_zone.clone()).filter(|z| !z.is_empty()),
        }
    }
}

#[derive(Serialize)]
struct NewPage {
    layout: Layout,
    fields: ProjectFields,
    /// Each field's error, by its name.
    errors: Vec<(String, String)>,
    file_error: Option<String>,
    /// The kept list being previewed.
    upload: Option<UploadId>,
    file_name: String,
    headers: Vec<String>,
    rows: Vec<RowView>,
    ready: usize,
    invalid: usize,
    modes: Vec<&'static str>,
    policies: Vec<String>,
    item_policies: Vec<String>,
}

impl NewPage {
    fn new(staff: &Staff, fields: ProjectFields) -> Self {
        Self {
            layout: staff.layout("/projects"),
            fields,
            errors: Vec::new(),
            file_error: None,
            upload: None,
            file_name: String::new(),
            headers: Vec::new(),
            rows: Vec::new(),
            ready: 0,
            invalid: 0,
            modes: vec!["full", "folders_only"],
            policies: words::<DuplicatePolicy>(),
            item_policies: words::<ItemPolicy>(),
        }
    }
}

#[handler]
pub async fn new_form(staff: Staff) -> Response {
    let fields = ProjectFields {
        time_zone: staff.tz.name().to_owned(),
        concurrency: staff
            .services
            .settings()
            .capacity
            .project_concurrency
            .to_string(),
        mail: true,
        ..Default::default()
    };
    staff.render("console/project_new.html", &NewPage::new(&staff, fields))
}

/// The errors of a refused project, each under its field.
fn field_errors(err: &ServiceError) -> Vec<(String, String)> {
    match err {
        ServiceError::Invalid(errors) => errors
            .iter()
            .map(|e| (e.field.to_owned(), e.message.clone()))
            .collect(),
        other => vec![("form".into(), other.to_string())],
    }
}

/// "Preview": the list kept (encrypted) and every row checked with the project's
/// defaults; "Create": the project made from the kept list.
#[handler]
pub async fn new_submit(staff: Staff, jar: &CookieJar, multipart: Multipart) -> Response {
    let form = match FileForm::read(multipart, "list").await {
        Ok(form) => form,
        Err(message) => return redirect_with_flash(jar, "/projects/new", false, &message),
    };
    if let Some(resp) = staff.reject_bad_csrf(&form.text("csrf")) {
        return resp;
    }
    let s = &staff.services;
    let fields = ProjectFields::read(&form);
    let mut page = NewPage::new(&staff, fields.clone());
    let password = Some(form.text("password"))
        .filter(|p| !p.is_empty())
        .map(SecretString::from);
    let input = match fields.input(password) {
        Ok(input) => input,
        Err(err) => {
            page.errors = field_errors(&err);
            return staff.render("console/project_new.html", &page);
        }
    };
    // The list: kept from the preview, or uploaded (or typed) now.
    let upload = match form.text("upload").parse::<i64>().ok().map(UploadId) {
        Some(id) => id,
        None => {
            let (name, bytes) = match form.file.clone() {
                Some((name, bytes)) if !bytes.is_empty() => (name, bytes),
                _ => ("typed rows.csv".to_owned(), form.text("rows").into_bytes()),
            };
            match s
                .keep_list(
                    &staff.actor(),
                    &name,
                    &bytes,
                    Some(fields.requester_email.clone()).filter(|e| !e.is_empty()),
                    Some(fields.time_zone.clone()).filter(|z| !z.is_empty()),
                )
                .await
            {
                Ok(upload) => upload.id,
                Err(err @ ServiceError::Invalid(_)) => {
                    page.file_error = Some(message_of(&err));
                    return staff.render("console/project_new.html", &page);
                }
                Err(err) => return internal_error(s, &err),
            }
        }
    };
    let (kept, bytes) = match s.list_file(upload).await {
        Ok((kept, Some(bytes))) => (kept, bytes),
        Ok((_, None)) => {
            page.file_error = Some("This list was already used; upload it again.".into());
            return staff.render("console/project_new.html", &page);
        }
        Err(err) => return internal_error(s, &err),
    };
    let list = match lists::read(&kept.file_name, &bytes) {
        Ok(list) => list,
        Err(err) => {
            page.file_error = Some(err.to_string());
            return staff.render("console/project_new.html", &page);
        }
    };
    let requests = list.requests(&fields.defaults());
    page.upload = Some(upload);
    page.file_name = kept.file_name.clone();
    if form.text("step") == "create" {
        match s
            .create_project(&staff.actor(), input.clone(), requests.clone(), None, true)
            .await
        {
            Ok(made) => {
                if let Err(err) = s.store().use_upload(upload, s.now()).await {
                    tracing::warn!(error = %err, "Failed to erase a used list");
                }
                let password = made.password.as_ref().map(|p| p.expose_secret().to_owned());
                return staff.render(
                    "console/project_made.html",
                    &MadePage {
                        layout: staff.layout("/projects"),
                        code: made.project.code.to_string(),
                        name: made.project.name.clone(),
                        password,
                        made: made
                            .rows
                            .iter()
                            .filter(|r| !r.migrations.is_empty())
                            .count(),
                        not_started: made.rows.iter().filter(|r| r.migrations.is_empty()).count(),
                    },
                );
            }
            Err(err @ ServiceError::Invalid(_)) => page.errors = field_errors(&err),
            Err(err) => return internal_error(s, &err),
        }
    }
    match s.preview_project(&staff.actor(), &input, requests).await {
        Ok(reports) => {
            let (headers, rows) = preview_rows(&list, &reports);
            page.ready = rows.iter().filter(|r| r.problems.is_empty()).count();
            page.invalid = rows.len() - page.ready;
            page.headers = headers;
            page.rows = rows;
        }
        Err(err @ ServiceError::Invalid(_)) => page.errors = field_errors(&err),
        Err(err) => return internal_error(s, &err),
    }
    staff.render("console/project_new.html", &page)
}

#[derive(Serialize)]
struct MadePage {
    layout: Layout,
    code: String,
    name: String,
    password: Option<String>,
    made: usize,
    not_started: usize,
}

pub(super) fn message_of(err: &ServiceError) -> String {
    match err {
        ServiceError::Invalid(errors) => errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// One mailbox on a project's page.
#[derive(Serialize)]
pub(super) struct MailboxView {
    id: i64,
    source: String,
    destination: String,
    status: &'static str,
    status_words: &'static str,
    percent: Option<u64>,
    copied: u64,
    failed: u64,
    error: Option<String>,
    /// Its password was refused: a new one can be given.
    password_needed: bool,
    mx_domain: String,
    waiting_for_mx: bool,
    /// `mail`, `contacts` or `calendars`.
    kind: &'static str,
}

pub(super) fn mailboxes(view: &ProjectView, masked: bool) -> Vec<MailboxView> {
    view.migrations
        .iter()
        .map(|(m, p)| MailboxView {
            id: m.id.0,
            source: if masked {
                m.source.username().to_owned()
            } else {
                format!("{} on {}", m.source.username(), m.source.host())
            },
            destination: m.dest.username().to_owned(),
            kind: m.kind.as_str(),
            status: m.status.as_str(),
            status_words: project_status_words(m.status),
            percent: p.percent,
            copied: p.copied,
            failed: p.failed,
            error: m.error_message.clone(),
            password_needed: m.status == crate::domain::MigrationStatus::Failed
                && m.error_code == Some(crate::domain::ErrorCode::Auth),
            mx_domain: m.mx_domain.clone(),
            waiting_for_mx: m.status == crate::domain::MigrationStatus::WaitingForMx
                && m.mx_switched_at.is_none(),
        })
        .collect()
}

/// A project's totals in words.
#[derive(Serialize)]
pub(super) struct TotalsView {
    percent: Option<u64>,
    copied: u64,
    bytes: u64,
    rate: Option<String>,
    time_left: Option<String>,
}

pub(super) fn totals(view: &ProjectView) -> TotalsView {
    let t = &view.totals;
    TotalsView {
        percent: t.percent,
        copied: t.copied,
        bytes: t.bytes,
        rate: (t.messages_per_second > 0.0).then(|| {
            format!(
                "{:.1} messages/s, {:.1} MB/s",
                t.messages_per_second,
                t.bytes_per_second / 1e6
            )
        }),
        time_left: t.seconds_left.map(|secs| match secs {
            0..60 => "under a minute".to_owned(),
            60..3600 => format!("about {} min", secs.div_ceil(60)),
            _ => format!("about {} h {} min", secs / 3600, (secs % 3600) / 60),
        }),
    }
}

/// What a project moves besides its mail, as its page says it: "mail, contacts and
/// calendars from dav.old.example (policy merge); " — nothing for a mail project.
fn items_words(options: &ProjectOptions) -> String {
    let items: Vec<&str> = [
        (options.contacts, "contacts"),
        (options.calendars, "calendars"),
    ]
    .into_iter()
    .filter_map(|(on, word)| on.then_some(word))
    .collect();
    if items.is_empty() {
        return String::new();
    }
    let from = options
        .dav_url
        .as_deref()
        .map_or_else(|| "each row's source server".to_owned(), str::to_owned);
    format!(
        "{}{} from {from} (policy {}); ",
        if options.mail { "mail, " } else { "" },
        items.join(" and "),
        word(options.policy)
    )
}

#[derive(Serialize)]
struct ProjectPage {
    layout: Layout,
    project: ProjectRow,
    time_zone: String,
    window: Option<String>,
    concurrency: u32,
    options: String,
    awaiting_approval: bool,
    paused: bool,
    mailboxes: Vec<MailboxView>,
    totals: TotalsView,
    mx_domains: Vec<String>,
    ticket: Option<i64>,
    events: Vec<super::pages::AuditRow>,
    emails: Vec<EmailLine>,
}

#[derive(Serialize)]
struct EmailLine {
    id: i64,
    subject: String,
    to: String,
    status: String,
    at: String,
}

async fn view_of(services: &Services, code: &str) -> Result<ProjectView, ServiceError> {
    let project = services.project_by_code(code).await?;
    services.project_view(project.id).await
}

fn no_project(services: &Services) -> Response {
    error_page(
        services,
        StatusCode::NOT_FOUND,
        "No such project",
        "Check the project's ID (like FY-7K3M-Q9P2); it may have been deleted.",
    )
}

#[handler]
pub async fn show(staff: Staff, Path(code): Path<String>) -> Response {
    let s = &staff.services;
    let view = match view_of(s, &code).await {
        Ok(view) => view,
        Err(ServiceError::NotFound(_)) => return no_project(s),
        Err(err) => return internal_error(s, &err),
    };
    let p = &view.project;
    let events = s
        .store()
        .list_audit(&crate::store::AuditFilter {
            limit: 100,
            subject: Some(("project".into(), p.code.to_string())),
            ..Default::default()
        })
        .await
        .unwrap_or_default();
    let emails = s
        .store()
        .list_outbox(&crate::store::OutboxFilter {
            about: Some(("project".into(), p.code.to_string())),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|e| EmailLine {
            id: e.id.0,
            subject: e.subject,
            to: e.to.join(", "),
            status: e.status.as_str().to_owned(),
            at: super::display_time(e.created_at),
        })
        .collect();
    let mut mx_domains: Vec<String> = view
        .migrations
        .iter()
        .filter(|(m, _)| m.status == crate::domain::MigrationStatus::WaitingForMx)
        .map(|(m, _)| m.mx_domain.clone())
        .collect();
    mx_domains.sort();
    mx_domains.dedup();
    let tz: chrono_tz::Tz = p.time_zone.parse().unwrap_or(chrono_tz::UTC);
    staff.render(
        "console/project.html",
        &ProjectPage {
            layout: staff.layout("/projects"),
            project: project_row(&view),
            time_zone: p.time_zone.clone(),
            window: p
                .window_start
                .map(|w| w.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()),
            concurrency: p.concurrency,
            options: format!(
                "{}{}, duplicates {}, {}{}",
                items_words(&p.options),
                if p.options.mode == Mode::FoldersOnly {
                    "folders only"
                } else {
                    "folders and messages"
                },
                word(p.options.duplicates),
                if p.options.two_pass {
                    "a full copy before the MX change and a final one after"
                } else {
                    "one pass"
                },
                p.options
                    .import_since
                    .map(|d| format!(", messages since {d}"))
                    .unwrap_or_default()
            ),
            awaiting_approval: view.status == ProjectStatus::AwaitingApproval,
            paused: p.paused_at.is_some(),
            mailboxes: mailboxes(&view, false),
            totals: totals(&view),
            mx_domains,
            ticket: p.ticket.map(|t| t.0),
            events: super::pages::audit_rows(events),
            emails,
        },
    )
}

/// The live state of a project's page (and the customer's), polled.
#[derive(Serialize)]
pub(super) struct Live {
    status: &'static str,
    mailboxes: Vec<MailboxView>,
    totals: TotalsView,
}

pub(super) fn live(view: &ProjectView, masked: bool) -> Live {
    Live {
        status: view.status.as_str(),
        mailboxes: mailboxes(view, masked),
        totals: totals(view),
    }
}

#[handler]
pub async fn live_json(staff: Staff, Path(code): Path<String>) -> Response {
    match view_of(&staff.services, &code).await {
        Ok(view) => Json(live(&view, false)).into_response(),
        Err(ServiceError::NotFound(_)) => StatusCode::NOT_FOUND.into_response(),
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    csrf: String,
    domain: String,
}

/// An action on the whole project.
#[handler]
pub async fn action(
    staff: Staff,
    jar: &CookieJar,
    Path((code, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    let s = &staff.services;
    let back = format!("/projects/{code}");
    let action = match action.as_str() {
        "pause" => ProjectAction::Pause,
        "resume" => ProjectAction::Resume,
        "sync" => ProjectAction::Sync,
        "retry-failed" => ProjectAction::RetryFailed,
        "cancel" => ProjectAction::Cancel,
        "approve" => ProjectAction::Approve,
        "mx-switched" => ProjectAction::MxSwitched(form.domain.clone()),
        _ => return no_project(s),
    };
    let project = match s.project_by_code(&code).await {
        Ok(p) => p,
        Err(ServiceError::NotFound(_)) => return no_project(s),
        Err(err) => return internal_error(s, &err),
    };
    match s.project_action(&staff.actor(), project.id, action).await {
        Ok(report) => {
            let text = format!(
                "Done for {} mailbox(es); {} left as they were.",
                report.changed.len(),
                report.skipped.len()
            );
            redirect_with_flash(jar, &back, true, &text)
        }
        Err(err @ (ServiceError::Invalid(_) | ServiceError::Conflict { .. })) => {
            redirect_with_flash(jar, &back, false, &message_of(&err))
        }
        Err(err) => internal_error(s, &err),
    }
}

/// More mailboxes for the project, from a file or typed rows, made at once (each row
/// checked as at creation; a row with a problem is reported and not started).
#[handler]
pub async fn add_rows(
    staff: Staff,
    jar: &CookieJar,
    Path(code): Path<String>,
    multipart: Multipart,
) -> Response {
    let back = format!("/projects/{code}");
    let form = match FileForm::read(multipart, "list").await {
        Ok(form) => form,
        Err(message) => return redirect_with_flash(jar, &back, false, &message),
    };
    if let Some(resp) = staff.reject_bad_csrf(&form.text("csrf")) {
        return resp;
    }
    let s = &staff.services;
    let project = match s.project_by_code(&code).await {
        Ok(p) => p,
        Err(ServiceError::NotFound(_)) => return no_project(s),
        Err(err) => return internal_error(s, &err),
    };
    match add_listed(s, &staff.actor(), &project, &form, true).await {
        Ok(text) => redirect_with_flash(jar, &back, true, &text),
        Err(text) => redirect_with_flash(jar, &back, false, &text),
    }
}

/// Reads a form's file (or typed rows) and adds them to `project`; the flash's words.
/// Rows without a window start at once only with `may_override` (staff).
pub(super) async fn add_listed(
    s: &Services,
    actor: &crate::domain::Actor,
    project: &crate::domain::Project,
    form: &FileForm,
    may_override: bool,
) -> Result<String, String> {
    let (name, bytes) = match form.file.clone() {
        Some((name, bytes)) if !bytes.is_empty() => (name, bytes),
        _ => ("typed rows.csv".to_owned(), form.text("rows").into_bytes()),
    };
    if bytes.len() > s.settings().limits.upload_bytes {
        return Err("The file is too large; split it into several files.".into());
    }
    let list = lists::read(&name, &bytes).map_err(|e| e.to_string())?;
    let defaults = RowDefaults {
        requester_email: Some(project.requester_email.clone()),
        time_zone: Some(project.time_zone.clone()),
    };
    let reports = s
        .add_project_rows(
            actor,
            project.id,
            list.requests(&defaults),
            false,
            may_override,
        )
        .await
        .map_err(|e| message_of(&e))?;
    let added = reports.iter().filter(|r| !r.migrations.is_empty()).count();
    let problems: Vec<String> = reports
        .iter()
        .filter(|r| r.migrations.is_empty())
        .map(|r| {
            format!(
                "row {}: {}",
                r.row,
                r.problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(format!("Added {added} mailbox(es)."))
    } else if added > 0 {
        Ok(format!(
            "Added {added} mailbox(es); not started: {}",
            problems.join(" · ")
        ))
    } else {
        Err(format!("No mailbox added: {}", problems.join(" · ")))
    }
}

/// A choice's words, as its forms offer them.
fn words<T: clap::ValueEnum>() -> Vec<String> {
    T::value_variants()
        .iter()
        .map(|v| word(v.clone()))
        .collect()
}

fn word<T: clap::ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().replace('-', "_"))
        .unwrap_or_default()
}
