//! The desk's tickets: the list with its filters and counts, and a ticket's page with
//! its thread, its files (downloaded by staff), the check of every list it holds (the
//! import's preview table), and the actions: reply, assign, change the status, make
//! the migrations of a list's ready rows.

use poem::http::{StatusCode, header};
use poem::web::cookie::CookieJar;
use poem::web::{Form, Multipart, Path, Query};
use poem::{IntoResponse, Response, handler};
use serde::{Deserialize, Serialize};

use super::import::{RowView, preview_rows};
use super::{FileForm, Layout, Staff, internal_error, redirect_with_flash};
use crate::domain::{
    AttachmentId, Direction, Ticket, TicketAttachment, TicketId, TicketStatus, UserId,
};
use crate::intake::http::error_page;
use crate::intake::support::{TicketRequest, make_migrations, ticket_requests};
use crate::service::{ServiceError, TicketChange};
use crate::store::TicketFilter;

const PER_PAGE: u64 = 50;

#[derive(Serialize)]
struct TicketRow {
    id: TicketId,
    number: i64,
    status: &'static str,
    status_label: &'static str,
    requester: String,
    subject: String,
    assignee: String,
    awaiting_staff: bool,
    updated_at: String,
}

#[derive(Serialize)]
struct StatusCount {
    status: &'static str,
    label: &'static str,
    n: u64,
}

#[derive(Serialize)]
struct Option_ {
    value: String,
    label: String,
}

#[derive(Serialize)]
struct ListPage {
    layout: Layout,
    tickets: Vec<TicketRow>,
    counts: Vec<StatusCount>,
    staff: Vec<Option_>,
    status: String,
    assignee: String,
    q: String,
    total: u64,
    page: u64,
    pages: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<u64>,
}

async fn staff_names(staff: &Staff) -> Vec<(UserId, String)> {
    staff
        .services
        .store()
        .list_users()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|u| !u.disabled)
        .map(|u| {
            let name = if u.name.is_empty() {
                u.email.to_string()
            } else {
                u.name.clone()
            };
            (u.id, name)
        })
        .collect()
}

fn row(t: &Ticket, names: &[(UserId, String)]) -> TicketRow {
    TicketRow {
        id: t.id,
        number: t.number(),
        status: t.status.as_str(),
        status_label: t.status.label(),
        requester: t.requester.clone().unwrap_or_else(|| "no sender".into()),
        subject: t.subject.clone(),
        assignee: t
            .assignee
            .and_then(|a| names.iter().find(|(id, _)| *id == a))
            .map(|(_, n)| n.clone())
            .unwrap_or_default(),
        awaiting_staff: t.awaiting_staff,
        updated_at: super::display_time(t.updated_at),
    }
}

#[handler]
pub async fn index(staff: Staff, Query(query): Query<ListQuery>) -> Response {
    let store = staff.services.store();
    let names = staff_names(&staff).await;
    let assignee = match query.assignee.as_str() {
        "" => None,
        "none" => Some(None),
        "mine" => Some(Some(staff.session.user.id)),
        id => id.parse().ok().map(|id| Some(UserId(id))),
    };
    let page = query.page.unwrap_or(1).clamp(1, 100_000);
    let filter = TicketFilter {
        status: TicketStatus::parse(&query.status),
        assignee,
        search: Some(query.q.clone()).filter(|q| !q.trim().is_empty()),
        page: page - 1,
        per_page: PER_PAGE,
    };
    let found = async {
        let (tickets, total) = store.list_tickets(&filter).await?;
        let counts = store.count_tickets().await?;
        Ok::<_, crate::store::StoreError>((tickets, total, counts))
    }
    .await;
    let (tickets, total, counts) = match found {
        Ok(found) => found,
        Err(err) => return internal_error(&staff.services, &err),
    };
    let mut staff_options = vec![
        Option_ {
            value: String::new(),
            label: "Anyone".into(),
        },
        Option_ {
            value: "mine".into(),
            label: "Mine".into(),
        },
        Option_ {
            value: "none".into(),
            label: "Nobody".into(),
        },
    ];
    staff_options.extend(names.iter().map(|(id, name)| Option_ {
        value: id.to_string(),
        label: name.clone(),
    }));
    staff.render(
        "console/tickets.html",
        &ListPage {
            layout: staff.layout("/tickets"),
            tickets: tickets.iter().map(|t| row(t, &names)).collect(),
            counts: counts
                .into_iter()
                .map(|(s, n)| StatusCount {
                    status: s.as_str(),
                    label: s.label(),
                    n,
                })
                .collect(),
            staff: staff_options,
            status: query.status,
            assignee: query.assignee,
            q: query.q,
            total,
            page,
            pages: total.div_ceil(PER_PAGE).max(1),
        },
    )
}

