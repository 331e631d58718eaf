//! A migration's life in the console: the list, the new-migration form (with an
//! Authenticate button per side), the migration page with live progress and its
//! actions. Every rule is the service's; this module turns forms into service calls
//! and records into page contexts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Form, Json, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{Layout, Staff, display_time, internal_error, redirect_with_flash};
use crate::domain::{self as domain, EmailAddress, MigrationId, MigrationRequest, ServerInput};
use crate::domain::{ErrorCode, FolderProgress, Migration, MigrationStatus, Pace, Pass};
use crate::intake::http::error_page;
use crate::render::FieldErrors;
use crate::service::{MigrationDetail, ServiceError};
use crate::store::MigrationFilter;

const PER_PAGE: u64 = 50;

/// The new-migration form, field names as the service names its errors.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct NewForm {
    mode: String,
    #[serde(rename = "source.host")]
    source_host: String,
    #[serde(rename = "source.port")]
    source_port: String,
    #[serde(rename = "source.security")]
    source_security: String,
    #[serde(rename = "source.username")]
    source_username: String,
    #[serde(rename = "source.password", skip_serializing)]
    source_password: String,
    #[serde(rename = "source.authuser")]
    source_authuser: String,
    #[serde(rename = "destination.host")]
    dest_host: String,
    #[serde(rename = "destination.port")]
    dest_port: String,
    #[serde(rename = "destination.security")]
    dest_security: String,
    #[serde(rename = "destination.username")]
    dest_username: String,
    #[serde(rename = "destination.password", skip_serializing)]
    dest_password: String,
    duplicates: String,
    delete_source: Option<String>,
    count_first: Option<String>,
    import_since: String,
    selected_folders: String,
    folder_map: String,
    sync_deletions: Option<String>,
    #[serde(rename = "window.date")]
    window_date: String,
    #[serde(rename = "window.time")]
    window_time: String,
    #[serde(rename = "window.time_zone")]
    time_zone: String,
    start_now: Option<String>,
    requester_email: String,
    two_pass: Option<String>,
    mx_domain: String,
    terms: Option<String>,
    #[serde(skip_serializing)]
    csrf: String,
}

/// A field's text, when something was typed in it.
fn given(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.trim().is_empty())
}

/// The window typed as a date and a time, as one text (`YYYY-MM-DDTHH:MM`).
fn local_window(date: &str, time: &str) -> Option<String> {
    let time = if time.is_empty() { "00:00" } else { time };
    (!date.is_empty()).then(|| format!("{date}T{time}"))
}

impl NewForm {
    /// `security_field` names the security field in errors.
    fn side(
        security_field: &'static str,
        host: &str,
        port: &str,
        security: &str,
        user: &str,
        pw: &str,
        authuser: &str,
    ) -> ServerInput {
        ServerInput {
            host: host.trim().to_owned(),
            port: port.trim().parse().ok(),
            security: Some(security)
                .filter(|s| !s.is_empty())
                .map(|s| domain::choice(security_field, s)),
            username: user.trim().to_owned(),
            password: Some(SecretString::from(pw.to_owned())),
            authuser: Some(authuser.trim().to_owned()).filter(|s| !s.is_empty()),
        }
    }

    fn request(&self) -> MigrationRequest {
        let window_start = local_window(&self.window_date, &self.window_time);
        MigrationRequest {
            source: Self::side(
                "source.security",
                &self.source_host,
                &self.source_port,
                &self.source_security,
                &self.source_username,
                &self.source_password,
                &self.source_authuser,
            ),
            destination: Self::side(
                "destination.security",
                &self.dest_host,
                &self.dest_port,
                &self.dest_security,
                &self.dest_username,
                &self.dest_password,
                "",
            ),
            mode: given(&self.mode).map(|m| domain::choice("mode", m)),
            duplicates: given(&self.duplicates).map(|d| domain::choice("duplicates", d)),
            delete_source: self.delete_source.is_some(),
            count_first: self.count_first.is_some(),
            import_since: given(&self.import_since).map(|d| domain::day("import_since", d)),
            selected_folders: self
                .selected_folders
                .split([',', '\n'])
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            folder_map: self
                .folder_map
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|m| domain::folder_map("folder_map", m))
                .collect(),
            sync_deletions: self.sync_deletions.is_some(),
            two_pass: Some(self.two_pass.is_some()),
            mx_domain: Some(self.mx_domain.clone()).filter(|d| !d.trim().is_empty()),
            window_start: window_start.map(|w| domain::local_time("window.start", &w)),
            time_zone: given(&self.time_zone).map(|tz| domain::time_zone("window.time_zone", tz)),
            requester_email: Some(EmailAddress::parse(
                "requester_email",
                &self.requester_email,
            )),
            ..Default::default()
        }
    }
}

