//! The customer's page of a migration, reached from the link in their emails
//! (`/track/{token}`, the token unguessable and stored only as a digest): where it
//! stands in plain words, what has been copied, the MX records to set and a button to
//! say they are set, and how to reach support. Read-only otherwise; no staff detail
//! (server errors, audit, other migrations) ever shows here.

use poem::http::StatusCode;
use poem::web::{Data, Html, Path, Query, Redirect};
use poem::{IntoResponse, Response, handler};
use serde::Serialize;

use super::{display_time, error_page, internal_error};
use crate::domain::{ErrorCode, Migration, MigrationStatus, PassKind};
use crate::service::{MigrationDetail, ServiceError, Services};

#[derive(Serialize)]
struct PassLine {
    number: u32,
    label: &'static str,
    status: &'static str,
    finished: Option<String>,
    copied: u64,
    skipped: u64,
    failed: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct TrackPage {
    token: String,
    id: String,
    provider_name: String,
    support_contact: String,
    source: String,
    destination: String,
    /// Where it stands, in one sentence, and what (if anything) the customer does next.
    headline: String,
    status: &'static str,
    window: Option<String>,
    next_run: Option<String>,
    percent: Option<u64>,
    /// The MX records to set, while the migration waits for them.
    mx_needed: bool,
    mx_domain: String,
    /// (priority, host) of each record to set.
    mx_records: Vec<(String, String)>,
    passes: Vec<PassLine>,
    copied: u64,
    skipped: u64,
    failed: u64,
    bytes: u64,
    flash: Option<&'static str>,
}

/// Where `m` stands, as its customer reads it.
fn headline(m: &Migration, percent: Option<u64>) -> String {
    use MigrationStatus as S;
    match m.status {
        S::Pending | S::Validating => {
            "We are checking that both accounts work. Nothing is copied yet.".into()
        }
        S::Scheduled => "Both accounts work. The copy starts at the time below.".into(),
        S::Processing => match percent {
            Some(p) => {
                format!("Copying your mail now: {p} % done. You can keep using your mailbox.")
            }
            None => "Copying your mail now. You can keep using your mailbox.".into(),
        },
        S::WaitingForMx if m.mx_switched_at.is_some() => {
            "Your MX records point to us. The final copy starts at the time below.".into()
        }
        S::WaitingForMx => format!(
            "Your mail so far is copied. Now change the MX records of {} as shown below.",
            m.mx_domain
        ),
        S::Completed => format!("Complete: your mail is at {}.", m.dest.username()),
        S::Failed if m.error_code == Some(ErrorCode::Auth) => {
            "A password does not work. We have emailed you what to do; nothing copied is lost."
                .into()
        }
        S::Failed => {
            "It has stopped on a problem we are looking at. Nothing copied is lost.".into()
        }
        S::Paused => {
            "Paused. Nothing copied is lost; it goes on from where it stopped when resumed.".into()
        }
        S::Cancelled => "Our staff have stopped it. Nothing copied is lost.".into(),
    }
}

/// Plain words for a status badge.
fn status_words(status: MigrationStatus) -> &'static str {
    use MigrationStatus as S;
    match status {
        S::Pending | S::Validating => "checking",
        S::Scheduled => "scheduled",
        S::Processing => "copying",
        S::WaitingForMx => "waiting for your MX change",
        S::Completed => "complete",
        S::Failed => "stopped on a problem",
        S::Paused => "paused",
        S::Cancelled => "stopped",
    }
}

fn page(
    services: &Services,
    token: String,
    d: &MigrationDetail,
    flash: Option<&'static str>,
) -> TrackPage {
    let m = &d.migration;
    let settings = services.settings();
    let percent = super::migrations::percent(&d.folders);
    let passes: Vec<PassLine> = d
        .passes
        .iter()
        .map(|p| PassLine {
            number: p.number,
            label: PassKind::parse(&p.kind).map_or("copy", |k| k.label()),
            status: match p.status.as_str() {
                "succeeded" => "done",
                "running" => "copying",
                "failed" => "stopped on a problem",
                _ => "stopped",
            },
            finished: p.finished_at.map(display_time),
            copied: p.copied,
            skipped: p.skipped,
            failed: p.failed,
            bytes: p.bytes,
        })
        .collect();
    TrackPage {
        id: m.id.to_string(),
        provider_name: settings.provider.name.clone(),
        support_contact: settings.provider.support_contact.clone(),
        source: format!("{} on {}", m.source.username(), m.source.host()),
        destination: format!("{} on {}", m.dest.username(), m.dest.host()),
        headline: headline(m, percent),
        status: status_words(m.status),
        window: m.window_start.map(display_time),
        // While it copies the next step is its end; a window is already shown above.
        next_run: m
            .next_run_at
            .filter(|at| m.status != MigrationStatus::Processing && Some(*at) != m.window_start)
            .map(display_time),
        percent,
        mx_needed: m.status == MigrationStatus::WaitingForMx && m.mx_switched_at.is_none(),
        mx_domain: m.mx_domain.clone(),
        mx_records: settings
            .provider
            .mx_hosts
            .iter()
            .map(|mx| match mx.split_once(' ') {
                Some((priority, host)) => (priority.to_owned(), host.trim().to_owned()),
                None => ("10".to_owned(), mx.clone()),
            })
            .collect(),
        copied: passes.iter().map(|p| p.copied).sum(),
        skipped: passes.iter().map(|p| p.skipped).sum(),
        failed: passes.iter().map(|p| p.failed).sum(),
        bytes: passes.iter().map(|p| p.bytes).sum(),
        passes,
        token,
        flash,
    }
}

fn not_found(services: &Services) -> Response {
    error_page(
        services,
        StatusCode::NOT_FOUND,
        "No such migration",
        "This link is not (or no longer) valid. Use the link in your latest email, or ask support.",
    )
}

fn render(services: &Services, page: &TrackPage) -> Response {
    match services.renderer().page("customer/track.html", page) {
        // The token is in the address; every page's `Referrer-Policy: same-origin`
        // keeps it from other sites.
        Ok(html) => Html(html).into_response(),
        Err(err) => internal_error(services, &format!("{err:#}")),
    }
}

async fn show_with(services: &Services, token: String, flash: Option<&'static str>) -> Response {
    match services.customer_view(&token).await {
        Ok(d) => render(services, &page(services, token, &d, flash)),
        Err(ServiceError::NotFound(_)) => not_found(services),
        Err(err) => internal_error(services, &err),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct TrackQuery {
    /// Set after "I have changed my MX records".
    noted: Option<String>,
}

#[handler]
pub async fn show(
    services: Data<&Services>,
    Path(token): Path<String>,
    Query(query): Query<TrackQuery>,
) -> Response {
    let flash = query.noted.map(|_| {
        "Thank you: noted. What still arrives at the old server is copied after the grace period; then the migration is complete."
    });
    show_with(&services, token, flash).await
}

/// "I have changed my MX records": the final copy follows after the grace period.
#[handler]
pub async fn mx_switched(services: Data<&Services>, Path(token): Path<String>) -> Response {
    match services.customer_mx_switched(&token).await {
        Ok(_) => Redirect::see_other(format!("/track/{token}?noted=1")).into_response(),
        Err(ServiceError::NotFound(_)) => not_found(&services),
        // Not waiting any more (already noted, or it moved on): the page says where it is.
        Err(ServiceError::Conflict { .. }) => show_with(&services, token, None).await,
        Err(err) => internal_error(&services, &err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_sentence_without_raw_words() {
        for status in MigrationStatus::ALL {
            let words = status_words(status);
            assert!(!words.contains('_'), "{words}");
        }
    }
}
