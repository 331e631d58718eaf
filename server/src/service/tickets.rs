//! The support desk: an email read from the support mailbox kept in a ticket (new, or
//! the one its `[#N]` tag or its In-Reply-To/References name), exactly once per place
//! it was read; the acknowledgement of a new ticket (never to a machine, and at most
//! `support.acknowledgements_per_hour` per sender); staff's replies, assignments and
//! status changes; and the migrations made from a list a ticket's email carried, with
//! one email reporting every row. Ferry's emails about a ticket carry its tag and
//! answer the customer's latest email, so the next answer comes back to it.

use chrono::{DateTime, Duration, Utc};

use super::lists::RowReport;
use super::{ServiceError, ServiceResult, Services};
use crate::domain::{
    Actor, AttachmentId, AttachmentKind, Inbound, ListedRequest, Migration, NewAuditEvent,
    NewEmail, Ticket, TicketAttachment, TicketId, TicketMessage, TicketStatus, UserId,
};
use crate::render::emails::{RowLine, TicketReceived, TicketReply, TicketRows};
use crate::store::{MailSource, NewAttachment, NewTicketMessage, ThreadText, Tx};

/// A list of mailboxes found in an email: in one of its attachments (by index), or
/// written in its text.
#[derive(Debug)]
pub struct FoundList {
    pub attachment: Option<usize>,
    /// The rows, or why the file holds none Ferry can read.
    pub rows: Result<Vec<ListedRequest>, String>,
}

/// An email to the support address, read.
#[derive(Debug)]
pub struct IncomingEmail {
    pub raw: Vec<u8>,
    pub mail: Inbound,
    /// Where it was read; `None` for an email handed over otherwise.
    pub source: Option<MailSource>,
    pub lists: Vec<FoundList>,
}

/// What became of an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub ticket: TicketId,
    /// False when it had been stored already (read again after a crash).
    pub stored: bool,
    pub new_ticket: bool,
}

/// A ticket's page: the ticket, its thread with each email's text, its files and
/// the migrations made from it.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub ticket: Ticket,
    pub thread: Vec<(TicketMessage, String)>,
    pub attachments: Vec<TicketAttachment>,
    pub migrations: Vec<Migration>,
}

/// What staff change on a ticket: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TicketChange {
    pub status: Option<TicketStatus>,
    /// `Some(None)`: nobody.
    pub assignee: Option<Option<UserId>>,
}

/// How the support mailbox's reader is doing, for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SupportState {
    /// `support.enabled` is off.
    #[default]
    Off,
    Connecting,
    Reading {
        since: DateTime<Utc>,
    },
    /// The last try failed; the reader tries again with backoff.
    Failing {
        error: String,
        since: DateTime<Utc>,
    },
}

/// The reader's state and what it has read since the start.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SupportStatus {
    #[serde(flatten)]
    pub state: SupportState,
    pub emails: u64,
    pub last_email_at: Option<DateTime<Utc>>,
}

impl Services {
    pub fn support_status(&self) -> SupportStatus {
        self.support
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn set_support_state(&self, state: SupportState) {
        let mut status = self
            .support
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A failure keeps its first time while it lasts.
        if let (SupportState::Failing { since, .. }, SupportState::Failing { error, .. }) =
            (&status.state, &state)
        {
            status.state = SupportState::Failing {
                error: error.clone(),
                since: *since,
            };
            return;
        }
        status.state = state;
    }

    pub fn note_support_email(&self, at: DateTime<Utc>) {
        let mut status = self
            .support
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        status.emails += 1;
        status.last_email_at = Some(at);
    }
}

fn seal_name(name: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    if name.trim().is_empty() {
        "attachment".into()
    } else {
        name
    }
}

/// The rows of a checked list as the emails report them.
pub(super) fn row_lines(
    file: Option<&str>,
    rows: &[ListedRequest],
    reports: &[RowReport],
    outcome: &dyn Fn(&RowReport) -> String,
) -> Vec<RowLine> {
    reports
        .iter()
        .map(|report| {
            let mailbox = rows
                .iter()
                .find(|r| r.row == report.row)
                .map(|r| r.request.source.username.clone())
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "no source email".into());
            RowLine {
                row: report.row,
                file: file.map(str::to_owned),
                mailbox,
                outcome: if report.ready() {
                    outcome(report)
                } else {
                    String::new()
                },
                problems: report
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field.replace(['_', '.'], " "), p.message))
                    .collect(),
            }
        })
        .collect()
}