#[derive(Serialize)]
struct MessageView {
    id: i64,
    incoming: bool,
    from: String,
    to: String,
    subject: String,
    at: String,
    text: String,
    automatic: Option<String>,
    unreadable: Option<String>,
    delivery: Option<String>,
    migration: Option<i64>,
    files: Vec<FileView>,
}

#[derive(Serialize)]
struct FileView {
    id: AttachmentId,
    file_name: String,
    kind: &'static str,
    items: Option<u64>,
    size: u64,
    erased: bool,
}

#[derive(Serialize)]
struct RequestView {
    /// The file's name, or "the email's text".
    source: String,
    attachment: Option<AttachmentId>,
    message: Option<i64>,
    used: bool,
    error: Option<String>,
    headers: Vec<String>,
    rows: Vec<RowView>,
    ready: usize,
    invalid: usize,
}

#[derive(Serialize)]
struct MigrationLink {
    id: i64,
    status: &'static str,
    mailbox: String,
}

#[derive(Serialize)]
struct TicketPage {
    layout: Layout,
    ticket: TicketRow,
    requester: Option<String>,
    thread: Vec<MessageView>,
    files: Vec<FileView>,
    requests: Vec<RequestView>,
    migrations: Vec<MigrationLink>,
    statuses: Vec<Option_>,
    staff: Vec<Option_>,
    assignee: String,
}

fn file_view(a: &TicketAttachment) -> FileView {
    FileView {
        id: a.id,
        file_name: a.file_name.clone(),
        kind: a.kind.as_str(),
        items: a.items,
        size: a.size,
        erased: a.purged_at.is_some(),
    }
}

