//! The support desk's tickets: a ticket's row, the emails read into its thread (their
//! raw bytes, text and attachments sealed by the service), Ferry's emails about it
//! (outbox rows that name it), and the erasure of what may hold passwords once a
//! ticket has been closed longer than the credential retention.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::entities::{outbox, ticket_attachments, ticket_messages, tickets};
use super::{Store, StoreError, StoreResult, Tx, duplicate_or};
use crate::domain::{
    AttachmentId, AttachmentKind, Direction, Thread, Ticket, TicketAttachment, TicketId,
    TicketMessage, TicketStatus, UserId,
};

/// Where an email was read: the support mailbox (account, server and folder), the
/// folder's UIDVALIDITY and the UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSource {
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// An email to keep in a ticket's thread, its text and raw bytes already sealed.
#[derive(Debug)]
pub struct NewTicketMessage {
    pub from: Option<String>,
    pub subject: String,
    pub message_id: Option<String>,
    pub sealed_text: Vec<u8>,
    pub sealed_raw: Vec<u8>,
    pub raw_size: u64,
    pub raw_sha256: String,
    pub source: Option<MailSource>,
    pub automatic: Option<String>,
    pub unreadable: Option<String>,
}

/// A file to keep, its bytes already sealed.
#[derive(Debug)]
pub struct NewAttachment {
    pub file_name: String,
    pub content_type: String,
    pub kind: AttachmentKind,
    pub items: Option<u64>,
    pub size: u64,
    pub sha256: String,
    pub sealed: Vec<u8>,
}

/// An email's text in a thread: sealed for an email in (`None` once erased), as
/// sent for one of Ferry's.
#[derive(Debug)]
pub enum ThreadText {
    Sealed(Option<Vec<u8>>),
    Plain(String),
}

/// Which tickets to list, newest activity first.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    /// `Some(None)`: nobody's; `Some(Some(id))`: this staff member's.
    pub assignee: Option<Option<UserId>>,
    /// Part of the subject or the requester's address.
    pub search: Option<String>,
    pub page: u64,
    pub per_page: u64,
}

fn ticket_from(row: tickets::Model) -> StoreResult<Ticket> {
    let status = TicketStatus::parse(&row.status).ok_or_else(|| {
        StoreError::Corrupt(format!("ticket {}: status {:?}", row.id, row.status))
    })?;
    Ok(Ticket {
        id: TicketId(row.id),
        created_at: row.created_at,
        updated_at: row.updated_at,
        subject: row.subject,
        requester: row.requester,
        status,
        assignee: row.assignee_id.map(UserId),
        awaiting_staff: row.awaiting_staff,
        closed_at: row.closed_at,
    })
}

fn attachment_from(row: ticket_attachments::Model) -> (TicketAttachment, Option<Vec<u8>>) {
    let attachment = TicketAttachment {
        id: AttachmentId(row.id),
        ticket: TicketId(row.ticket_id),
        message: row.message_id,
        file_name: row.file_name,
        content_type: row.content_type,
        kind: AttachmentKind::parse(&row.kind),
        items: row.items.and_then(|n| u64::try_from(n).ok()),
        size: u64::try_from(row.size).unwrap_or(0),
        used_at: row.used_at,
        purged_at: row.purged_at,
    };
    (attachment, row.data)
}

fn inbound_from(row: ticket_messages::Model) -> TicketMessage {
    TicketMessage {
        direction: Direction::In,
        id: row.id,
        at: row.received_at,
        from: row.from_addr,
        to: Vec::new(),
        subject: row.subject,
        automatic: row.automatic,
        unreadable: row.unreadable,
        delivery: None,
        migration: None,
    }
}