impl Services {
    /// Keeps an email in its ticket (opening one when it joins none), with its
    /// files, in one transaction; acknowledges a new ticket. An email whose source
    /// was stored already is not stored again.
    pub async fn receive_email(&self, email: IncomingEmail) -> ServiceResult<Received> {
        if let Some(source) = &email.source
            && let Some(ticket) = self.store.begin().await?.inbound_stored(source).await?
        {
            return Ok(Received {
                ticket,
                stored: false,
                new_ticket: false,
            });
        }
        let settings = self.settings();
        let may_ack = settings.support.acknowledge
            && email.mail.automatic.is_none()
            && email.mail.from.is_some();
        // The rows are checked before the transaction: it holds the database, the
        // checks ask DNS.
        let mut checked = Vec::new();
        if may_ack {
            for list in &email.lists {
                if let Ok(rows) = &list.rows {
                    let reports = self.preview_list(&Actor::System, rows.clone()).await?;
                    checked.push((list.attachment, reports));
                }
            }
        }
        let now = self.now();
        let tx = self.store.begin().await?;
        tx.write_first().await?;
        let (ticket, new_ticket) = self.ticket_for(&tx, &email.mail, now).await?;
        let Some(message) = self.keep_message(&tx, ticket.id, &email, now).await? else {
            return Ok(Received {
                ticket: ticket.id,
                stored: false,
                new_ticket: false,
            });
        };
        for file in &email.mail.attachments {
            let kind = AttachmentKind::of(&file.file_name, &file.content_type);
            let new = NewAttachment {
                file_name: seal_name(&file.file_name),
                content_type: file.content_type.clone(),
                kind,
                items: kind.count_items(&file.bytes),
                size: file.bytes.len() as u64,
                sha256: crate::crypto::digest_bytes(&file.bytes),
                sealed: self.cipher.encrypt_bytes(&file.bytes)?,
            };
            tx.insert_attachment(ticket.id, message, new).await?;
        }
        let event = NewAuditEvent::new(&Actor::System, "ticket.email_received")
            .subject("ticket", ticket.id)
            .detail(serde_json::json!({
                "from": email.mail.from,
                "attachments": email.mail.attachments.len(),
                "automatic": email.mail.automatic,
                "unreadable": email.mail.unreadable,
                "new_ticket": new_ticket,
            }));
        tx.audit(event, now).await?;
        if new_ticket && may_ack && self.under_ack_limit(&tx, &email.mail, now).await? {
            let ack = self.acknowledgement(&ticket, &email, &checked)?;
            let to = email.mail.from.as_deref().unwrap_or_default();
            self.enqueue_ticket_email(&tx, &ticket, to, &ack, None, now)
                .await?;
        }
        tx.commit().await?;
        self.dispatcher.wake();
        tracing::info!(ticket = %ticket.id, new_ticket, "Support email kept");
        Ok(Received {
            ticket: ticket.id,
            stored: true,
            new_ticket,
        })
    }

