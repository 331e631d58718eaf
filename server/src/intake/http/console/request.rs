//! `/request`: the customer's own request form, public. One mailbox (with an
//! Authenticate button per side, as the staff form has) or many (rows typed or a
//! file, the staff import's reader), the window with the earliest allowed time shown,
//! the terms to accept. It makes a ticket and a project (`Services::public_request`)
//! and answers the project's ID, and its password once when Ferry made it.

use poem::http::StatusCode;
use poem::web::{Data, Form, Json, Multipart};
use poem::{IntoResponse, Request, Response, handler};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::import::{RowView, preview_rows};
use super::projects::message_of;
use super::track_project::{Brand, brand, render};
use super::{FileForm, client_ip, internal_error};
use crate::domain::{ErrorCode, OptionTexts, ProjectOptions, ServerInput};
use crate::intake::lists::{self, MailboxList, RowDefaults};
use crate::service::{ProjectInput, PublicAnswer, PublicRequest, ServiceError, Services};

#[derive(Serialize, Default, Clone)]
struct Fields {
    name: String,
    requester_email: String,
    time_zone: String,
    window: String,
    source_email: String,
    source_host: String,
    source_security: String,
    destination_email: String,
    rows: String,
    contacts: bool,
    calendars: bool,
    dav_url: String,
}

#[derive(Serialize)]
struct RequestPage {
    brand: Brand,
    open: bool,
    fields: Fields,
    earliest: Option<String>,
    errors: Vec<(String, String)>,
    headers: Vec<String>,
    rows: Vec<RowView>,
    domains: Vec<String>,
    /// The provider takes contacts and calendars (setting `provider.dav_url`).
    dav: bool,
}

/// The earliest window the rules allow now, in `tz`.
fn earliest(services: &Services, tz: &str) -> Option<String> {
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    let rules = services.window_rules().ok()?;
    rules
        .earliest(services.now(), tz)
        .map(|at| at.format("%Y-%m-%d %H:%M (%A) %Z").to_string())
}

fn page(services: &Services, fields: Fields) -> RequestPage {
    let tz = if fields.time_zone.is_empty() {
        "UTC".to_owned()
    } else {
        fields.time_zone.clone()
    };
    RequestPage {
        brand: brand(services),
        open: services.public_form_open(),
        earliest: earliest(services, &tz),
        fields,
        errors: Vec::new(),
        headers: Vec::new(),
        rows: Vec::new(),
        domains: services.settings().intake.destination_domains.clone(),
        dav: !services.settings().provider.dav_url.trim().is_empty(),
    }
}

#[handler]
pub async fn show_form(services: Data<&Services>) -> Response {
    let fields = Fields {
        time_zone: "UTC".into(),
        ..Default::default()
    };
    render(&services, "customer/request.html", &page(&services, fields))
}

#[derive(Serialize)]
struct DonePage {
    brand: Brand,
    ticket: i64,
    code: String,
    password: Option<String>,
    approved: bool,
    made: usize,
    not_started: usize,
}

/// The rows of the request: one mailbox typed in the form's fields, or rows typed, or
/// a file.
fn read_rows(form: &FileForm, fields: &Fields) -> Result<MailboxList, String> {
    if let Some((name, bytes)) = form.file.as_ref().filter(|(_, b)| !b.is_empty()) {
        return lists::read(name, bytes).map_err(|e| e.to_string());
    }
    if !fields.rows.trim().is_empty() {
        return lists::read("typed rows.csv", fields.rows.as_bytes()).map_err(|e| e.to_string());
    }
    let record = vec![
        ("source_email".to_owned(), fields.source_email.clone()),
        ("source_password".to_owned(), form.text("source_password")),
        ("source_host".to_owned(), fields.source_host.clone()),
        ("source_security".to_owned(), fields.source_security.clone()),
        (
            "destination_email".to_owned(),
            fields.destination_email.clone(),
        ),
        (
            "destination_password".to_owned(),
            form.text("destination_password"),
        ),
    ];
    lists::from_records(&[record]).map_err(|e| e.to_string())
}