#[derive(Serialize)]
struct NewPage<'a> {
    layout: Layout,
    form: &'a NewForm,
    errors: FieldErrors,
    earliest: Option<String>,
    provider_host: String,
}

/// The fields the new-migration page shows an error beside (`form`: the page's own).
const NEW_FORM_FIELDS: &[&str] = &[
    "form",
    "terms",
    "folder_map",
    "source.host",
    "source.port",
    "source.password",
    "source.username",
    "source.authuser",
    "destination.host",
    "destination.port",
    "destination.username",
    "destination.password",
    "import_since",
    "mx_domain",
    "requester_email",
    "selected_folders",
    "window.date",
    "window.time",
    "window.time_zone",
];

fn earliest_text(staff: &Staff, tz: &str) -> Option<String> {
    let tz: chrono_tz::Tz = tz.parse().ok()?;
    let rules = staff.services.window_rules().ok()?;
    rules
        .earliest(staff.services.now(), tz)
        .map(|t| t.format("%A %-d %B %Y, %H:%M (%Z)").to_string())
}

fn render_new(staff: &Staff, form: &NewForm, errors: BTreeMap<String, String>) -> Response {
    let tz = if form.time_zone.is_empty() {
        "UTC"
    } else {
        &form.time_zone
    };
    let mut resp = staff.render(
        "console/migration_new.html",
        &NewPage {
            layout: staff.layout("/migrations/new"),
            earliest: earliest_text(staff, tz),
            provider_host: staff.services.settings().provider.imap_host.clone(),
            form,
            errors: FieldErrors::new(NEW_FORM_FIELDS, errors.clone()),
        },
    );
    if !errors.is_empty() {
        resp.set_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    resp
}

/// The running pass's pace, as the page shows it: messages and megabytes a second, and
/// the time left at that rate.
fn pace_text(pace: Pace) -> (String, Option<String>) {
    let per_second = pace.messages_per_second;
    let rate = format!(
        "{} messages/s · {:.1} MB/s",
        if per_second >= 10.0 {
            format!("{per_second:.0}")
        } else {
            format!("{per_second:.1}")
        },
        pace.bytes_per_second / 1e6
    );
    let eta = pace.seconds_left.map(|secs| match secs {
        0 => "done at this pass's end".to_owned(),
        1..60 => "under a minute".to_owned(),
        60..3600 => format!("about {} min", secs.div_ceil(60)),
        _ => format!("about {} h {} min", secs / 3600, (secs % 3600) / 60),
    });
    (rate, eta)
}

#[handler]
pub async fn new_form(staff: Staff) -> Response {
    let form = NewForm {
        mode: "full".into(),
        source_security: "ssl".into(),
        duplicates: "skip".into(),
        two_pass: Some("on".into()),
        time_zone: "UTC".into(),
        ..Default::default()
    };
    render_new(&staff, &form, BTreeMap::new())
}

fn wants_json(req: &Request) -> bool {
    req.header("accept")
        .is_some_and(|a| a.contains("application/json"))
}

/// Creates the migration; with `Accept: application/json` (the page's script) the
/// answer is `{"errors": {field: message}}` or `{"location": "/migrations/N"}`, so the
/// page keeps everything typed, passwords included, which a page never echoes.
#[handler]
pub async fn create(staff: Staff, req: &Request, Form(form): Form<NewForm>) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    let json = wants_json(req);
    let mut errors = BTreeMap::new();
    if form.terms.is_none() {
        errors.insert("terms".to_owned(), "accept the terms to start".to_owned());
    }
    let result = if errors.is_empty() {
        staff
            .services
            .request_migration(&staff.actor(), form.start_now.is_some(), form.request())
            .await
    } else {
        Err(ServiceError::Invalid(Vec::new()))
    };
    match result {
        Ok(m) => {
            let location = format!("/migrations/{}", m.id);
            if json {
                return Json(serde_json::json!({ "location": location })).into_response();
            }
            poem::web::Redirect::see_other(location).into_response()
        }
        Err(ServiceError::Invalid(fields)) => {
            for e in fields {
                errors.entry(e.field.to_owned()).or_insert(e.message);
            }
            if json {
                return Json(serde_json::json!({ "errors": errors }))
                    .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                    .into_response();
            }
            errors.entry("source.password".into()).or_insert_with(|| {
                "enter the passwords again (they are never sent back to the page)".into()
            });
            render_new(&staff, &form, errors)
        }
        Err(ServiceError::Conflict { message, .. } | ServiceError::Unavailable { message, .. }) => {
            errors.insert("form".into(), message);
            if json {
                return Json(serde_json::json!({ "errors": errors }))
                    .with_status(StatusCode::CONFLICT)
                    .into_response();
            }
            render_new(&staff, &form, errors)
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}

/// One side's fields as the Authenticate button posts them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TestForm {
    host: String,
    port: String,
    security: String,
    username: String,
    password: String,
    authuser: String,
    csrf: String,
}

/// Logs in to one side and answers its folders, or the reason it failed.
#[handler]
pub async fn test_connection(staff: Staff, Form(form): Form<TestForm>) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    let input = NewForm::side(
        "security",
        &form.host,
        &form.port,
        &form.security,
        &form.username,
        &form.password,
        &form.authuser,
    );
    let input = ServerInput {
        host: if input.host.is_empty() {
            staff.services.settings().provider.imap_host.clone()
        } else {
            input.host
        },
        ..input
    };
    match staff.services.test_connection(&staff.actor(), &input).await {
        Ok(Ok(folders)) => {
            Json(serde_json::json!({ "ok": true, "folders": folders })).into_response()
        }
        Ok(Err(problem)) => Json(
            serde_json::json!({ "ok": false, "code": problem.code, "message": problem.message }),
        )
        .into_response(),
        Err(ServiceError::Invalid(fields)) => Json(serde_json::json!({
            "ok": false, "code": ErrorCode::ValidationFailed,
            "message": fields.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join("; "),
        }))
        .into_response(),
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    status: String,
    q: String,
    page: u64,
}

#[derive(Serialize)]
struct Row {
    id: MigrationId,
    status: &'static str,
    source: String,
    destination: String,
    requester: String,
    created: String,
    next_run: Option<String>,
    percent: Option<u64>,
}

#[derive(Serialize)]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    statuses: Vec<&'static str>,
    status: String,
    q: String,
    page: u64,
    pages: u64,
    total: u64,
}

