//! One migration's page in the console: its passes and folders with live progress
//! (polled), and the buttons that act on it (stop, retry, sync, MX switched, a new
//! window, delete migrated, new passwords, delete). Every rule is the service's.

use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Form, Json, Path};
use poem::{IntoResponse, Response, handler};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::migrations::{earliest_text, given, local_window, percent};
use super::{Layout, Staff, display_time, internal_error, redirect_with_flash};
use crate::domain::{self as domain, Actor, MigrationId, UserId};
use crate::domain::{ErrorCode, Failure, FolderProgress, Migration, MigrationStatus, Pace, Pass};
use crate::service::{MigrationDetail, ServiceError, Services};

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
        0 => "a few seconds".to_owned(),
        1..60 => "under a minute".to_owned(),
        60..3600 => format!("about {} min", secs.div_ceil(60)),
        _ => format!("about {} h {} min", secs / 3600, (secs % 3600) / 60),
    });
    (rate, eta)
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
    /// (folder, the message or item, the reason).
    failures: Vec<(String, String, String)>,
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
                                x["item"].as_str().map_or_else(
                                    || format!("message {}", x["uid"].as_u64().unwrap_or(0)),
                                    str::to_owned,
                                ),
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
    /// The status as the page shows it.
    status_text: &'static str,
    running: bool,
    /// Stopped by a person while a worker still holds it: shown as "stopping…" until
    /// the worker lets go (within two seconds).
    stopping: bool,
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

/// The folders as the running pass (started at `started`) sees them: a row it has not
/// reached yet still holds the previous pass's figures, and counts as not started (the
/// bar once began at the last pass's 100 % and dropped), its count kept as an estimate.
fn this_pass(folders: &[FolderProgress], started: Option<DateTime<Utc>>) -> Vec<FolderProgress> {
    folders
        .iter()
        .map(|f| match started {
            // Its last count stays as the estimate of what is expected.
            Some(at) if f.updated_at.is_none_or(|u| u < at) => FolderProgress {
                status: "pending".into(),
                copied: 0,
                skipped: 0,
                failed: 0,
                bytes: 0,
                ..f.clone()
            },
            _ => f.clone(),
        })
        .collect()
}

fn live(d: &MigrationDetail, now: DateTime<Utc>) -> Live {
    let m = &d.migration;
    let running_pass = d.passes.iter().rev().find(|p| p.status == "running");
    let folders = this_pass(&d.folders, running_pass.map(|p| p.started_at));
    let (rate, eta) = running_pass
        .and_then(|p| Pace::of(&folders, p.started_at, now))
        .map(pace_text)
        .map_or((None, None), |(rate, eta)| (Some(rate), eta));
    let running = m.is_running(now);
    let stopping = running && m.status == MigrationStatus::Cancelled;
    Live {
        status: m.status.as_str(),
        status_text: if stopping {
            "stopping…"
        } else {
            m.status.words()
        },
        running,
        stopping,
        percent: percent(&folders),
        folders,
        passes: d.passes.len(),
        error: m.error_message.clone(),
        // While it copies, the next step is this pass's end, not a time.
        next_run: m
            .next_run_at
            .filter(|_| m.status != MigrationStatus::Processing)
            .map(display_time),
        mx_answer: m.mx_answer.clone(),
        rate: rate.filter(|_| !stopping),
        eta: eta.filter(|_| !stopping),
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
    /// What Retry will do, beside its button and in its answer.
    retry_says: &'static str,
}

/// What Retry does for `m`, in the words its button and its answer use.
fn retry_says(m: &Migration) -> &'static str {
    if m.retry_waits_for_mx() {
        "Checks the passwords, then waits for the MX change again; nothing more is copied until the MX points here."
    } else {
        "Checks the passwords, then goes on from where it stopped; nothing copied is copied twice."
    }
}

/// A password field as typed: empty is none.
fn typed_password(p: String) -> Option<SecretString> {
    (!p.is_empty()).then(|| SecretString::from(p))
}

/// Retry's answer when new passwords were typed with it.
fn retry_with_passwords_says(m: &Migration) -> &'static str {
    if m.retry_waits_for_mx() {
        "New passwords stored (encrypted). Checks them, then waits for the MX change again."
    } else {
        "New passwords stored (encrypted). Checks them, then goes on from where it stopped."
    }
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
        retry_says: retry_says(m),
    }
}

/// The migration as a whole: what its passes copied in all, and what was removed
/// from the destination since (delete migrated items).
#[derive(Serialize, Default)]
struct Summary {
    passes: usize,
    copied: u64,
    skipped: u64,
    failed: u64,
    bytes: u64,
    removed: u64,
}

