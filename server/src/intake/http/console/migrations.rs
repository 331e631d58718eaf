//! Migrations in the console: the list and the new-migration form (with an
//! Authenticate button per side); one migration's page is `migration`, the schedule
//! `schedule`. Every rule is the service's; this module turns forms into service calls
//! and records into page contexts.

use std::collections::BTreeMap;

use poem::http::StatusCode;
use poem::web::{Form, Json};
use poem::{IntoResponse, Request, Response, handler};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{Layout, Staff, internal_error};
use crate::domain::{self as domain, EmailAddress, MigrationRequest, ServerInput};
use crate::domain::{ErrorCode, FolderProgress};
use crate::render::FieldErrors;
use crate::service::ServiceError;

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
    customer_ref: String,
    two_pass: Option<String>,
    mx_domain: String,
    terms: Option<String>,
    #[serde(skip_serializing)]
    csrf: String,
}

/// A field's text, when something was typed in it.
pub(super) fn given(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.trim().is_empty())
}

/// The window typed as a date and a time, as one text (`YYYY-MM-DDTHH:MM`).
pub(super) fn local_window(date: &str, time: &str) -> Option<String> {
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
            dav_url: None,
            upload_id: None,
        }
    }

    fn request(&self) -> MigrationRequest {
        // The override starts it as soon as a slot is free: a date left in the
        // (disabled) fields is not a window.
        let window_start =
            local_window(&self.window_date, &self.window_time).filter(|_| self.start_now.is_none());
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
            customer_ref: Some(self.customer_ref.clone()),
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
    "customer_ref",
    "selected_folders",
    "window.date",
    "window.time",
    "window.time_zone",
];

pub(super) fn earliest_text(staff: &Staff, tz: &str) -> Option<String> {
    let tz: chrono_tz::Tz = tz.parse().ok()?;
    let rules = staff.services.window_rules().ok()?;
    // A quarter of an hour ahead, so that the time shown is still allowed when the
    // form is sent a few minutes later (a hint once said 04:45 when 05:00 was needed).
    rules
        .earliest(staff.services.now() + chrono::Duration::minutes(15), tz)
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

#[handler]
pub async fn new_form(staff: Staff) -> Response {
    // The destination is the provider's server: its port and security as configured.
    let provider = &staff.services.settings().provider;
    let form = NewForm {
        mode: "full".into(),
        source_security: "ssl".into(),
        dest_port: provider.imap_port.to_string(),
        dest_security: provider.imap_security.as_str().into(),
        duplicates: "skip".into(),
        two_pass: Some("on".into()),
        // The viewer's own, until they type the requester's.
        time_zone: staff.tz.name().into(),
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
    /// Set: a CardDAV/CalDAV side (the contacts and calendars form), at `dav_url` or
    /// the provider's DAV server.
    dav: String,
    dav_url: String,
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
    let settings = staff.services.settings();
    let input = if form.dav.is_empty() {
        ServerInput {
            host: if input.host.is_empty() {
                settings.provider.imap_host.clone()
            } else {
                input.host
            },
            ..input
        }
    } else {
        // A CardDAV/CalDAV side: its address, or the provider's DAV server.
        ServerInput {
            dav_url: Some(given(&form.dav_url).map_or_else(
                || settings.provider.dav_url.clone(),
                |u| u.trim().to_owned(),
            )),
            username: input.username,
            password: input.password,
            ..Default::default()
        }
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

/// How far the current pass is, over all folders (a pass that found nothing new and
/// is done is at 100 %).
pub(super) fn percent(folders: &[FolderProgress]) -> Option<u64> {
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