#[handler]
pub async fn submit(req: &Request, services: Data<&Services>, multipart: Multipart) -> Response {
    let s: &Services = &services;
    let form = match FileForm::read(multipart, "list").await {
        Ok(form) => form,
        Err(message) => {
            let mut p = page(s, Fields::default());
            p.errors = vec![("form".into(), message)];
            return render(s, "customer/request.html", &p);
        }
    };
    let fields = Fields {
        name: form.text("name").trim().to_owned(),
        requester_email: form.text("requester_email").trim().to_owned(),
        time_zone: form.text("time_zone").trim().to_owned(),
        window: form.text("window").trim().to_owned(),
        source_email: form.text("source_email").trim().to_owned(),
        source_host: form.text("source_host").trim().to_owned(),
        source_security: form.text("source_security").trim().to_owned(),
        destination_email: form.text("destination_email").trim().to_owned(),
        rows: form.text("rows"),
        contacts: !form.text("contacts").is_empty(),
        calendars: !form.text("calendars").is_empty(),
        dav_url: form.text("dav_url").trim().to_owned(),
    };
    let mut p = page(s, fields.clone());
    let list = match read_rows(&form, &fields) {
        Ok(list) => list,
        Err(message) => {
            p.errors = vec![("rows".into(), message)];
            let mut resp = render(s, "customer/request.html", &p);
            resp.set_status(StatusCode::UNPROCESSABLE_ENTITY);
            return resp;
        }
    };
    let defaults = RowDefaults {
        requester_email: Some(fields.requester_email.clone()),
        time_zone: Some(fields.time_zone.clone()).filter(|z| !z.is_empty()),
    };
    let password = Some(form.text("password"))
        .filter(|p| !p.is_empty())
        .map(SecretString::from);
    // Contacts and calendars only where the provider has a DAV server to take them.
    let dav = p.dav;
    let options = ProjectOptions::from_texts(OptionTexts {
        contacts: Some(dav && fields.contacts),
        calendars: Some(dav && fields.calendars),
        dav_url: if dav { &fields.dav_url } else { "" },
        ..Default::default()
    });
    let options = match options {
        Ok(options) => options,
        Err(errors) => {
            p.errors = errors
                .into_iter()
                .map(|e| (e.field.to_owned(), e.message))
                .collect();
            let mut resp = render(s, "customer/request.html", &p);
            resp.set_status(StatusCode::UNPROCESSABLE_ENTITY);
            return resp;
        }
    };
    let request = PublicRequest {
        project: ProjectInput {
            name: fields.name.clone(),
            requester_email: fields.requester_email.clone(),
            time_zone: Some(fields.time_zone.clone()).filter(|z| !z.is_empty()),
            options,
            window: Some(fields.window.replace(' ', "T")).filter(|w| !w.is_empty()),
            concurrency: None,
            password,
            may_override: false,
        },
        rows: list.requests(&defaults),
        terms_accepted: !form.text("terms").is_empty(),
        ip: client_ip(req),
    };
    match s.public_request(request).await {
        Ok(PublicAnswer::Made(outcome)) => {
            let made = &outcome.made;
            let started = made
                .rows
                .iter()
                .filter(|r| !r.migrations.is_empty())
                .count();
            render(
                s,
                "customer/request_done.html",
                &DonePage {
                    brand: brand(s),
                    ticket: outcome.ticket.number(),
                    code: made.project.code.to_string(),
                    password: made.password.as_ref().map(|p| p.expose_secret().to_owned()),
                    approved: made.project.approved_at.is_some(),
                    made: started,
                    not_started: made.rows.len() - started,
                },
            )
        }
        Ok(PublicAnswer::NotReady(reports)) => {
            // Each row's problems in its cells, as the import shows them.
            let (headers, rows) = preview_rows(&list, &reports);
            p.headers = headers;
            p.rows = rows;
            p.errors = vec![(
                "rows".into(),
                "No mailbox is ready: correct what each row below says and send the request again."
                    .into(),
            )];
            let mut resp = render(s, "customer/request.html", &p);
            resp.set_status(StatusCode::UNPROCESSABLE_ENTITY);
            resp
        }
        Err(ServiceError::Invalid(errors)) => {
            p.errors = errors
                .iter()
                .map(|e| (e.field.to_owned(), e.message.clone()))
                .collect();
            let mut resp = render(s, "customer/request.html", &p);
            resp.set_status(StatusCode::UNPROCESSABLE_ENTITY);
            resp
        }
        Err(err @ (ServiceError::Unavailable { .. } | ServiceError::Forbidden(_))) => {
            p.errors = vec![("form".into(), message_of(&err))];
            let status = match err {
                ServiceError::Unavailable { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::FORBIDDEN,
            };
            let mut resp = render(s, "customer/request.html", &p);
            resp.set_status(status);
            resp
        }
        Err(err) => internal_error(s, &err),
    }
}

/// One side's fields as the form's Authenticate button posts them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CheckForm {
    /// `imap.old.example` or `imap.old.example:993`.
    host: String,
    /// `ssl`, `starttls` or `none`; empty: the port decides.
    security: String,
    username: String,
    password: String,
}

/// Logs in to one side (within the hourly limit) and answers its folders or why not.
#[handler]
pub async fn authenticate(
    req: &Request,
    services: Data<&Services>,
    Form(form): Form<CheckForm>,
) -> Response {
    let s: &Services = &services;
    let (host, port) = match form.host.trim().rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), p.parse().ok()),
        _ => (form.host.trim().to_owned(), None),
    };
    let input = ServerInput {
        host: if host.is_empty() {
            s.settings().provider.imap_host.clone()
        } else {
            host
        },
        port,
        security: Some(form.security.trim())
            .filter(|s| !s.is_empty())
            .map(|s| crate::domain::choice("security", s)),
        username: form.username.trim().to_owned(),
        password: Some(SecretString::from(form.password)),
        ..Default::default()
    };
    let answer = match s.public_check(&input, client_ip(req).as_deref()).await {
        Ok(Ok(folders)) => serde_json::json!({
            "ok": true,
            "folders": folders.len(),
            "messages": folders.iter().map(|f| f.messages).sum::<u64>(),
        }),
        Ok(Err(problem)) => {
            serde_json::json!({ "ok": false, "code": problem.code, "message": problem.message })
        }
        Err(err @ (ServiceError::Invalid(_) | ServiceError::Forbidden(_))) => {
            serde_json::json!({ "ok": false, "code": ErrorCode::ValidationFailed, "message": message_of(&err) })
        }
        Err(err @ ServiceError::Unavailable { .. }) => {
            let mut resp = Json(serde_json::json!({
                "ok": false, "code": ErrorCode::RateLimited, "message": err.to_string(),
            }))
            .into_response();
            resp.set_status(StatusCode::TOO_MANY_REQUESTS);
            return resp;
        }
        Err(err) => return internal_error(s, &err),
    };
    Json(answer).into_response()
}