    /// The ticket an email joins (reopened by a person's answer), or a new one.
    async fn ticket_for(
        &self,
        tx: &Tx,
        mail: &Inbound,
        now: DateTime<Utc>,
    ) -> ServiceResult<(Ticket, bool)> {
        match tx.ticket_of_thread(mail.ticket_tag, &mail.answers).await? {
            Some(mut ticket) => {
                if mail.automatic.is_none() {
                    if matches!(
                        ticket.status,
                        TicketStatus::Closed | TicketStatus::WaitingOnCustomer
                    ) {
                        ticket.status = TicketStatus::Open;
                        ticket.closed_at = None;
                    }
                    ticket.awaiting_staff = true;
                }
                tx.update_ticket(&ticket, now).await?;
                Ok((ticket, false))
            }
            None => {
                let subject = if mail.subject.is_empty() {
                    "(no subject)"
                } else {
                    &mail.subject
                };
                Ok((
                    tx.insert_ticket(subject, mail.from.clone(), now).await?,
                    true,
                ))
            }
        }
    }

    /// Stores the email itself; `None` when another reader stored it meanwhile.
    async fn keep_message(
        &self,
        tx: &Tx,
        ticket: TicketId,
        email: &IncomingEmail,
        now: DateTime<Utc>,
    ) -> ServiceResult<Option<i64>> {
        let new = NewTicketMessage {
            from: email.mail.from.clone(),
            subject: email.mail.subject.clone(),
            message_id: email.mail.message_id.clone(),
            sealed_text: self.cipher.encrypt_bytes(email.mail.text.as_bytes())?,
            sealed_raw: self.cipher.encrypt_bytes(&email.raw)?,
            raw_size: email.raw.len() as u64,
            raw_sha256: crate::crypto::digest_bytes(&email.raw),
            source: email.source.clone(),
            automatic: email.mail.automatic.map(str::to_owned),
            unreadable: email.mail.unreadable.clone(),
        };
        match tx.insert_ticket_message(ticket, new, now).await {
            Ok(id) => Ok(Some(id)),
            Err(crate::store::StoreError::Duplicate(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn under_ack_limit(
        &self,
        tx: &Tx,
        mail: &Inbound,
        now: DateTime<Utc>,
    ) -> ServiceResult<bool> {
        let Some(from) = &mail.from else {
            return Ok(false);
        };
        let limit = u64::from(self.settings().support.acknowledgements_per_hour);
        let sent = tx
            .acknowledgements_to(from, now - Duration::hours(1))
            .await?;
        if sent >= limit {
            tracing::warn!(
                sent,
                limit,
                "A sender got its hour's acknowledgements: none more"
            );
        }
        Ok(sent < limit)
    }

    fn acknowledgement(
        &self,
        ticket: &Ticket,
        email: &IncomingEmail,
        checked: &[(Option<usize>, Vec<RowReport>)],
    ) -> ServiceResult<TicketReceived> {
        let settings = self.settings();
        let file_name = |index: Option<usize>| {
            index
                .and_then(|i| email.mail.attachments.get(i))
                .map(|a| seal_name(&a.file_name))
        };
        let mut rows = Vec::new();
        let mut unreadable_lists = Vec::new();
        for list in &email.lists {
            match &list.rows {
                Ok(listed) => {
                    if let Some((_, reports)) = checked.iter().find(|(i, _)| *i == list.attachment)
                    {
                        let ready = |_: &RowReport| "ready; waits for our confirmation".to_owned();
                        rows.extend(row_lines(
                            file_name(list.attachment).as_deref(),
                            listed,
                            reports,
                            &ready,
                        ));
                    }
                }
                Err(why) => unreadable_lists.push(format!(
                    "{}: {why}",
                    file_name(list.attachment).unwrap_or_else(|| "the email's text".into())
                )),
            }
        }
        Ok(TicketReceived {
            number: ticket.number(),
            subject: ticket.subject.clone(),
            rows,
            unreadable_lists,
            template_url: format!("{}/templates/migration-request.csv", settings.base_url()),
            provider_name: settings.provider.name.clone(),
            support_contact: settings.provider.support_contact.clone(),
        })
    }

    /// Renders an email of the ticket's conversation and queues it in `tx`.
    async fn enqueue_ticket_email<C: crate::render::emails::Email>(
        &self,
        tx: &Tx,
        ticket: &Ticket,
        to: &str,
        context: &C,
        attachment: Option<(String, Vec<u8>)>,
        now: DateTime<Utc>,
    ) -> ServiceResult<()> {
        let to = crate::domain::EmailAddress::parse("requester", to)
            .map_err(|e| ServiceError::Invalid(vec![e]))?;
        let email =
            self.renderer
                .email(vec![to], context, Some(("ticket", ticket.id.to_string())))?;
        let mut email = self.threaded(tx, ticket.id, email).await?;
        email.attachment = attachment;
        tx.enqueue_email(email, now).await?;
        Ok(())
    }

    /// An email put in the ticket's conversation: its tag, the headers, an id of its
    /// own that an answer will name.
    pub(super) async fn threaded(
        &self,
        tx: &Tx,
        ticket: TicketId,
        email: NewEmail,
    ) -> ServiceResult<NewEmail> {
        let mut thread = tx.thread_of(ticket).await?;
        let settings = self.settings();
        // Answers go to the support mailbox, which From may not be.
        thread.reply_to = Some(settings.support.username.clone())
            .filter(|u| settings.support.enabled && u.contains('@'));
        let from = settings.smtp.from.clone();
        let domain = from
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>').trim())
            .filter(|d| !d.is_empty())
            .unwrap_or("ferry.localhost")
            .to_owned();
        let id = format!(
            "ferry.{}.{}@{domain}",
            ticket.0,
            crate::crypto::random_token(12)?
        );
        Ok(email.in_thread(thread, id))
    }
}

impl Services {
    pub async fn ticket(&self, id: TicketId) -> ServiceResult<Ticket> {
        self.store
            .get_ticket(id)
            .await?
            .ok_or(ServiceError::NotFound("ticket"))
    }

    /// The ticket with its thread (each email's text opened), files and migrations.
    pub async fn ticket_view(&self, id: TicketId) -> ServiceResult<TicketView> {
        let ticket = self.ticket(id).await?;
        let mut thread = Vec::new();
        for (message, text) in self.store.ticket_thread(id).await? {
            let text = match text {
                ThreadText::Sealed(Some(sealed)) => {
                    String::from_utf8_lossy(&self.cipher.decrypt_bytes(&sealed)?).into_owned()
                }
                ThreadText::Sealed(None) => String::new(),
                ThreadText::Plain(text) => text,
            };
            thread.push((message, text));
        }
        Ok(TicketView {
            attachments: self.store.ticket_attachments(id).await?,
            migrations: self.store.migrations_of_ticket(id).await?,
            ticket,
            thread,
        })
    }

    /// An attached file and its bytes (`None` once erased).
    pub async fn ticket_file(
        &self,
        ticket: TicketId,
        id: AttachmentId,
    ) -> ServiceResult<(TicketAttachment, Option<Vec<u8>>)> {
        let (file, sealed) = self
            .store
            .get_attachment(ticket, id)
            .await?
            .ok_or(ServiceError::NotFound("attachment"))?;
        let bytes = match sealed {
            Some(sealed) => Some(self.cipher.decrypt_bytes(&sealed)?),
            None => None,
        };
        Ok((file, bytes))
    }

    /// The raw email as it arrived (`None` once erased).
    pub async fn ticket_raw_email(
        &self,
        ticket: TicketId,
        id: i64,
    ) -> ServiceResult<Option<Vec<u8>>> {
        let (_, raw) = self
            .store
            .ticket_message_sealed(ticket, id)
            .await?
            .ok_or(ServiceError::NotFound("email"))?;
        Ok(match raw {
            Some(sealed) => Some(self.cipher.decrypt_bytes(&sealed)?),
            None => None,
        })
    }

    /// Staff's answer, with a file when given (a report): queued to the requester in
    /// the ticket's thread; the ticket then waits on the customer (or takes `status`).
    pub async fn reply_ticket(
        &self,
        actor: &Actor,
        id: TicketId,
        text: &str,
        status: Option<TicketStatus>,
        attachment: Option<(String, Vec<u8>)>,
    ) -> ServiceResult<Ticket> {
        let attachment = match attachment {
            Some((_, bytes)) if bytes.is_empty() => None,
            Some((name, bytes)) => {
                let max = self.settings().limits.upload_bytes;
                if bytes.len() > max {
                    return Err(ServiceError::field(
                        "attachment",
                        format!(
                            "the file has {} bytes, more than the {max} an email of Ferry's may carry (limits.upload_bytes)",
                            bytes.len()
                        ),
                    ));
                }
                Some((seal_name(&name), bytes))
            }
            None => None,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(ServiceError::field("text", "write the answer"));
        }
        if text.chars().count() > 20_000 {
            return Err(ServiceError::field(
                "text",
                "an answer has at most 20,000 characters; attach a longer report instead",
            ));
        }
        let mut ticket = self.ticket(id).await?;
        let Some(to) = ticket.requester.clone() else {
            return Err(ServiceError::field(
                "text",
                "the ticket's email named no sender: there is nobody to answer",
            ));
        };
        let settings = self.settings();
        let by = match actor {
            Actor::User { id, email } => self
                .store
                .list_users()
                .await?
                .into_iter()
                .find(|u| u.id == *id && !u.name.is_empty())
                .map_or_else(|| email.clone(), |u| u.name),
            _ => settings.provider.name.clone(),
        };
        let reply = TicketReply {
            number: ticket.number(),
            text: text.to_owned(),
            by,
            provider_name: settings.provider.name.clone(),
            support_contact: settings.provider.support_contact.clone(),
        };
        let now = self.now();
        let tx = self.store.begin().await?;
        tx.write_first().await?;
        self.enqueue_ticket_email(&tx, &ticket, &to, &reply, attachment, now)
            .await?;
        ticket.status = status.unwrap_or(TicketStatus::WaitingOnCustomer);
        ticket.awaiting_staff = false;
        tx.update_ticket(&ticket, now).await?;
        tx.audit(
            NewAuditEvent::new(actor, "ticket.replied")
                .subject("ticket", id)
                .detail(serde_json::json!({ "status": ticket.status.as_str() })),
            now,
        )
        .await?;
        tx.commit().await?;
        self.dispatcher.wake();
        self.ticket(id).await
    }

    /// Changes a ticket's status or assignee.
    pub async fn change_ticket(
        &self,
        actor: &Actor,
        id: TicketId,
        change: TicketChange,
    ) -> ServiceResult<Ticket> {
        let mut ticket = self.ticket(id).await?;
        if let Some(Some(user)) = change.assignee {
            let known = self
                .store
                .list_users()
                .await?
                .into_iter()
                .any(|u| u.id == user && !u.disabled);
            if !known {
                return Err(ServiceError::field(
                    "assignee",
                    "choose an active staff account",
                ));
            }
        }
        let before = (ticket.status, ticket.assignee);
        if let Some(status) = change.status {
            ticket.status = status;
            if status == TicketStatus::Closed {
                ticket.awaiting_staff = false;
            }
        }
        if let Some(assignee) = change.assignee {
            ticket.assignee = assignee;
        }
        if before == (ticket.status, ticket.assignee) {
            return Ok(ticket);
        }
        let now = self.now();
        let tx = self.store.begin().await?;
        tx.write_first().await?;
        tx.update_ticket(&ticket, now).await?;
        tx.audit(
            NewAuditEvent::new(actor, "ticket.changed")
                .subject("ticket", id)
                .detail(serde_json::json!({
                    "status": ticket.status.as_str(),
                    "assignee": ticket.assignee,
                })),
            now,
        )
        .await?;
        tx.commit().await?;
        self.ticket(id).await
    }

    /// Makes the migrations of a ticket's list from its ready rows (once per file),
    /// links them to the ticket, and sends the requester one email with every row's
    /// outcome. `attachment` is `None` for a request written in the email's text.
    pub async fn make_ticket_migrations(
        &self,
        actor: &Actor,
        id: TicketId,
        attachment: Option<AttachmentId>,
        rows: Vec<ListedRequest>,
    ) -> ServiceResult<Vec<RowReport>> {
        let mut ticket = self.ticket(id).await?;
        let file = match attachment {
            Some(aid) => {
                let (file, _) = self
                    .store
                    .get_attachment(id, aid)
                    .await?
                    .ok_or(ServiceError::NotFound("attachment"))?;
                if !self.store.use_attachment(aid, self.now()).await? {
                    return Err(ServiceError::Conflict {
                        code: crate::domain::ErrorCode::ListUsed,
                        message: format!(
                            "The migrations of {} were made already; see them on the ticket.",
                            file.file_name
                        ),
                    });
                }
                Some(file.file_name)
            }
            None => None,
        };
        let reports = self.ticket_project(actor, &ticket, rows.clone()).await?;
        let made: Vec<String> = reports
            .iter()
            .flat_map(|r| r.migrations.iter().map(|m| m.id.to_string()))
            .collect();
        let now = self.now();
        let tx = self.store.begin().await?;
        tx.write_first().await?;
        if let Some(to) = ticket.requester.clone() {
            let settings = self.settings();
            let outcome = |r: &RowReport| match r.migration() {
                Some(m) => match self.migration_facts(m).window {
                    Some(window) => format!("migration #{} scheduled for {window}", m.id),
                    None => format!(
                        "migration #{} starts as soon as its logins are checked",
                        m.id
                    ),
                },
                None => String::new(),
            };
            let email = TicketRows {
                number: ticket.number(),
                file: file.clone(),
                rows: row_lines(file.as_deref(), &rows, &reports, &outcome),
                provider_name: settings.provider.name.clone(),
                support_contact: settings.provider.support_contact.clone(),
            };
            self.enqueue_ticket_email(&tx, &ticket, &to, &email, None, now)
                .await?;
        }
        if ticket.status == TicketStatus::New {
            ticket.status = TicketStatus::Open;
        }
        ticket.awaiting_staff = false;
        tx.update_ticket(&ticket, now).await?;
        tx.audit(
            NewAuditEvent::new(actor, "ticket.migrations_made")
                .subject("ticket", id)
                .detail(serde_json::json!({
                    "file": file,
                    "migrations": made,
                    "rows_not_started": reports.len() - made.len(),
                })),
            now,
        )
        .await?;
        tx.commit().await?;
        self.dispatcher.wake();
        Ok(reports)
    }

    /// A ticket's ready rows become one project (named as the ticket, for its
    /// requester, its emails in the ticket's thread); without a ready row, or without a
    /// requester to send the project's ID to, the rows are only checked (or made as
    /// single migrations).
    async fn ticket_project(
        &self,
        actor: &Actor,
        ticket: &Ticket,
        rows: Vec<ListedRequest>,
    ) -> ServiceResult<Vec<RowReport>> {
        let Some(requester) = ticket.requester.clone() else {
            return self.request_list(actor, rows, Some(ticket.id)).await;
        };
        let input = super::ProjectInput {
            name: format!(
                "{} (ticket #{})",
                ticket
                    .subject
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(150)
                    .collect::<String>()
                    .trim(),
                ticket.number()
            ),
            requester_email: requester,
            ..Default::default()
        };
        let (checked, _, list) = self.check_project_rows(actor, &input, rows).await?;
        if !list.any_ready() {
            return Ok(list.into_reports());
        }
        let made = self
            .make_project(actor, input, checked, list, Some(ticket.id), true)
            .await?;
        Ok(made.rows)
    }
}
