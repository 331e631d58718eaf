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
    /// A note's text, for the notes of a migration.
    note: Option<String>,
    ip: Option<String>,
}

/// An audit event's details as people read them: "from: waiting for mx · reason:
/// customer asked", not JSON.
fn detail_text(detail: &serde_json::Map<String, serde_json::Value>) -> String {
    fn value(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Null => "none".into(),
            serde_json::Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
                Ok(at) => format!("{} UTC", display_time(at.to_utc())),
                Err(_) => s.replace('_', " "),
            },
            serde_json::Value::Array(items) => {
                items.iter().map(value).collect::<Vec<_>>().join(", ")
            }
            serde_json::Value::Object(o) => format!("({})", detail_text(o)),
            other => other.to_string(),
        }
    }
    detail
        .iter()
        .map(|(k, v)| format!("{}: {}", k.replace('_', " "), value(v)))
        .collect::<Vec<_>>()
        .join(" · ")
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
                .map(detail_text),
            note: e.detail["note"].as_str().map(str::to_owned),
            ip: e.ip,
        })
        .collect()
}

/// A migration on the dashboard.
#[derive(Serialize)]
struct Brief {
    id: crate::domain::MigrationId,
    status: &'static str,
    who: String,
    why: Option<String>,
    at: Option<String>,
}

fn brief(m: &crate::domain::Migration) -> Brief {
    Brief {
        id: m.id,
        status: m.status.as_str(),
        who: format!("{} → {}", m.source.username(), m.dest.username()),
        why: match m.status {
            crate::domain::MigrationStatus::Failed => {
                let failure = crate::domain::Failure::of(m.error_code);
                Some(format!(
                    "{} Next: {} ({})",
                    failure.what,
                    failure.next,
                    m.error_message.as_deref().unwrap_or("no details")
                ))
            }
            crate::domain::MigrationStatus::WaitingForMx => Some(format!(
                "Waiting for the MX of {} (now {}). Next: the customer changes it, or press MX switched on the migration's page.",
                m.mx_domain,
                m.mx_answer.as_deref().unwrap_or("not checked yet")
            )),
            _ => m.error_message.clone(),
        },
        at: m.next_run_at.map(display_time),
    }
}

#[derive(Serialize)]
struct DashboardPage {
    layout: Layout,
    attention: Vec<Brief>,
    running: Vec<Brief>,
    today: Vec<Brief>,
    outbox_pending: u64,
    outbox_failed: u64,
    staff_count: usize,
    smtp_configured: bool,
    events: Vec<AuditRow>,
    /// New tickets, and open ones whose requester answered.
    tickets: Vec<TicketBrief>,
    support: crate::service::SupportStatus,
}

#[derive(Serialize)]
struct TicketBrief {
    id: i64,
    subject: String,
    requester: String,
    why: &'static str,
    at: String,
}

fn ticket_brief(t: &crate::domain::Ticket) -> TicketBrief {
    TicketBrief {
        id: t.id.0,
        subject: t.subject.clone(),
        requester: t.requester.clone().unwrap_or_else(|| "no sender".into()),
        why: if t.status == crate::domain::TicketStatus::New {
            "new"
        } else {
            "the customer answered"
        },
        at: super::display_time(t.updated_at),
    }
}

#[handler]
pub async fn dashboard(staff: Staff) -> Response {
    let store = &staff.services.store();
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
    // What needs a person first: failures (a refused password among them), then
    // domains whose MX has not moved.
    let by_status = |status| crate::store::MigrationFilter {
        status: Some(status),
        per_page: 20,
        ..Default::default()
    };
    use crate::domain::MigrationStatus as S;
    let mut attention = Vec::new();
    for status in [S::Failed, S::WaitingForMx] {
        if let Ok((list, _)) = store.list_migrations(&by_status(status)).await {
            attention.extend(list);
        }
    }
    let running = store
        .list_migrations(&by_status(S::Processing))
        .await
        .map(|(l, _)| l)
        .unwrap_or_default();
    let now = staff.services.now();
    let end_of_day = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .map_or(now, |d| d.and_utc());
    let today = store
        .upcoming_work(now, end_of_day)
        .await
        .unwrap_or_default();
    match result {
        Ok((outbox_pending, outbox_failed, users, events)) => staff.render(
            "console/dashboard.html",
            &DashboardPage {
                attention: attention.iter().map(brief).collect(),
                running: running.iter().map(brief).collect(),
                today: today.iter().map(brief).collect(),
                layout: staff.layout("/"),
                outbox_pending,
                outbox_failed,
                staff_count: users
                    .iter()
                    .filter(|u| !u.disabled && matches!(u.role, Role::Admin | Role::Staff))
                    .count(),
                smtp_configured: staff.services.dispatcher().is_configured(),
                events: audit_rows(events),
                tickets: store
                    .tickets_needing_attention(20)
                    .await
                    .unwrap_or_default()
                    .iter()
                    .map(ticket_brief)
                    .collect(),
                support: staff.services.support_status(),
            },
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
    action: Option<String>,
    /// `TYPE:ID`, e.g. `migration:12`: what the events are about.
    subject: Option<String>,
}

#[derive(Serialize)]
struct AuditPage {
    layout: Layout,
    events: Vec<AuditRow>,
    action: String,
    subject: String,
    next_before: Option<i64>,
}

#[handler]
pub async fn audit(staff: Staff, Query(query): Query<AuditQuery>) -> Response {
    let filter = AuditFilter {
        before_id: query.before,
        action_prefix: query.action.clone(),
        subject: query
            .subject
            .as_deref()
            .and_then(|s| s.split_once(':'))
            .map(|(kind, id)| (kind.to_owned(), id.to_owned())),
        limit: AUDIT_PAGE,
    };
    match staff.services.store().list_audit(&filter).await {
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
                    subject: query.subject.unwrap_or_default(),
                    next_before,
                },
            )
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_details_read_as_words() {
        let detail = serde_json::json!({
            "from": "waiting_for_mx", "reason": null, "sides": ["source", "destination"], "pass": 2,
            "run_at": "2026-11-30T18:49:37.958628790Z",
        });
        assert_eq!(
            detail_text(detail.as_object().unwrap()),
            "from: waiting for mx · pass: 2 · reason: none · run at: 2026-11-30 18:49 UTC · sides: source, destination"
        );
    }
}