fn request_view(r: &TicketRequest) -> RequestView {
    let (headers, rows) = match &r.list {
        Ok(list) => preview_rows(list, &r.reports),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let ready = r.ready();
    RequestView {
        source: r
            .attachment
            .as_ref()
            .map_or_else(|| "the email's text".into(), |a| a.file_name.clone()),
        attachment: r.attachment.as_ref().map(|a| a.id),
        message: r.message,
        used: r.attachment.as_ref().is_some_and(|a| a.used_at.is_some()),
        error: r.list.as_ref().err().cloned(),
        invalid: rows.len() - ready,
        ready,
        headers,
        rows,
    }
}

fn not_found(staff: &Staff) -> Response {
    error_page(
        &staff.services,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such ticket.",
    )
}

#[handler]
pub async fn show(staff: Staff, Path(id): Path<TicketId>) -> Response {
    let s = &staff.services;
    let view = match s.ticket_view(id).await {
        Ok(view) => view,
        Err(ServiceError::NotFound(_)) => return not_found(&staff),
        Err(err) => return internal_error(s, &err),
    };
    let requests = match ticket_requests(s, &staff.actor(), &view).await {
        Ok(requests) => requests,
        Err(err) => return internal_error(s, &err),
    };
    let names = staff_names(&staff).await;
    let thread = view
        .thread
        .iter()
        .map(|(m, text)| MessageView {
            id: m.id,
            incoming: m.direction == Direction::In,
            from: m.from.clone().unwrap_or_default(),
            to: m.to.join(", "),
            subject: m.subject.clone(),
            at: super::display_time(m.at),
            text: text.clone(),
            automatic: m.automatic.clone(),
            unreadable: m.unreadable.clone(),
            delivery: m.delivery.clone(),
            migration: m.migration.map(|id| id.0),
            files: view
                .attachments
                .iter()
                .filter(|a| m.direction == Direction::In && a.message == m.id)
                .map(file_view)
                .collect(),
        })
        .collect();
    let mut staff_options = vec![Option_ {
        value: String::new(),
        label: "Nobody".into(),
    }];
    staff_options.extend(names.iter().map(|(id, name)| Option_ {
        value: id.to_string(),
        label: name.clone(),
    }));
    let page = TicketPage {
        layout: staff.layout("/tickets"),
        ticket: row(&view.ticket, &names),
        requester: view.ticket.requester.clone(),
        thread,
        files: view.attachments.iter().map(file_view).collect(),
        requests: requests.iter().map(request_view).collect(),
        migrations: view
            .migrations
            .iter()
            .map(|m| MigrationLink {
                id: m.id.0,
                status: m.status.as_str(),
                mailbox: m.source.username().to_owned(),
            })
            .collect(),
        statuses: TicketStatus::ALL
            .iter()
            .map(|s| Option_ {
                value: s.as_str().into(),
                label: s.label().into(),
            })
            .collect(),
        staff: staff_options,
        assignee: view
            .ticket
            .assignee
            .map(|a| a.to_string())
            .unwrap_or_default(),
    };
    staff.render("console/ticket.html", &page)
}

fn message_of(err: &ServiceError) -> String {
    match err {
        ServiceError::Invalid(errors) => errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

#[handler]
pub async fn reply(
    staff: Staff,
    jar: &CookieJar,
    Path(id): Path<TicketId>,
    multipart: Multipart,
) -> Response {
    let back = format!("/tickets/{id}");
    // Multipart: the answer may carry a file.
    let form = match FileForm::read(multipart, "report").await {
        Ok(form) => form,
        Err(message) => return redirect_with_flash(jar, &back, false, &message),
    };
    if let Some(resp) = staff.reject_bad_csrf(&form.text("csrf")) {
        return resp;
    }
    let status = TicketStatus::parse(&form.text("status"));
    let text = form.text("text");
    match staff
        .services
        .reply_ticket(&staff.actor(), id, &text, status, form.file)
        .await
    {
        Ok(_) => redirect_with_flash(jar, &back, true, "Your answer is on its way."),
        Err(ServiceError::NotFound(_)) => not_found(&staff),
        Err(err @ ServiceError::Invalid(_)) => {
            redirect_with_flash(jar, &back, false, &message_of(&err))
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct UpdateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    assignee: String,
}

#[handler]
pub async fn update(
    staff: Staff,
    jar: &CookieJar,
    Path(id): Path<TicketId>,
    Form(form): Form<UpdateForm>,
) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    let back = format!("/tickets/{id}");
    let change = TicketChange {
        status: TicketStatus::parse(&form.status),
        assignee: Some(form.assignee.parse().ok().map(UserId)),
    };
    match staff
        .services
        .change_ticket(&staff.actor(), id, change)
        .await
    {
        Ok(_) => redirect_with_flash(jar, &back, true, "Ticket updated."),
        Err(ServiceError::NotFound(_)) => not_found(&staff),
        Err(err @ ServiceError::Invalid(_)) => {
            redirect_with_flash(jar, &back, false, &message_of(&err))
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct MakeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    attachment: String,
    #[serde(default)]
    message: String,
}

#[handler]
pub async fn make(
    staff: Staff,
    jar: &CookieJar,
    Path(id): Path<TicketId>,
    Form(form): Form<MakeForm>,
) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    let back = format!("/tickets/{id}");
    let attachment = form.attachment.parse().ok().map(AttachmentId);
    let message = form.message.parse().ok();
    match make_migrations(&staff.services, &staff.actor(), id, attachment, message).await {
        Ok(reports) => {
            let made = reports.iter().filter(|r| !r.migrations.is_empty()).count();
            let left = reports.len() - made;
            let text = format!(
                "Made {made} migration(s); {left} row(s) not started. The requester was emailed the report."
            );
            redirect_with_flash(jar, &back, true, &text)
        }
        Err(ServiceError::NotFound(_)) => not_found(&staff),
        Err(err @ (ServiceError::Invalid(_) | ServiceError::Conflict { .. })) => {
            redirect_with_flash(jar, &back, false, &message_of(&err))
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}

/// A file as it was attached, downloaded (never shown inline: it is the customer's).
#[handler]
pub async fn attached(staff: Staff, Path((id, aid)): Path<(TicketId, AttachmentId)>) -> Response {
    match staff.services.ticket_file(id, aid).await {
        Ok((meta, Some(bytes))) => download(&meta.file_name, bytes),
        Ok((_, None)) => error_page(
            &staff.services,
            StatusCode::GONE,
            "Erased",
            "This file was erased with the credential retention; its name and size stay.",
        ),
        Err(ServiceError::NotFound(_)) => not_found(&staff),
        Err(err) => internal_error(&staff.services, &err),
    }
}

/// An email as it arrived (`.eml`).
#[handler]
pub async fn raw_email(staff: Staff, Path((id, message)): Path<(TicketId, i64)>) -> Response {
    match staff.services.ticket_raw_email(id, message).await {
        Ok(Some(bytes)) => download(&format!("ticket-{id}-email-{message}.eml"), bytes),
        Ok(None) => error_page(
            &staff.services,
            StatusCode::GONE,
            "Erased",
            "This email was erased with the credential retention.",
        ),
        Err(ServiceError::NotFound(_)) => not_found(&staff),
        Err(err) => internal_error(&staff.services, &err),
    }
}

fn download(name: &str, bytes: Vec<u8>) -> Response {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    bytes
        .with_content_type("application/octet-stream")
        .with_header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{safe}\""),
        )
        .with_header("X-Content-Type-Options", "nosniff")
        .into_response()
}
