//! The outbox: every notification, its content and its delivery.

use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Form, Path, Query};
use poem::{Response, handler};
use serde::{Deserialize, Serialize};

use super::{CsrfForm, Layout, Staff, display_time, internal_error, redirect_with_flash};
use crate::domain::{DeliveryStatus, OutboxId, OutboxMessage};
use crate::intake::http::error_page;
use crate::service::ServiceError;
use crate::store::OutboxFilter;

/// Notifications listed on one page.
const OUTBOX_PAGE: u64 = 200;

#[derive(Serialize)]
struct Row {
    id: OutboxId,
    created: String,
    to: String,
    subject: String,
    status: &'static str,
    badge: &'static str,
    attempts: i32,
    template: String,
    last_error: Option<String>,
    sent: Option<String>,
    body_text: String,
    migration: Option<crate::domain::MigrationId>,
}

fn row(m: OutboxMessage) -> Row {
    Row {
        id: m.id,
        created: display_time(m.created_at),
        to: m.to.join(", "),
        subject: m.subject,
        status: m.status.as_str(),
        badge: match m.status {
            DeliveryStatus::Sent => "ok",
            DeliveryStatus::Pending => "warn",
            DeliveryStatus::Failed => "bad",
        },
        attempts: m.attempts,
        template: m.template,
        last_error: m.last_error,
        sent: m.sent_at.map(display_time),
        migration: m.migration,
        body_text: m.body_text,
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    /// A migration's id: only its emails.
    migration: Option<i64>,
    /// Part of a recipient's address.
    to: Option<String>,
}

#[derive(Serialize)]
struct ListPage {
    layout: Layout,
    messages: Vec<Row>,
    status: String,
    migration: Option<i64>,
    to: String,
    smtp_configured: bool,
}

#[handler]
pub async fn list(staff: Staff, Query(query): Query<ListQuery>) -> Response {
    let status = query.status.as_deref().and_then(DeliveryStatus::parse);
    match staff
        .services
        .store()
        .list_outbox(&OutboxFilter {
            status,
            migration: query.migration.map(crate::domain::MigrationId),
            recipient: query.to.clone(),
            limit: OUTBOX_PAGE,
            ..Default::default()
        })
        .await
    {
        Ok(messages) => staff.render(
            "console/outbox.html",
            &ListPage {
                layout: staff.layout("/outbox"),
                messages: messages.into_iter().map(row).collect(),
                status: status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                migration: query.migration,
                to: query.to.clone().unwrap_or_default(),
                smtp_configured: staff.services.dispatcher().is_configured(),
            },
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[derive(Serialize)]
struct ItemPage {
    layout: Layout,
    m: Row,
}

#[handler]
pub async fn show(staff: Staff, Path(id): Path<OutboxId>) -> Response {
    match staff.services.store().get_outbox(id).await {
        Ok(Some(message)) => staff.render(
            "console/outbox_item.html",
            &ItemPage {
                layout: staff.layout("/outbox"),
                m: row(message),
            },
        ),
        Ok(None) => error_page(
            &staff.services,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such notification.",
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[handler]
pub async fn resend(
    staff: Staff,
    jar: &CookieJar,
    Path(id): Path<OutboxId>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    match staff
        .services
        .resend_notification(&staff.actor(), id, staff.ip.clone())
        .await
    {
        Ok(()) => redirect_with_flash(
            jar,
            &format!("/outbox/{id}"),
            true,
            "Queued for delivery now.",
        ),
        Err(ServiceError::NotFound(_)) => error_page(
            &staff.services,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such notification.",
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}
