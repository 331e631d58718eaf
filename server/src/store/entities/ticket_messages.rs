//! The `ticket_messages` table's row: an email in from the support mailbox (only
//! `store` reads it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: i64,
    pub received_at: DateTimeUtc,
    pub from_addr: Option<String>,
    pub subject: String,
    pub message_id: Option<String>,
    /// Encrypted; `None` once erased.
    pub text: Option<Vec<u8>>,
    /// Encrypted; `None` once erased.
    pub raw: Option<Vec<u8>>,
    pub raw_size: i64,
    pub raw_sha256: String,
    pub source_folder: Option<String>,
    pub source_uidvalidity: Option<i64>,
    pub source_uid: Option<i64>,
    pub automatic: Option<String>,
    pub unreadable: Option<String>,
    pub purged_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