fn outbound_from(row: outbox::Model) -> TicketMessage {
    TicketMessage {
        direction: Direction::Out,
        id: row.id,
        at: row.created_at,
        from: None,
        to: row.recipients.lines().map(str::to_owned).collect(),
        subject: row.subject,
        automatic: None,
        unreadable: None,
        delivery: Some(row.status),
        migration: (row.subject_type.as_deref() == Some("migration"))
            .then(|| row.subject_id.as_deref().and_then(|id| id.parse().ok()))
            .flatten()
            .map(crate::domain::MigrationId),
    }
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Tx {
    /// Takes SQLite's write lock at once (a write of no row): a transaction that reads
    /// before it writes would otherwise be refused (`database is locked`) when it comes
    /// to write while another connection writes. PostgreSQL: nothing happens.
    pub async fn write_first(&self) -> StoreResult<()> {
        use sea_orm::ConnectionTrait;
        self.inner
            .execute_unprepared("UPDATE tickets SET id = id WHERE id < 0")
            .await?;
        Ok(())
    }

    /// The ticket an email read from `source` went to, when it was stored already
    /// (a reader that died before moving it reads it again).
    pub async fn inbound_stored(&self, source: &MailSource) -> StoreResult<Option<TicketId>> {
        Ok(ticket_messages::Entity::find()
            .filter(ticket_messages::Column::SourceFolder.eq(&source.folder))
            .filter(ticket_messages::Column::SourceUidvalidity.eq(i64::from(source.uidvalidity)))
            .filter(ticket_messages::Column::SourceUid.eq(i64::from(source.uid)))
            .one(&self.inner)
            .await?
            .map(|row| TicketId(row.ticket_id)))
    }

    /// The ticket an email belongs to: the one its `[#N]` tag names, else the one
    /// whose thread holds a message it answers.
    pub async fn ticket_of_thread(
        &self,
        tag: Option<u64>,
        answers: &[String],
    ) -> StoreResult<Option<Ticket>> {
        if let Some(n) = tag.and_then(|n| i64::try_from(n).ok())
            && let Some(row) = tickets::Entity::find_by_id(n).one(&self.inner).await?
        {
            return ticket_from(row).map(Some);
        }
        if answers.is_empty() {
            return Ok(None);
        }
        let mut ticket = outbox::Entity::find()
            .filter(outbox::Column::MessageId.is_in(answers.iter().cloned()))
            .filter(outbox::Column::TicketId.is_not_null())
            .one(&self.inner)
            .await?
            .and_then(|row| row.ticket_id);
        if ticket.is_none() {
            ticket = ticket_messages::Entity::find()
                .filter(ticket_messages::Column::MessageId.is_in(answers.iter().cloned()))
                .one(&self.inner)
                .await?
                .map(|row| row.ticket_id);
        }
        match ticket {
            Some(id) => tickets::Entity::find_by_id(id)
                .one(&self.inner)
                .await?
                .map(ticket_from)
                .transpose(),
            None => Ok(None),
        }
    }

    pub async fn insert_ticket(
        &self,
        subject: &str,
        requester: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<Ticket> {
        let row = tickets::ActiveModel {
            created_at: Set(now),
            updated_at: Set(now),
            subject: Set(subject.chars().take(250).collect()),
            requester: Set(requester),
            status: Set(TicketStatus::New.as_str().to_owned()),
            assignee_id: Set(None),
            awaiting_staff: Set(true),
            closed_at: Set(None),
            ..Default::default()
        }
        .insert(&self.inner)
        .await?;
        ticket_from(row)
    }

    /// Keeps an email in `ticket`'s thread; `Duplicate` when its source was stored.
    pub async fn insert_ticket_message(
        &self,
        ticket: TicketId,
        new: NewTicketMessage,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let (folder, uidvalidity, uid) = match new.source {
            Some(s) => (
                Some(s.folder),
                Some(i64::from(s.uidvalidity)),
                Some(i64::from(s.uid)),
            ),
            None => (None, None, None),
        };
        let row = ticket_messages::ActiveModel {
            ticket_id: Set(ticket.0),
            received_at: Set(now),
            from_addr: Set(new.from),
            subject: Set(new.subject.chars().take(250).collect()),
            message_id: Set(new.message_id),
            text: Set(Some(new.sealed_text)),
            raw: Set(Some(new.sealed_raw)),
            raw_size: Set(i64_of(new.raw_size)),
            raw_sha256: Set(new.raw_sha256),
            source_folder: Set(folder),
            source_uidvalidity: Set(uidvalidity),
            source_uid: Set(uid),
            automatic: Set(new.automatic),
            unreadable: Set(new.unreadable),
            purged_at: Set(None),
            ..Default::default()
        }
        .insert(&self.inner)
        .await
        .map_err(|e| duplicate_or(e, "email"))?;
        Ok(row.id)
    }

    pub async fn insert_attachment(
        &self,
        ticket: TicketId,
        message: i64,
        new: NewAttachment,
    ) -> StoreResult<TicketAttachment> {
        let row = ticket_attachments::ActiveModel {
            ticket_id: Set(ticket.0),
            message_id: Set(message),
            file_name: Set(new.file_name),
            content_type: Set(new.content_type),
            kind: Set(new.kind.as_str().to_owned()),
            items: Set(new.items.map(i64_of)),
            size: Set(i64_of(new.size)),
            sha256: Set(new.sha256),
            data: Set(Some(new.sealed)),
            used_at: Set(None),
            purged_at: Set(None),
            ..Default::default()
        }
        .insert(&self.inner)
        .await?;
        Ok(attachment_from(row).0)
    }

    /// Writes a ticket's status, assignee and whose turn it is.
    pub async fn update_ticket(&self, ticket: &Ticket, now: DateTime<Utc>) -> StoreResult<()> {
        let closed_at = match ticket.status {
            TicketStatus::Closed => Some(ticket.closed_at.unwrap_or(now)),
            _ => None,
        };
        tickets::Entity::update_many()
            .col_expr(tickets::Column::Status, Expr::value(ticket.status.as_str()))
            .col_expr(
                tickets::Column::AssigneeId,
                Expr::value(ticket.assignee.map(|u| u.0)),
            )
            .col_expr(
                tickets::Column::AwaitingStaff,
                Expr::value(ticket.awaiting_staff),
            )
            .col_expr(tickets::Column::ClosedAt, Expr::value(closed_at))
            .col_expr(tickets::Column::UpdatedAt, Expr::value(now))
            .filter(tickets::Column::Id.eq(ticket.id.0))
            .exec(&self.inner)
            .await?;
        Ok(())
    }

    /// Acknowledgements sent to `to` since `since` (the per-sender limit).
    pub async fn acknowledgements_to(&self, to: &str, since: DateTime<Utc>) -> StoreResult<u64> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::Template.eq("ticket_received"))
            .filter(outbox::Column::Recipients.eq(to))
            .filter(outbox::Column::CreatedAt.gte(since))
            .count(&self.inner)
            .await?)
    }

    /// The headers that thread an email of Ferry's into `ticket`'s conversation: the
    /// tag, the customer's latest email as In-Reply-To, and the thread's ids.
    pub async fn thread_of(&self, ticket: TicketId) -> StoreResult<Thread> {
        let inbound = ticket_messages::Entity::find()
            .filter(ticket_messages::Column::TicketId.eq(ticket.0))
            .filter(ticket_messages::Column::MessageId.is_not_null())
            .order_by_asc(ticket_messages::Column::Id)
            .all(&self.inner)
            .await?;
        let ids: Vec<String> = inbound.into_iter().filter_map(|m| m.message_id).collect();
        Ok(Thread {
            ticket: Some(ticket),
            tag: Some(format!("[#{}]", ticket.0)),
            in_reply_to: ids.last().cloned(),
            // The first and the latest ten: enough for any client to thread it.
            references: match ids.len() {
                0..=11 => ids,
                n => std::iter::once(ids[0].clone())
                    .chain(ids[n - 10..].iter().cloned())
                    .collect(),
            },
            reply_to: None,
        })
    }
}