/// How far the current pass is, over all folders (a pass that found nothing new and
/// is done is at 100 %).
fn percent(folders: &[FolderProgress]) -> Option<u64> {
    if folders.is_empty() {
        return None;
    }
    if folders.iter().all(|f| f.status == "done") {
        return Some(100);
    }
    let expected: u64 = folders.iter().map(|f| f.expected).sum();
    let done: u64 = folders
        .iter()
        .map(|f| f.copied + f.skipped + f.failed)
        .sum();
    Some((done * 100).checked_div(expected).unwrap_or(0).min(99))
}

#[handler]
pub async fn list(staff: Staff, Query(q): Query<ListQuery>) -> Response {
    let filter = MigrationFilter {
        status: MigrationStatus::parse(&q.status),
        search: Some(q.q.clone()).filter(|s| !s.trim().is_empty()),
        page: q.page,
        per_page: PER_PAGE,
    };
    let (list, total) = match staff.services.list_migrations(&filter).await {
        Ok(found) => found,
        Err(ServiceError::Invalid(errors)) => {
            let message = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return error_page(
                &staff.services,
                StatusCode::UNPROCESSABLE_ENTITY,
                "No such page",
                &message,
            );
        }
        Err(err) => return internal_error(&staff.services, &err),
    };
    let ids: Vec<MigrationId> = list.iter().map(|m| m.id).collect();
    let mut folders = match staff.services.store().folders_of(&ids).await {
        Ok(found) => found,
        Err(err) => return internal_error(&staff.services, &err),
    };
    let mut rows = Vec::new();
    for m in list {
        let folders = folders.remove(&m.id).unwrap_or_default();
        rows.push(Row {
            id: m.id,
            status: m.status.as_str(),
            source: format!("{} on {}", m.source.username, m.source.host),
            destination: format!("{} on {}", m.dest.username, m.dest.host),
            requester: m.requester_email.clone(),
            created: display_time(m.created_at),
            next_run: m.next_run_at.map(display_time),
            percent: percent(&folders),
        });
    }
    staff.render(
        "console/migrations.html",
        &ListPage {
            layout: staff.layout("/migrations"),
            rows,
            statuses: MigrationStatus::ALL.iter().map(|s| s.as_str()).collect(),
            status: q.status,
            q: q.q,
            page: q.page,
            pages: total.div_ceil(PER_PAGE),
            total,
        },
    )
}

