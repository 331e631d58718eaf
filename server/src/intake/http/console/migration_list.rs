//! The list of migrations as a desk works it: filters (status, owner, address or
//! reference, requested between two days), the requester, the customer's reference and
//! the owner on each row, a CSV export of what the filters select, and actions on the
//! selected rows (synchronise, stop, retry, move window), each done through the same
//! service call as its button on the migration's page.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Form, Query};
use poem::{IntoResponse, Response, handler};
use serde::{Deserialize, Serialize};

use super::migrations::{given, local_window, percent};
use super::{Layout, Staff, display_time, internal_error, redirect_with_flash};
use crate::domain::{self as domain, Migration, MigrationId, MigrationStatus, User, UserId};
use crate::intake::http::error_page;
use crate::service::ServiceError;
use crate::store::MigrationFilter;

const PER_PAGE: u64 = 50;
/// The most rows a CSV export holds.
const CSV_MAX: u64 = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    status: String,
    q: String,
    /// "" anyone, "none" nobody, "me", or a staff member's id.
    owner: String,
    /// Requested on or after / on or before, `YYYY-MM-DD` (UTC days).
    from: String,
    to: String,
    page: u64,
}

impl ListQuery {
    fn filter(&self, staff: &Staff, page: u64, per_page: u64) -> MigrationFilter {
        let day = |text: &str| {
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        };
        MigrationFilter {
            status: MigrationStatus::parse(&self.status),
            search: Some(self.q.clone()).filter(|s| !s.trim().is_empty()),
            owner: match self.owner.as_str() {
                "" => None,
                "none" => Some(None),
                "me" => Some(Some(staff.session.user.id)),
                id => id.parse().ok().map(|id| Some(UserId(id))),
            },
            created_from: day(&self.from),
            created_to: day(&self.to).map(|t| t + chrono::Duration::days(1)),
            page,
            per_page,
        }
    }

    /// The query string of these filters (for the pager and the export).
    fn query_string(&self) -> String {
        serde_urlencoded::to_string([
            ("status", &self.status),
            ("q", &self.q),
            ("owner", &self.owner),
            ("from", &self.from),
            ("to", &self.to),
        ])
        .unwrap_or_default()
    }
}

#[derive(Serialize)]
struct Row {
    id: MigrationId,
    status: &'static str,
    source: String,
    destination: String,
    requester: String,
    customer_ref: Option<String>,
    owner: Option<String>,
    created: String,
    next_run: Option<String>,
    percent: Option<u64>,
}

#[derive(Serialize)]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    statuses: Vec<(&'static str, &'static str)>,
    staff: Vec<(UserId, String)>,
    query: ListQueryView,
    filters: String,
    page: u64,
    pages: u64,
    total: u64,
    /// The default time of a moved window.
    default_time: String,
}

#[derive(Serialize)]
struct ListQueryView {
    status: String,
    q: String,
    owner: String,
    from: String,
    to: String,
}

fn owner_name(users: &[User], owner: Option<UserId>) -> Option<String> {
    let owner = owner?;
    users
        .iter()
        .find(|u| u.id == owner)
        .map(|u| u.name.clone())
        .or_else(|| Some(format!("staff #{owner}")))
}

async fn select(
    staff: &Staff,
    q: &ListQuery,
    page: u64,
    per_page: u64,
) -> Result<(Vec<Migration>, u64), Response> {
    match staff
        .services
        .list_migrations(&q.filter(staff, page, per_page))
        .await
    {
        Ok(found) => Ok(found),
        Err(ServiceError::Invalid(errors)) => Err(error_page(
            &staff.services,
            StatusCode::UNPROCESSABLE_ENTITY,
            "No such page",
            &errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )),
        Err(err) => Err(internal_error(&staff.services, &err)),
    }
}

#[handler]
pub async fn list(staff: Staff, Query(q): Query<ListQuery>) -> Response {
    let (found, total) = match select(&staff, &q, q.page, PER_PAGE).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let users = staff
        .services
        .store()
        .list_users()
        .await
        .unwrap_or_default();
    let ids: Vec<MigrationId> = found.iter().map(|m| m.id).collect();
    let mut folders = match staff.services.store().folders_of(&ids).await {
        Ok(found) => found,
        Err(err) => return internal_error(&staff.services, &err),
    };
    let rows = found
        .into_iter()
        .map(|m| Row {
            id: m.id,
            status: m.status.as_str(),
            source: format!("{} on {}", m.source.username(), m.source.host()),
            destination: format!("{} on {}", m.dest.username(), m.dest.host()),
            requester: m.requester_email.clone(),
            customer_ref: m.customer_ref.clone(),
            owner: owner_name(&users, m.owner),
            created: display_time(m.created_at),
            next_run: m.next_run_at.map(display_time),
            percent: percent(&folders.remove(&m.id).unwrap_or_default()),
        })
        .collect();
    staff.render(
        "console/migrations.html",
        &ListPage {
            layout: staff.layout("/migrations"),
            rows,
            statuses: MigrationStatus::ALL
                .iter()
                .map(|s| (s.as_str(), s.words()))
                .collect(),
            staff: users.iter().map(|u| (u.id, u.name.clone())).collect(),
            filters: q.query_string(),
            query: ListQueryView {
                status: q.status,
                q: q.q,
                owner: q.owner,
                from: q.from,
                to: q.to,
            },
            page: q.page,
            pages: total.div_ceil(PER_PAGE),
            total,
            default_time: staff.services.settings().schedule.off_hours_start.clone(),
        },
    )
}

