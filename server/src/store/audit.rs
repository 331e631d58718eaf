//! The audit log: inserted in the transaction of the change it records, never updated.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::audit_events;
use super::{Store, StoreResult, Tx};
use crate::domain::{AuditEvent, NewAuditEvent};

/// The most events one page of the log shows.
pub const MAX_AUDIT_PAGE: u64 = 500;

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events older than this id (the previous page's last id).
    pub before_id: Option<i64>,
    /// Only actions that start with this, e.g. `user.`.
    pub action_prefix: Option<String>,
    pub subject: Option<(String, String)>,
    pub limit: u64,
}

fn event_from(row: audit_events::Model) -> AuditEvent {
    AuditEvent {
        id: row.id,
        at: row.at,
        actor: row.actor,
        action: row.action,
        subject_type: row.subject_type,
        subject_id: row.subject_id,
        detail: serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::Null),
        ip: row.ip,
    }
}

impl Store {
    pub async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        let mut query = audit_events::Entity::find().order_by_desc(audit_events::Column::Id);
        if let Some(before) = filter.before_id {
            query = query.filter(audit_events::Column::Id.lt(before));
        }
        if let Some(prefix) = filter.action_prefix.as_deref().filter(|p| !p.is_empty()) {
            query = query.filter(audit_events::Column::Action.starts_with(prefix));
        }
        if let Some((kind, id)) = &filter.subject {
            query = query
                .filter(audit_events::Column::SubjectType.eq(kind.as_str()))
                .filter(audit_events::Column::SubjectId.eq(id.as_str()));
        }
        let rows = query
            .limit(filter.limit.clamp(1, MAX_AUDIT_PAGE))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(event_from).collect())
    }
}

impl Tx {
    pub async fn audit(
        &self,
        event: NewAuditEvent,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        let (subject_type, subject_id) = match event.subject {
            Some((kind, id)) => (Some(kind.to_owned()), Some(id)),
            None => (None, None),
        };
        audit_events::ActiveModel {
            at: Set(now),
            actor: Set(event.actor.to_string()),
            action: Set(event.action.to_owned()),
            subject_type: Set(subject_type),
            subject_id: Set(subject_id),
            detail: Set(event.detail.to_string()),
            ip: Set(event.ip),
            ..Default::default()
        }
        .insert(&self.inner)
        .await?;
        Ok(())
    }
}