#[derive(Serialize)]
struct PassRow {
    number: u32,
    label: &'static str,
    status: String,
    started: String,
    finished: Option<String>,
    copied: u64,
    skipped: u64,
    failed: u64,
    bytes: u64,
    failures: Vec<(String, u64, String)>,
}

fn pass_rows(passes: &[Pass]) -> Vec<PassRow> {
    passes
        .iter()
        .map(|p| PassRow {
            number: p.number,
            label: crate::domain::PassKind::parse(&p.kind).map_or("pass", |k| k.label()),
            status: p.status.clone(),
            started: display_time(p.started_at),
            finished: p.finished_at.map(display_time),
            copied: p.copied,
            skipped: p.skipped,
            failed: p.failed,
            bytes: p.bytes,
            failures: p
                .report
                .as_ref()
                .and_then(|r| r["folders"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .flat_map(|f| {
                    let folder = f["source_path"].as_str().unwrap_or_default().to_owned();
                    f["failures"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |x| {
                            (
                                folder.clone(),
                                x["uid"].as_u64().unwrap_or(0),
                                x["reason"].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                })
                .collect(),
        })
        .collect()
}

/// What the page shows and the live endpoint answers.
#[derive(Serialize)]
struct Live {
    status: &'static str,
    running: bool,
    percent: Option<u64>,
    folders: Vec<FolderProgress>,
    passes: usize,
    error: Option<String>,
    next_run: Option<String>,
    mx_answer: Option<String>,
    /// While a pass runs: its pace and the time left at that pace.
    rate: Option<String>,
    eta: Option<String>,
}

fn live(d: &MigrationDetail, now: DateTime<Utc>) -> Live {
    let m = &d.migration;
    let (rate, eta) = d
        .passes
        .iter()
        .rev()
        .find(|p| p.status == "running")
        .and_then(|p| Pace::of(&d.folders, p.started_at, now))
        .map(pace_text)
        .map_or((None, None), |(rate, eta)| (Some(rate), eta));
    Live {
        status: m.status.as_str(),
        running: m.is_running(now),
        percent: percent(&d.folders),
        folders: d.folders.clone(),
        passes: d.passes.len(),
        error: m.error_message.clone(),
        next_run: m.next_run_at.map(display_time),
        mx_answer: m.mx_answer.clone(),
        rate,
        eta,
    }
}

#[derive(Serialize)]
struct Actions {
    credentials: bool,
    cancel: bool,
    retry: bool,
    sync: bool,
    mx_switched: bool,
    delete_migrated: bool,
    delete: bool,
    reschedule: bool,
}

fn actions(m: &Migration, now: DateTime<Utc>) -> Actions {
    use MigrationStatus as S;
    let running = m.is_running(now);
    Actions {
        credentials: !running && !matches!(m.status, S::Processing | S::Validating),
        cancel: m.status.is_active(),
        retry: matches!(m.status, S::Failed | S::Cancelled),
        sync: matches!(m.status, S::WaitingForMx | S::Completed)
            && m.next_work.is_none_or(|w| w.to_string() == "post_mx"),
        mx_switched: m.status == S::WaitingForMx && m.mx_switched_at.is_none(),
        delete_migrated: !m.status.is_active() && m.next_work.is_none(),
        delete: !running && !matches!(m.status, S::Processing | S::Validating),
        reschedule: m.status == S::Scheduled && !running,
    }
}

#[derive(Serialize)]
struct DetailPage {
    layout: Layout,
    id: MigrationId,
    source: String,
    destination: String,
    requester: String,
    window: Option<String>,
    time_zone: String,
    /// The earliest window allowed now, in the requester's time zone.
    earliest: Option<String>,
    /// The off-hours start, to prefill a new window's time.
    default_time: String,
    two_pass: bool,
    mx_domain: String,
    mx_switched: Option<String>,
    error_code: Option<ErrorCode>,
    live: Live,
    passes: Vec<PassRow>,
    actions: Actions,
    events: Vec<super::pages::AuditRow>,
}

#[handler]
pub async fn show(staff: Staff, Path(id): Path<MigrationId>) -> Response {
    let d = match staff.services.migration_detail(id).await {
        Ok(d) => d,
        Err(ServiceError::NotFound(_)) => {
            return super::error_page(
                &staff.services,
                StatusCode::NOT_FOUND,
                "No such migration",
                "It may have been deleted.",
            );
        }
        Err(err) => return internal_error(&staff.services, &err),
    };
    let events = staff
        .services
        .store()
        .list_audit(&crate::store::AuditFilter {
            limit: 100,
            subject: Some(("migration".into(), id.to_string())),
            ..Default::default()
        })
        .await
        .unwrap_or_default();
    let m = &d.migration;
    let actions = actions(m, staff.services.now());
    staff.render(
        "console/migration.html",
        &DetailPage {
            layout: staff.layout("/migrations"),
            id,
            source: format!(
                "{} on {}:{}",
                m.source.username, m.source.host, m.source.port
            ),
            destination: format!("{} on {}:{}", m.dest.username, m.dest.host, m.dest.port),
            requester: m.requester_email.clone(),
            window: m.window_start.map(display_time),
            time_zone: m.time_zone.clone(),
            // Shown beside Move window only.
            earliest: actions
                .reschedule
                .then(|| earliest_text(&staff, &m.time_zone))
                .flatten(),
            default_time: staff.services.settings().schedule.off_hours_start.clone(),
            two_pass: m.two_pass,
            mx_domain: m.mx_domain.clone(),
            mx_switched: m.mx_switched_at.map(display_time),
            error_code: m.error_code,
            live: live(&d, staff.services.now()),
            passes: pass_rows(&d.passes),
            actions,
            events: super::pages::audit_rows(events),
        },
    )
}

/// The live part of the migration page, polled by its script.
#[handler]
pub async fn live_json(staff: Staff, Path(id): Path<MigrationId>) -> Response {
    match staff.services.migration_detail(id).await {
        Ok(d) => Json(live(&d, staff.services.now())).into_response(),
        Err(ServiceError::NotFound(_)) => StatusCode::NOT_FOUND.into_response(),
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    csrf: String,
    reason: String,
    from_pass: String,
    source_password: String,
    destination_password: String,
    #[serde(rename = "window.date")]
    window_date: String,
    #[serde(rename = "window.time")]
    window_time: String,
    #[serde(rename = "window.time_zone")]
    time_zone: String,
    start_now: Option<String>,
}

/// The buttons of the migration page.
#[handler]
pub async fn action(
    staff: Staff,
    jar: &CookieJar,
    Path((id, action)): Path<(MigrationId, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    let s = &staff.services;
    let actor = staff.actor();
    let back = format!("/migrations/{id}");
    let done = match action.as_str() {
        "cancel" => s
            .cancel_migration(&actor, id, Some(form.reason).filter(|r| !r.is_empty()))
            .await
            .map(|_| "Stopped. A running pass stops within seconds; nothing copied is lost."),
        "retry" => s.retry_migration(&actor, id).await.map(
            |_| "Started again: credentials first, then where it stopped; duplicates are skipped.",
        ),
        "sync" => s
            .sync_migration(&actor, id)
            .await
            .map(|_| "A synchronisation pass starts now."),
        "mx-switched" => s
            .migration_mx_switched(&actor, id)
            .await
            .map(|_| "Noted: the post-MX pass follows after the grace period."),
        "reschedule" => {
            let start = local_window(&form.window_date, &form.window_time)
                .filter(|_| form.start_now.is_none());
            s.reschedule_migration(
                &actor,
                id,
                form.start_now.is_some(),
                start.map(|w| domain::local_time("window.start", &w)),
                given(&form.time_zone).map(|tz| domain::time_zone("window.time_zone", tz)),
            )
            .await
            .map(|_| "Moved to the new window; the requester and staff get it by email.")
        }
        "delete-migrated" => s
            .delete_migrated(&actor, id, form.from_pass.trim().parse().ok())
            .await
            .map(|_| "Removing this migration's copies from the destination."),
        "credentials" => {
            let given = |p: String| (!p.is_empty()).then(|| SecretString::from(p));
            s.update_credentials(
                &actor,
                id,
                given(form.source_password),
                given(form.destination_password),
            )
            .await
            .map(|_| "New passwords stored (encrypted). Retry to use them.")
        }
        "delete" => {
            return match s.delete_migration(&actor, id).await {
                Ok(()) => redirect_with_flash(
                    jar,
                    "/migrations",
                    true,
                    &format!("Migration #{id} deleted."),
                ),
                Err(err) => redirect_with_flash(jar, &back, false, &err.to_string()),
            };
        }
        _ => {
            return super::error_page(
                s,
                StatusCode::NOT_FOUND,
                "No such action",
                "Go back to the migration.",
            );
        }
    };
    match done {
        Ok(message) => redirect_with_flash(jar, &back, true, message),
        Err(ServiceError::Invalid(fields)) => redirect_with_flash(
            jar,
            &back,
            false,
            &fields
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(err @ (ServiceError::Conflict { .. } | ServiceError::NotFound(_))) => {
            redirect_with_flash(jar, &back, false, &err.to_string())
        }
        Err(err) => internal_error(s, &err),
    }
}

#[derive(Serialize)]
struct Slot {
    hour: String,
    migrations: Vec<(MigrationId, String, &'static str)>,
    /// Passes starting in this hour against `capacity.max_concurrent`.
    over: bool,
}

#[derive(Serialize)]
struct Day {
    day: String,
    slots: Vec<Slot>,
}

#[derive(Serialize)]
struct SchedulePage {
    layout: Layout,
    days: Vec<Day>,
    capacity: u32,
    running: u64,
    earliest: Option<String>,
}

/// Upcoming work by day and hour (UTC) for the next two weeks, with capacity use,
/// so staff see where a new request fits.
#[handler]
pub async fn schedule(staff: Staff) -> Response {
    let now = staff.services.now();
    let s = &staff.services;
    let upcoming = match s
        .store()
        .upcoming_work(
            now - chrono::Duration::hours(1),
            now + chrono::Duration::days(14),
        )
        .await
    {
        Ok(found) => found,
        Err(err) => return internal_error(s, &err),
    };
    let running = s.store().count_running_passes(now).await.unwrap_or(0);
    let capacity = s.settings().capacity.max_concurrent;
    let mut days: Vec<Day> = Vec::new();
    for m in upcoming {
        let Some(at) = m.next_run_at else { continue };
        let day = at.format("%A %-d %B").to_string();
        let hour = at.format("%H:00").to_string();
        if days.last().is_none_or(|d| d.day != day) {
            days.push(Day {
                day,
                slots: Vec::new(),
            });
        }
        let Some(d) = days.last_mut() else { continue };
        if d.slots.last().is_none_or(|sl| sl.hour != hour) {
            d.slots.push(Slot {
                hour,
                migrations: Vec::new(),
                over: false,
            });
        }
        if let Some(slot) = d.slots.last_mut() {
            let work = m.next_work.map(|w| w.to_string()).unwrap_or_default();
            slot.migrations.push((
                m.id,
                format!("{} ({work})", m.dest.username),
                m.status.as_str(),
            ));
            slot.over = slot.migrations.len() > capacity as usize;
        }
    }
    staff.render(
        "console/schedule.html",
        &SchedulePage {
            layout: staff.layout("/schedule"),
            days,
            capacity,
            running,
            earliest: earliest_text(&staff, "UTC"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_reads_as_people_say_it() {
        let pace = |m, b, left| Pace {
            messages_per_second: m,
            bytes_per_second: b,
            seconds_left: left,
        };
        assert_eq!(
            pace_text(pace(10.0, 1e6, Some(500))),
            (
                "10 messages/s · 1.0 MB/s".into(),
                Some("about 9 min".into())
            )
        );
        assert_eq!(
            pace_text(pace(2.54, 0.0, Some(30))),
            (
                "2.5 messages/s · 0.0 MB/s".into(),
                Some("under a minute".into())
            )
        );
        assert_eq!(
            pace_text(pace(1.0, 0.0, Some(5400))).1.as_deref(),
            Some("about 1 h 30 min")
        );
        assert_eq!(pace_text(pace(1.0, 0.0, None)).1, None);
    }
}