/// What the filters select, as CSV (up to 10,000 rows), for a spreadsheet.
#[handler]
pub async fn export(staff: Staff, Query(q): Query<ListQuery>) -> Response {
    // Page by page (a page holds 100 at most), up to CSV_MAX rows.
    let mut found = Vec::new();
    for page in 0.. {
        let (batch, total) = match select(&staff, &q, page, 100).await {
            Ok(got) => got,
            Err(resp) => return resp,
        };
        let last = batch.is_empty() || found.len() + batch.len() >= total.min(CSV_MAX) as usize;
        found.extend(batch);
        if last {
            break;
        }
    }
    let users = staff
        .services
        .store()
        .list_users()
        .await
        .unwrap_or_default();
    let mut out = csv::Writer::from_writer(Vec::new());
    let rfc = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let header = [
        "id",
        "status",
        "source",
        "destination",
        "requester",
        "customer_ref",
        "owner",
        "created_at",
        "next_run_at",
        "finished_at",
        "error_code",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for m in &found {
        rows.push(vec![
            m.id.to_string(),
            m.status.as_str().to_owned(),
            format!("{}@{}", m.source.username(), m.source.host()),
            format!("{}@{}", m.dest.username(), m.dest.host()),
            m.requester_email.clone(),
            m.customer_ref.clone().unwrap_or_default(),
            owner_name(&users, m.owner).unwrap_or_default(),
            rfc(Some(m.created_at)),
            rfc(m.next_run_at),
            rfc(m.finished_at),
            m.error_code
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
        ]);
    }
    for row in rows {
        if let Err(err) = out.write_record(row) {
            return internal_error(&staff.services, &err);
        }
    }
    match out.into_inner() {
        Ok(bytes) => bytes
            .with_content_type("text/csv; charset=utf-8")
            .with_header(
                "Content-Disposition",
                "attachment; filename=\"migrations.csv\"",
            )
            .into_response(),
        Err(err) => internal_error(&staff.services, &err),
    }
}

/// The actions on the selected rows: the form's `id.N` checkboxes, `action` and, for
/// a new window, `window.date` and `window.time` (in each migration's own time zone).
#[handler]
pub async fn bulk(
    staff: Staff,
    jar: &CookieJar,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if let Some(resp) = staff.reject_bad_csrf(field("csrf")) {
        return resp;
    }
    let back = format!("/migrations?{}", field("filters"));
    let mut ids: Vec<MigrationId> = form
        .keys()
        .filter_map(|k| k.strip_prefix("id."))
        .filter_map(|id| id.parse().ok().map(MigrationId))
        .collect();
    ids.sort_by_key(|id| id.0);
    if ids.is_empty() {
        return redirect_with_flash(jar, &back, false, "Select one or more migrations first.");
    }
    let action = field("action");
    let s = &staff.services;
    let actor = staff.actor();
    let mut done = Vec::new();
    let mut refused = Vec::new();
    for id in ids {
        let result = match action {
            "sync" => s.sync_migration(&actor, id, false).await.map(|_| ()),
            "cancel" => s
                .cancel_migration(&actor, id, given(field("reason")).map(str::to_owned), true)
                .await
                .map(|_| ()),
            "retry" => s.retry_migration(&actor, id, false).await.map(|_| ()),
            "reschedule" => {
                let start = local_window(field("window.date"), field("window.time"));
                s.reschedule_migration(
                    &actor,
                    id,
                    false,
                    Some(domain::local_time(
                        "window.start",
                        start.as_deref().unwrap_or(""),
                    )),
                    None,
                )
                .await
                .map(|_| ())
            }
            _ => {
                return redirect_with_flash(jar, &back, false, "Choose an action.");
            }
        };
        match result {
            Ok(()) => done.push(format!("#{id}")),
            Err(ServiceError::Invalid(fields)) => refused.push(format!(
                "#{id}: {}",
                fields
                    .iter()
                    .map(|f| f.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            Err(err @ (ServiceError::Conflict { .. } | ServiceError::NotFound(_))) => {
                refused.push(format!("#{id}: {err}"));
            }
            Err(err) => return internal_error(s, &err),
        }
    }
    let mut message = format!("Done for {}: {}.", done.len(), done.join(", "));
    if done.is_empty() {
        message = "Done for none.".into();
    }
    if !refused.is_empty() {
        message.push_str(&format!(" Not done: {}", refused.join(" · ")));
    }
    redirect_with_flash(jar, &back, refused.is_empty(), &message)
}
