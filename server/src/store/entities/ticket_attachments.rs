//! The `ticket_attachments` table's row (only `store` reads it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_attachments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: i64,
    pub message_id: i64,
    pub file_name: String,
    pub content_type: String,
    pub kind: String,
    pub items: Option<i64>,
    pub size: i64,
    pub sha256: String,
    /// Encrypted; `None` once erased.
    pub data: Option<Vec<u8>>,
    pub used_at: Option<DateTimeUtc>,
    pub purged_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