fn summary(passes: &[Pass], events: &[crate::domain::AuditEvent]) -> Summary {
    Summary {
        passes: passes.len(),
        copied: passes.iter().map(|p| p.copied).sum(),
        skipped: passes.iter().map(|p| p.skipped).sum(),
        failed: passes.iter().map(|p| p.failed).sum(),
        bytes: passes.iter().map(|p| p.bytes).sum(),
        removed: events
            .iter()
            .filter(|e| e.action == "migration.migrated_deleted")
            .filter_map(|e| e.detail["removed"].as_u64())
            .sum(),
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
    /// Why it stopped and what to do next, in plain words (the details are `live.error`).
    failure: Option<Failure>,
    live: Live,
    passes: Vec<PassRow>,
    summary: Summary,
    /// The desk's: the owner (an active staff member's id), the staff to choose from,
    /// the customer's reference and the internal notes (newest first).
    owner: Option<UserId>,
    staff: Vec<(UserId, String)>,
    customer_ref: Option<String>,
    /// The ticket it was made from.
    ticket: Option<i64>,
    notes: Vec<super::pages::AuditRow>,
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
    let staff_list = (staff
        .services
        .store()
        .list_users()
        .await
        .unwrap_or_default())
    .into_iter()
    .filter(|u| !u.disabled)
    .map(|u| (u.id, u.name))
    .collect();
    staff.render(
        "console/migration.html",
        &DetailPage {
            layout: staff.layout("/migrations"),
            id,
            source: m.source.to_string(),
            destination: m.dest.to_string(),
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
            failure: m.error_message.is_some().then(|| Failure::of(m.error_code)),
            live: live(&d, staff.services.now()),
            passes: pass_rows(&d.passes),
            summary: summary(&d.passes, &events),
            owner: m.owner,
            staff: staff_list,
            customer_ref: m.customer_ref.clone(),
            ticket: m.ticket.map(|t| t.0),
            notes: super::pages::audit_rows(
                events
                    .iter()
                    .filter(|e| e.action == "migration.note_added")
                    .cloned()
                    .collect(),
            ),
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
    /// Assign: a staff member's id, or empty for nobody; the customer's reference.
    owner: String,
    customer_ref: String,
    note: String,
    /// "Email the customer about it": ticked by default for Stop, not for Retry/Sync.
    notify_customer: Option<String>,
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
    if action == "delete" {
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
    let Some(done) = perform(s, &actor, id, &action, form).await else {
        return super::error_page(
            s,
            StatusCode::NOT_FOUND,
            "No such action",
            "Go back to the migration.",
        );
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

/// Does what one of the page's buttons asks and says so in the flash; `None` for a
/// name the page has no button for.
async fn perform(
    s: &Services,
    actor: &Actor,
    id: MigrationId,
    button: &str,
    form: ActionForm,
) -> Option<Result<&'static str, ServiceError>> {
    Some(match button {
        "cancel" => s
            .cancel_migration(
                actor,
                id,
                Some(form.reason).filter(|r| !r.is_empty()),
                form.notify_customer.is_some(),
            )
            .await
            .map(|_| "Stopped. A running pass stops within two seconds; nothing copied is lost."),
        "retry" => {
            let typed = !(form.source_password.is_empty() && form.destination_password.is_empty());
            s.store_and_retry(
                actor,
                id,
                typed_password(form.source_password),
                typed_password(form.destination_password),
                form.notify_customer.is_some(),
            )
            .await
            .map(|m| {
                if typed {
                    retry_with_passwords_says(&m)
                } else {
                    retry_says(&m)
                }
            })
        }
        "sync" => s
            .sync_migration(actor, id, form.notify_customer.is_some())
            .await
            .map(|_| "A catch-up copy starts now."),
        "mx-switched" => s
            .migration_mx_switched(actor, id)
            .await
            .map(|_| "Noted: the final copy follows after the grace period."),
        "reschedule" => {
            let start = local_window(&form.window_date, &form.window_time)
                .filter(|_| form.start_now.is_none());
            s.reschedule_migration(
                actor,
                id,
                form.start_now.is_some(),
                start.map(|w| domain::local_time("window.start", &w)),
                given(&form.time_zone).map(|tz| domain::time_zone("window.time_zone", tz)),
            )
            .await
            .map(|_| "Moved to the new window; the requester and staff get it by email.")
        }
        "assign" => s
            .assign_migration(
                actor,
                id,
                form.owner.trim().parse().ok().map(UserId),
                Some(form.customer_ref.as_str()),
            )
            .await
            .map(|_| "Saved."),
        "note" => s
            .add_migration_note(actor, id, &form.note)
            .await
            .map(|()| "Note added."),
        "delete-migrated" => s
            .delete_migrated(actor, id, form.from_pass.trim().parse().ok())
            .await
            .map(|_| "Removing this migration's copies from the destination."),
        "credentials" => s
            .update_credentials(
                actor,
                id,
                typed_password(form.source_password),
                typed_password(form.destination_password),
            )
            .await
            .map(|_| "New passwords stored (encrypted). Retry uses them."),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_pass_starts_its_bar_at_zero_not_at_the_last_pass_figure() {
        let started = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let row = |updated: i64| FolderProgress {
            status: "done".into(),
            expected: 10,
            copied: 10,
            updated_at: Some(started + chrono::Duration::seconds(updated)),
            ..Default::default()
        };
        let folders = [row(-60), row(5)];
        let now = this_pass(&folders, Some(started));
        assert_eq!(
            (now[0].status.as_str(), now[0].copied),
            ("pending", 0),
            "last pass's row"
        );
        assert_eq!(now[1].copied, 10, "this pass's row");
        assert_eq!(percent(&now), Some(50));
        assert_eq!(this_pass(&folders, None)[0].copied, 10, "no pass running");
    }

    #[test]
    fn a_stop_shows_as_stopping_until_the_worker_lets_go() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let mut m = Migration::example(now);
        m.status = MigrationStatus::Cancelled;
        m.lease_until = Some(now + chrono::Duration::seconds(5));
        let detail = |m: &Migration| MigrationDetail {
            migration: m.clone(),
            passes: Vec::new(),
            folders: Vec::new(),
        };
        let held = live(&detail(&m), now);
        assert!(held.stopping && held.rate.is_none());
        m.lease_until = None;
        assert!(!live(&detail(&m), now).stopping, "the worker confirmed");
        m.status = MigrationStatus::Processing;
        m.lease_until = Some(now + chrono::Duration::seconds(5));
        m.next_run_at = Some(now - chrono::Duration::seconds(60));
        let copying = live(&detail(&m), now);
        assert!(!copying.stopping);
        assert_eq!(copying.next_run, None, "no past time while copying");
    }

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
