//! Contacts and calendars in the console: the "New contacts or calendars migration"
//! form (a file uploaded with its progress shown, or a CardDAV/CalDAV account with
//! its Authenticate button; the destination on the provider's DAV server), and the
//! upload itself (`POST /uploads`, the file as the body, streamed to the service).
//! Every rule is the service's, as for the mail form.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use poem::http::StatusCode;
use poem::web::{Form, Json, Path, Query};
use poem::{Body, IntoResponse, Request, Response, handler};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio_util::io::StreamReader;

use super::migrations::{earliest_text, given, local_window};
use super::{Layout, Staff, internal_error};
use crate::domain::{self as domain, EmailAddress, MigrationRequest, ServerInput, UploadId};
use crate::render::FieldErrors;
use crate::service::{IncomingFile, ServiceError};

/// The form, field names as the service names its errors.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ItemsForm {
    /// `contacts` or `calendars`.
    kind: String,
    /// `file` or `server`.
    source_from: String,
    #[serde(rename = "source.upload_id")]
    upload_id: String,
    #[serde(rename = "source.file_name")]
    file_name: String,
    #[serde(rename = "source.dav_url")]
    source_url: String,
    #[serde(rename = "source.username")]
    source_username: String,
    #[serde(rename = "source.password", skip_serializing)]
    source_password: String,
    #[serde(rename = "destination.dav_url")]
    dest_url: String,
    #[serde(rename = "destination.username")]
    dest_username: String,
    #[serde(rename = "destination.password", skip_serializing)]
    dest_password: String,
    policy: String,
    delete_source: Option<String>,
    #[serde(rename = "window.date")]
    window_date: String,
    #[serde(rename = "window.time")]
    window_time: String,
    #[serde(rename = "window.time_zone")]
    time_zone: String,
    start_now: Option<String>,
    requester_email: String,
    customer_ref: String,
    /// The ticket whose file this imports.
    ticket: String,
    terms: Option<String>,
    #[serde(skip_serializing)]
    csrf: String,
}

impl ItemsForm {
    fn request(&self) -> MigrationRequest {
        let from_file = self.source_from != "server";
        let window_start =
            local_window(&self.window_date, &self.window_time).filter(|_| self.start_now.is_none());
        let side = |url: &str, user: &str, pw: &str| ServerInput {
            dav_url: given(url).map(|u| u.trim().to_owned()),
            username: user.trim().to_owned(),
            password: Some(SecretString::from(pw.to_owned())),
            ..Default::default()
        };
        let source = if from_file {
            ServerInput {
                upload_id: self.upload_id.trim().parse().ok().map(UploadId),
                ..Default::default()
            }
        } else {
            side(
                &self.source_url,
                &self.source_username,
                &self.source_password,
            )
        };
        MigrationRequest {
            kind: Some(domain::choice("kind", &self.kind)),
            policy: given(&self.policy).map(|p| domain::choice("policy", p)),
            source,
            destination: side(&self.dest_url, &self.dest_username, &self.dest_password),
            delete_source: self.delete_source.is_some() && !from_file,
            window_start: window_start.map(|w| domain::local_time("window.start", &w)),
            time_zone: given(&self.time_zone).map(|tz| domain::time_zone("window.time_zone", tz)),
            requester_email: Some(EmailAddress::parse(
                "requester_email",
                &self.requester_email,
            )),
            customer_ref: Some(self.customer_ref.clone()),
            ticket: self.ticket.trim().parse().ok().map(domain::TicketId),
            ..Default::default()
        }
    }
}

#[derive(Serialize)]
struct ItemsPage<'a> {
    layout: Layout,
    form: &'a ItemsForm,
    errors: FieldErrors,
    earliest: Option<String>,
    provider_dav: String,
    max_bytes: u64,
}

/// The fields the page shows an error beside.
const FIELDS: &[&str] = &[
    "form",
    "terms",
    "kind",
    "policy",
    "file",
    "source.upload_id",
    "source.dav_url",
    "source.username",
    "source.password",
    "destination.dav_url",
    "destination.username",
    "destination.password",
    "requester_email",
    "customer_ref",
    "ticket",
    "window.date",
    "window.time",
    "window.time_zone",
];

fn render(staff: &Staff, form: &ItemsForm, errors: BTreeMap<String, String>) -> Response {
    let tz = if form.time_zone.is_empty() {
        "UTC"
    } else {
        &form.time_zone
    };
    let settings = staff.services.settings();
    let mut resp = staff.render(
        "console/migration_new_items.html",
        &ItemsPage {
            layout: staff.layout("/migrations/new-items"),
            earliest: earliest_text(staff, tz),
            provider_dav: settings.provider.dav_url.clone(),
            max_bytes: settings.limits.import_bytes,
            form,
            errors: FieldErrors::new(FIELDS, errors.clone()),
        },
    );
    if !errors.is_empty() {
        resp.set_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    resp
}

/// What a link may fill in: the kind, and a ticket's file made an upload (with the
/// ticket and its requester).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Prefill {
    kind: String,
    upload: Option<i64>,
    ticket: Option<i64>,
}

