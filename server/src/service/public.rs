//! The customer's own request form (`/request`), public: a request of one mailbox or
//! many becomes a ticket (so staff see it where they work) and a project that waits,
//! paused, for staff's approval (or starts at once with `intake.auto_approve`). Its
//! limits against abuse: requests and Authenticate attempts per address and hour
//! (counted in the sign-in failures' table, which every process shares), destination
//! mailboxes only in the provider's domains (`intake.destination_domains`; none: the
//! form is closed), the terms accepted, and private targets refused as everywhere.

use chrono::{DateTime, Utc};

use super::lists::{CheckedList, RowReport};
use super::projects::ProjectInput;
use super::{ConnectionProblem, FolderSummary, ServiceError, ServiceResult, Services};
use crate::domain::{
    Actor, ErrorCode, FieldError, ListedRequest, NewAuditEvent, ServerInput, Ticket,
};
use crate::store::NewTicketMessage;

/// A request as the form sends it.
#[derive(Debug)]
pub struct PublicRequest {
    pub project: ProjectInput,
    pub rows: Vec<ListedRequest>,
    pub terms_accepted: bool,
    pub ip: Option<String>,
}

/// What a request came to: made, or no row ready (every row's report; nothing made).
#[derive(Debug)]
pub enum PublicAnswer {
    Made(Box<PublicOutcome>),
    NotReady(Vec<RowReport>),
}

/// What a request made: the ticket, the project, its password when Ferry made it.
#[derive(Debug)]
pub struct PublicOutcome {
    pub ticket: Ticket,
    pub made: super::ProjectMade,
}

const HOUR: chrono::Duration = chrono::Duration::hours(1);

impl Services {
    /// Whether `/request` takes requests (the provider listed its domains).
    pub fn public_form_open(&self) -> bool {
        !self.settings().intake.destination_domains.is_empty()
    }

    /// One more use of `what` by `ip` this hour, or the answer that it is one too many.
    async fn within_hourly(&self, what: &str, ip: Option<&str>, limit: u32) -> ServiceResult<()> {
        let key = vec![format!("{what}:ip:{}", ip.unwrap_or("unknown"))];
        let now = self.now();
        let used = self
            .store
            .login_failures(&key, now - HOUR)
            .await?
            .first()
            .map_or(0, |(_, n)| *n);
        if used >= limit {
            return Err(ServiceError::Unavailable {
                code: ErrorCode::RateLimited,
                message: "Too many attempts from your address this hour; try again later, or write to support.".into(),
            });
        }
        self.store
            .record_login_failure(&key, now, now - HOUR)
            .await?;
        Ok(())
    }

    /// The form's Authenticate button: logs in to one side, within the hourly limit.
    pub async fn public_check(
        &self,
        input: &ServerInput,
        ip: Option<&str>,
    ) -> ServiceResult<Result<Vec<FolderSummary>, ConnectionProblem>> {
        if !self.public_form_open() {
            return Err(ServiceError::Forbidden(
                "The request form is closed; write to support.".into(),
            ));
        }
        let limit = self.settings().intake.checks_per_hour;
        self.within_hourly("request-check", ip, limit).await?;
        self.test_connection(&Actor::Customer, input).await
    }

    /// A row whose destination is not one of the provider's domains gets that as its
    /// problem, and is not made.
    fn outside_domains(&self, rows: &[ListedRequest], list: &mut CheckedList) {
        let domains = &self.settings().intake.destination_domains;
        let domain_of = |address: &str| {
            address
                .trim()
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
        };
        for (i, row) in rows.iter().enumerate() {
            // A row without a destination mailbox keeps the source's address.
            let domain = domain_of(&row.request.destination.username)
                .or_else(|| domain_of(&row.request.source.username));
            if !domain.as_ref().is_some_and(|d| domains.contains(d)) {
                list.refuse(
                    i,
                    FieldError::new(
                        "destination.username",
                        format!(
                            "the new mailbox must be at {}",
                            domains
                                .iter()
                                .map(|d| format!("@{d}"))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    ),
                );
            }
        }
    }

    /// Makes the ticket and the project of a customer's request, its rows checked
    /// once; when no row is ready, nothing is made and every row's report answers.
    pub async fn public_request(&self, request: PublicRequest) -> ServiceResult<PublicAnswer> {
        if !self.public_form_open() {
            return Err(ServiceError::Forbidden(
                "The request form is closed; write to support.".into(),
            ));
        }
        let PublicRequest {
            project,
            rows,
            terms_accepted,
            ip,
        } = request;
        if !terms_accepted {
            return Err(ServiceError::field(
                "terms",
                "read and accept the terms to send the request",
            ));
        }
        let (checked, rows, mut list) = self
            .check_project_rows(&Actor::Customer, &project, rows)
            .await?;
        self.outside_domains(&rows, &mut list);
        if !list.any_ready() {
            return Ok(PublicAnswer::NotReady(list.into_reports()));
        }
        let limit = self.settings().intake.requests_per_hour;
        self.within_hourly("request", ip.as_deref(), limit).await?;
        let ticket = self
            .public_ticket(&project, &rows, &list, ip, self.now())
            .await?;
        let approved = self.settings().intake.auto_approve;
        let made = self
            .make_project(
                &Actor::Customer,
                project,
                checked,
                list,
                Some(ticket.id),
                approved,
            )
            .await?;
        Ok(PublicAnswer::Made(Box::new(PublicOutcome { ticket, made })))
    }

    /// The request's ticket: its text says who asked for which mailboxes (never a
    /// password), kept sealed like an email's.
    async fn public_ticket(
        &self,
        project: &ProjectInput,
        rows: &[ListedRequest],
        list: &CheckedList,
        ip: Option<String>,
        now: DateTime<Utc>,
    ) -> ServiceResult<Ticket> {
        let mut text = format!(
            "Request from the form /request for the project \"{}\".\nRequester: {}\n\n",
            project.name.trim(),
            project.requester_email.trim()
        );
        for (row, report) in rows.iter().zip(list.reports()) {
            text.push_str(&format!(
                "Row {}: {} → {} ({})\n",
                report.row,
                row.request.source.username,
                if row.request.destination.username.is_empty() {
                    row.request.source.username.as_str()
                } else {
                    row.request.destination.username.as_str()
                },
                if report.ready() {
                    "ready".to_owned()
                } else {
                    report
                        .problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field, p.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ));
        }
        let subject = format!("Migration request: {}", project.name.trim());
        let tx = self.store.begin().await?;
        let ticket = tx
            .insert_ticket(
                &subject,
                Some(project.requester_email.trim().to_owned()),
                now,
            )
            .await?;
        let new = NewTicketMessage {
            from: Some(project.requester_email.trim().to_owned()),
            subject,
            message_id: None,
            sealed_text: self.cipher.encrypt_bytes(text.as_bytes())?,
            sealed_raw: self.cipher.encrypt_bytes(text.as_bytes())?,
            raw_size: text.len() as u64,
            raw_sha256: crate::crypto::digest_bytes(text.as_bytes()),
            source: None,
            automatic: None,
            unreadable: None,
        };
        tx.insert_ticket_message(ticket.id, new, now).await?;
        tx.audit(
            NewAuditEvent::new(&Actor::Customer, "ticket.requested")
                .subject("ticket", ticket.id)
                .detail(serde_json::json!({ "rows": rows.len() }))
                .ip(ip),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(ticket)
    }
}
