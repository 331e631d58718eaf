//! The dashboard and the audit log.

use poem::web::Query;
use poem::{Response, handler};
use serde::{Deserialize, Serialize};

use super::{Layout, Staff, display_time, internal_error};
use crate::domain::{AuditEvent, DeliveryStatus, Role};
use crate::store::AuditFilter;

/// Events on one page of the console's audit log.
const AUDIT_PAGE: u64 = 100;
/// Events in the dashboard's recent-activity list.
const DASHBOARD_EVENTS: u64 = 10;

#[derive(Serialize)]
pub struct AuditRow {
    at: String,
    at_display: String,
    actor: String,
    action: String,
    subject_type: Option<String>,
    subject_id: Option<String>,
    detail: Option<String>,
    ip: Option<String>,
}

pub fn audit_rows(events: Vec<AuditEvent>) -> Vec<AuditRow> {
    events
        .into_iter()
        .map(|e| AuditRow {
            at: e.at.to_rfc3339(),
            at_display: display_time(e.at),
            actor: e.actor,
            action: e.action,
            subject_type: e.subject_type,
            subject_id: e.subject_id,
            detail: e
                .detail
                .as_object()
                .filter(|o| !o.is_empty())
                .map(|o| serde_json::Value::Object(o.clone()).to_string()),
            ip: e.ip,
        })
        .collect()
}

#[derive(Serialize)]
struct DashboardPage {
    layout: Layout,
    outbox_pending: u64,
    outbox_failed: u64,
    staff_count: usize,
    smtp_configured: bool,
    events: Vec<AuditRow>,
}

#[handler]
pub async fn dashboard(staff: Staff) -> Response {
    let store = &staff.services.store;
    let result = async {
        let outbox_pending = store.count_outbox(DeliveryStatus::Pending).await?;
        let outbox_failed = store.count_outbox(DeliveryStatus::Failed).await?;
        let users = store.list_users().await?;
        let events = store
            .list_audit(&AuditFilter {
                limit: DASHBOARD_EVENTS,
                ..Default::default()
            })
            .await?;
        Ok::<_, crate::store::StoreError>((outbox_pending, outbox_failed, users, events))
    }
    .await;
    match result {
        Ok((outbox_pending, outbox_failed, users, events)) => staff.render(
            "console/dashboard.html",
            &DashboardPage {
                layout: staff.layout("/"),
                outbox_pending,
                outbox_failed,
                staff_count: users
                    .iter()
                    .filter(|u| !u.disabled && matches!(u.role, Role::Admin | Role::Staff))
                    .count(),
                smtp_configured: staff.services.dispatcher.is_configured(),
                events: audit_rows(events),
            },
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
    action: Option<String>,
}

#[derive(Serialize)]
struct AuditPage {
    layout: Layout,
    events: Vec<AuditRow>,
    action: String,
    next_before: Option<i64>,
}

#[handler]
pub async fn audit(staff: Staff, Query(query): Query<AuditQuery>) -> Response {
    let filter = AuditFilter {
        before_id: query.before,
        action_prefix: query.action.clone(),
        subject: None,
        limit: AUDIT_PAGE,
    };
    match staff.services.store.list_audit(&filter).await {
        Ok(events) => {
            let next_before = (events.len() as u64 == AUDIT_PAGE)
                .then(|| events.last().map(|e| e.id))
                .flatten();
            staff.render(
                "console/audit.html",
                &AuditPage {
                    layout: staff.layout("/audit"),
                    events: audit_rows(events),
                    action: query.action.unwrap_or_default(),
                    next_before,
                },
            )
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}