#[handler]
pub async fn new_form(staff: Staff, Query(prefill): Query<Prefill>) -> Response {
    let mut form = ItemsForm {
        kind: if prefill.kind == "calendars" {
            "calendars"
        } else {
            "contacts"
        }
        .into(),
        source_from: "file".into(),
        policy: "skip".into(),
        time_zone: staff.tz.name().into(),
        ..Default::default()
    };
    if let Some(id) = prefill.upload
        && let Ok(Some((found, _))) = staff.services.store().get_upload(UploadId(id)).await
    {
        form.upload_id = id.to_string();
        form.file_name = found.file_name;
    }
    if let Some(id) = prefill.ticket
        && let Ok(ticket) = staff.services.ticket(domain::TicketId(id)).await
    {
        form.ticket = id.to_string();
        form.requester_email = ticket.requester.unwrap_or_default();
        form.customer_ref = format!("ticket [#{id}]");
    }
    render(&staff, &form, BTreeMap::new())
}

/// A ticket's contacts or calendar file, made an upload, opens the form with it.
#[handler]
pub async fn import_ticket_file(
    staff: Staff,
    Path((ticket, file)): Path<(domain::TicketId, domain::AttachmentId)>,
    Form(form): Form<super::CsrfForm>,
) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    match staff
        .services
        .upload_ticket_file(&staff.actor(), ticket, file)
        .await
    {
        Ok(made) => {
            let kind = match made.kind {
                Some(domain::FileKind::Ics) => "calendars",
                _ => "contacts",
            };
            poem::web::Redirect::see_other(format!(
                "/migrations/new-items?kind={kind}&upload={}&ticket={}",
                made.id, ticket
            ))
            .into_response()
        }
        Err(ServiceError::Invalid(fields)) => super::error_page(
            &staff.services,
            StatusCode::UNPROCESSABLE_ENTITY,
            "This file cannot be imported",
            &fields
                .into_iter()
                .map(|f| f.message)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(ServiceError::NotFound(what)) => super::error_page(
            &staff.services,
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("No such {what}."),
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}

/// Creates the migration; the page's script asks for JSON (`{"errors": …}` or
/// `{"location": …}`), so what was typed stays on the page.
#[handler]
pub async fn create(staff: Staff, req: &Request, Form(form): Form<ItemsForm>) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    let json = req
        .header("accept")
        .is_some_and(|a| a.contains("application/json"));
    let mut errors = BTreeMap::new();
    if form.terms.is_none() {
        errors.insert("terms".to_owned(), "accept the terms to start".to_owned());
    }
    if form.source_from != "server" && form.upload_id.trim().is_empty() {
        errors.insert(
            "file".to_owned(),
            "choose the .vcf or .ics file and wait for its upload to finish".to_owned(),
        );
    }
    let result = if errors.is_empty() {
        staff
            .services
            .request_migration(&staff.actor(), form.start_now.is_some(), form.request())
            .await
    } else {
        Err(ServiceError::Invalid(Vec::new()))
    };
    let status = match result {
        Ok(m) => {
            let location = format!("/migrations/{}", m.id);
            if json {
                return Json(serde_json::json!({ "location": location })).into_response();
            }
            return poem::web::Redirect::see_other(location).into_response();
        }
        Err(ServiceError::Invalid(fields)) => {
            for e in fields {
                let field = if e.field == "source.upload_id" {
                    "file"
                } else {
                    e.field
                };
                errors.entry(field.to_owned()).or_insert(e.message);
            }
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(ServiceError::Conflict { message, .. } | ServiceError::Unavailable { message, .. }) => {
            errors.insert("form".into(), message);
            StatusCode::CONFLICT
        }
        Err(err) => return internal_error(&staff.services, &err),
    };
    if json {
        return Json(serde_json::json!({ "errors": errors }))
            .with_status(status)
            .into_response();
    }
    render(&staff, &form, errors)
}

/// A file to import, as the page's script sends it: the body is the file, its name in
/// `X-Filename`, the form's token in `X-CSRF-Token`. Answers `{"id", "kind", "size",
/// "file_name"}`, or `{"error"}` with the status.
#[handler]
pub async fn upload(staff: Staff, req: &Request, body: Body) -> Response {
    let token = req.header("x-csrf-token").unwrap_or_default();
    if let Some(resp) = staff.reject_bad_csrf(token) {
        return resp;
    }
    let declared = req
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    let file = IncomingFile {
        name: req.header("x-filename").unwrap_or_default().to_owned(),
        declared,
        body: StreamReader::new(body.into_bytes_stream().map_err(std::io::Error::other)),
    };
    match staff.services.store_upload(&staff.actor(), file).await {
        Ok(u) => Json(serde_json::json!({
            "id": u.id,
            "kind": u.kind,
            "size": u.size,
            "file_name": u.file_name,
        }))
        .into_response(),
        Err(ServiceError::Invalid(fields)) => {
            let message = fields
                .into_iter()
                .map(|f| f.message)
                .collect::<Vec<_>>()
                .join("; ");
            Json(serde_json::json!({ "error": message }))
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                .into_response()
        }
        Err(ServiceError::TooLarge(message)) => Json(serde_json::json!({ "error": message }))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .into_response(),
        Err(ServiceError::Unavailable { message, .. }) => {
            Json(serde_json::json!({ "error": message }))
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .into_response()
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}
