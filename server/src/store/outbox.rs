//! The notification outbox. An email is inserted in the transaction of the change it
//! reports; the dispatcher claims due rows with a compare-and-set on `attempts` (so two
//! processes never send the same attempt), sends, then marks them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::entities::outbox;
use super::{Store, StoreError, StoreResult, Tx};
use crate::domain::{DeliveryStatus, NewEmail, OutboxId, OutboxMessage};

/// The emails that carry a password (a project's generated one): their bodies are
/// erased once sent.
const SECRET_TEMPLATES: [&str; 1] = ["project_password"];
const ERASED_BODY: &str = "(This email held a password; its text was erased once sent.)";

#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub status: Option<DeliveryStatus>,
    /// Only the emails about this migration.
    pub migration: Option<crate::domain::MigrationId>,
    /// Only the emails to an address containing this.
    pub recipient: Option<String>,
    /// Only the emails about this record (`("project", "FY-…")`).
    pub about: Option<(String, String)>,
    pub limit: u64,
}

fn message_from(row: outbox::Model) -> StoreResult<OutboxMessage> {
    let status = DeliveryStatus::parse(&row.status).ok_or_else(|| {
        StoreError::Corrupt(format!("outbox {}: status {:?}", row.id, row.status))
    })?;
    Ok(OutboxMessage {
        id: OutboxId(row.id),
        created_at: row.created_at,
        template: row.template,
        to: row.recipients.lines().map(str::to_owned).collect(),
        subject: row.subject,
        body_text: row.body_text,
        body_html: row.body_html,
        status,
        attempts: row.attempts,
        next_attempt_at: row.next_attempt_at,
        last_error: row.last_error,
        sent_at: row.sent_at,
        migration: (row.subject_type.as_deref() == Some("migration"))
            .then(|| row.subject_id.as_deref().and_then(|id| id.parse().ok()))
            .flatten()
            .map(crate::domain::MigrationId),
        message_id: row.message_id,
        in_reply_to: row.in_reply_to,
        references: row
            .thread_references
            .map(|r| r.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        reply_to: row.reply_to,
        attachment: row.attachment_name.zip(row.attachment),
    })
}

impl Store {
    pub async fn list_outbox(&self, filter: &OutboxFilter) -> StoreResult<Vec<OutboxMessage>> {
        let mut query = outbox::Entity::find().order_by_desc(outbox::Column::Id);
        if let Some(status) = filter.status {
            query = query.filter(outbox::Column::Status.eq(status.as_str()));
        }
        if let Some(id) = filter.migration {
            query = query
                .filter(outbox::Column::SubjectType.eq("migration"))
                .filter(outbox::Column::SubjectId.eq(id.to_string()));
        }
        if let Some((kind, id)) = &filter.about {
            query = query
                .filter(outbox::Column::SubjectType.eq(kind.as_str()))
                .filter(outbox::Column::SubjectId.eq(id.as_str()));
        }
        if let Some(to) = filter
            .recipient
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            query = query.filter(outbox::Column::Recipients.contains(to));
        }
        query
            .limit(filter.limit.clamp(1, 500))
            .all(&self.db)
            .await?
            .into_iter()
            .map(message_from)
            .collect()
    }

    pub async fn get_outbox(&self, id: OutboxId) -> StoreResult<Option<OutboxMessage>> {
        outbox::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(message_from)
            .transpose()
    }

    pub async fn count_outbox(&self, status: DeliveryStatus) -> StoreResult<u64> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::Status.eq(status.as_str()))
            .count(&self.db)
            .await?)
    }

    /// Claims up to `limit` due messages: each claimed row's next attempt moves to
    /// `lease_until` (so a crash mid-send retries it then) and its attempt count goes up.
    pub async fn claim_due_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let due = outbox::Entity::find()
            .filter(outbox::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(outbox::Column::NextAttemptAt.lte(now))
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let res = outbox::Entity::update_many()
                .col_expr(outbox::Column::Attempts, Expr::value(row.attempts + 1))
                .col_expr(outbox::Column::NextAttemptAt, Expr::value(lease_until))
                .filter(outbox::Column::Id.eq(row.id))
                .filter(outbox::Column::Status.eq(DeliveryStatus::Pending.as_str()))
                .filter(outbox::Column::Attempts.eq(row.attempts))
                .exec(&self.db)
                .await?;
            if res.rows_affected == 1 {
                let mut message = message_from(row)?;
                message.attempts += 1;
                claimed.push(message);
            }
        }
        Ok(claimed)
    }

    pub async fn mark_outbox_sent(&self, id: OutboxId, now: DateTime<Utc>) -> StoreResult<()> {
        outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Status,
                Expr::value(DeliveryStatus::Sent.as_str()),
            )
            .col_expr(outbox::Column::SentAt, Expr::value(now))
            .col_expr(
                outbox::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(outbox::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        // An email that carried a password keeps no copy of it once sent.
        outbox::Entity::update_many()
            .col_expr(outbox::Column::BodyText, Expr::value(ERASED_BODY))
            .col_expr(outbox::Column::BodyHtml, Expr::value(ERASED_BODY))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::Template.is_in(SECRET_TEMPLATES))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or given up when `None`.
    pub async fn mark_outbox_attempt_failed(
        &self,
        id: OutboxId,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let mut update = outbox::Entity::update_many()
            .col_expr(outbox::Column::LastError, Expr::value(error.to_owned()));
        update = match retry_at {
            Some(at) => update.col_expr(outbox::Column::NextAttemptAt, Expr::value(at)),
            None => update.col_expr(
                outbox::Column::Status,
                Expr::value(DeliveryStatus::Failed.as_str()),
            ),
        };
        update
            .filter(outbox::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

impl Tx {
    pub async fn enqueue_email(&self, email: NewEmail, now: DateTime<Utc>) -> StoreResult<i64> {
        let (subject_type, subject_id) = match email.about {
            Some((kind, id)) => (Some(kind.to_owned()), Some(id)),
            None => (None, None),
        };
        let recipients: Vec<&str> = email.to.iter().map(|a| a.as_str()).collect();
        let row = outbox::ActiveModel {
            created_at: Set(now),
            template: Set(email.template.to_owned()),
            recipients: Set(recipients.join("\n")),
            subject: Set(email.subject),
            body_text: Set(email.body_text),
            body_html: Set(email.body_html),
            status: Set(DeliveryStatus::Pending.as_str().to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            last_error: Set(None),
            sent_at: Set(None),
            subject_type: Set(subject_type),
            subject_id: Set(subject_id),
            ticket_id: Set(email.thread.ticket.map(|t| t.0)),
            message_id: Set(email.message_id),
            in_reply_to: Set(email.thread.in_reply_to),
            reply_to: Set(email.thread.reply_to.clone()),
            attachment_name: Set(email.attachment.as_ref().map(|(name, _)| name.clone())),
            attachment: Set(email.attachment.map(|(_, bytes)| bytes)),
            thread_references: Set(
                (!email.thread.references.is_empty()).then(|| email.thread.references.join(" "))
            ),
            ..Default::default()
        }
        .insert(&self.inner)
        .await?;
        Ok(row.id)
    }

    /// Puts a message back in the queue for delivery now, whatever its status.
    pub async fn requeue_outbox(&self, id: OutboxId, now: DateTime<Utc>) -> StoreResult<()> {
        let res = outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Status,
                Expr::value(DeliveryStatus::Pending.as_str()),
            )
            .col_expr(outbox::Column::Attempts, Expr::value(0))
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(now))
            .filter(outbox::Column::Id.eq(id))
            .exec(&self.inner)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound("notification"));
        }
        Ok(())
    }
}