impl Store {
    pub async fn get_ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        tickets::Entity::find_by_id(id.0)
            .one(&self.db)
            .await?
            .map(ticket_from)
            .transpose()
    }

    pub async fn list_tickets(&self, filter: &TicketFilter) -> StoreResult<(Vec<Ticket>, u64)> {
        let mut query = tickets::Entity::find()
            .order_by_desc(tickets::Column::UpdatedAt)
            .order_by_desc(tickets::Column::Id);
        if let Some(status) = filter.status {
            query = query.filter(tickets::Column::Status.eq(status.as_str()));
        }
        match filter.assignee {
            Some(Some(user)) => query = query.filter(tickets::Column::AssigneeId.eq(user.0)),
            Some(None) => query = query.filter(tickets::Column::AssigneeId.is_null()),
            None => {}
        }
        if let Some(search) = filter.search.as_deref().map(str::trim) {
            if let Ok(n) = search.trim_start_matches('#').parse::<i64>() {
                query = query.filter(tickets::Column::Id.eq(n));
            } else if !search.is_empty() {
                query = query.filter(
                    Condition::any()
                        .add(tickets::Column::Subject.contains(search))
                        .add(tickets::Column::Requester.contains(search)),
                );
            }
        }
        let paginator = query.paginate(&self.db, filter.per_page.clamp(1, 100));
        let total = paginator.num_items().await?;
        let rows = paginator.fetch_page(filter.page).await?;
        let list = rows
            .into_iter()
            .map(ticket_from)
            .collect::<StoreResult<_>>()?;
        Ok((list, total))
    }

    /// How many tickets each status has.
    pub async fn count_tickets(&self) -> StoreResult<Vec<(TicketStatus, u64)>> {
        let mut out = Vec::new();
        for status in TicketStatus::ALL {
            let n = tickets::Entity::find()
                .filter(tickets::Column::Status.eq(status.as_str()))
                .count(&self.db)
                .await?;
            out.push((status, n));
        }
        Ok(out)
    }

    /// New tickets and open ones whose requester wrote last, oldest first.
    pub async fn tickets_needing_attention(&self, limit: u64) -> StoreResult<Vec<Ticket>> {
        tickets::Entity::find()
            .filter(
                Condition::any()
                    .add(tickets::Column::Status.eq(TicketStatus::New.as_str()))
                    .add(
                        Condition::all()
                            .add(tickets::Column::Status.eq(TicketStatus::Open.as_str()))
                            .add(tickets::Column::AwaitingStaff.eq(true)),
                    ),
            )
            .order_by_asc(tickets::Column::UpdatedAt)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(ticket_from)
            .collect()
    }

    /// The thread: the emails in (their text sealed) and Ferry's emails out (their
    /// text as sent), oldest first.
    pub async fn ticket_thread(
        &self,
        id: TicketId,
    ) -> StoreResult<Vec<(TicketMessage, ThreadText)>> {
        let mut thread: Vec<(TicketMessage, ThreadText)> = ticket_messages::Entity::find()
            .filter(ticket_messages::Column::TicketId.eq(id.0))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                let text = ThreadText::Sealed(row.text.clone());
                (inbound_from(row), text)
            })
            .collect();
        thread.extend(
            outbox::Entity::find()
                .filter(outbox::Column::TicketId.eq(id.0))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|row| {
                    let text = ThreadText::Plain(row.body_text.clone());
                    (outbound_from(row), text)
                }),
        );
        thread.sort_by_key(|(m, _)| (m.at, m.direction == Direction::Out, m.id));
        Ok(thread)
    }

    /// An email in of `ticket`: its sealed text and raw bytes (`None` once erased).
    pub async fn ticket_message_sealed(
        &self,
        ticket: TicketId,
        id: i64,
    ) -> StoreResult<Option<(Option<Vec<u8>>, Option<Vec<u8>>)>> {
        Ok(ticket_messages::Entity::find_by_id(id)
            .filter(ticket_messages::Column::TicketId.eq(ticket.0))
            .one(&self.db)
            .await?
            .map(|row| (row.text, row.raw)))
    }

    pub async fn ticket_attachments(&self, id: TicketId) -> StoreResult<Vec<TicketAttachment>> {
        Ok(ticket_attachments::Entity::find()
            .filter(ticket_attachments::Column::TicketId.eq(id.0))
            .order_by_asc(ticket_attachments::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| attachment_from(row).0)
            .collect())
    }

    /// An attachment of `ticket` and its sealed bytes (`None` once erased).
    pub async fn get_attachment(
        &self,
        ticket: TicketId,
        id: AttachmentId,
    ) -> StoreResult<Option<(TicketAttachment, Option<Vec<u8>>)>> {
        Ok(ticket_attachments::Entity::find_by_id(id.0)
            .filter(ticket_attachments::Column::TicketId.eq(ticket.0))
            .one(&self.db)
            .await?
            .map(attachment_from))
    }

    /// Marks a list's migrations made, once; false when they were made already.
    pub async fn use_attachment(&self, id: AttachmentId, now: DateTime<Utc>) -> StoreResult<bool> {
        let res = ticket_attachments::Entity::update_many()
            .col_expr(ticket_attachments::Column::UsedAt, Expr::value(now))
            .filter(ticket_attachments::Column::Id.eq(id.0))
            .filter(ticket_attachments::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Erases the raw emails, texts and attachments of tickets closed before
    /// `before`; the metadata stays. How many emails and files.
    pub async fn purge_tickets(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let closed = || {
            Query::select()
                .column(tickets::Column::Id)
                .from(tickets::Entity)
                .and_where(tickets::Column::Status.eq(TicketStatus::Closed.as_str()))
                .and_where(tickets::Column::ClosedAt.lt(before))
                .to_owned()
        };
        let files = ticket_attachments::Entity::update_many()
            .col_expr(ticket_attachments::Column::PurgedAt, Expr::value(now))
            .col_expr(
                ticket_attachments::Column::Data,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .filter(ticket_attachments::Column::Data.is_not_null())
            .filter(ticket_attachments::Column::TicketId.in_subquery(closed()))
            .exec(&self.db)
            .await?;
        let emails = ticket_messages::Entity::update_many()
            .col_expr(ticket_messages::Column::PurgedAt, Expr::value(now))
            .col_expr(
                ticket_messages::Column::Raw,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .col_expr(
                ticket_messages::Column::Text,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .filter(ticket_messages::Column::Raw.is_not_null())
            .filter(ticket_messages::Column::TicketId.in_subquery(closed()))
            .exec(&self.db)
            .await?;
        Ok(files.rows_affected + emails.rows_affected)
    }
}
