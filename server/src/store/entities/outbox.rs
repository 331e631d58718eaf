//! The `outbox` table's row, as sea-orm sees it (only `store` reads it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub template: String,
    /// Recipients, one address per line.
    pub recipients: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTimeUtc>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    /// The ticket whose thread it belongs to.
    pub ticket_id: Option<i64>,
    /// Its own Message-ID, and the threading headers it was sent with.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub thread_references: Option<String>,
    /// Where the recipient's answer goes (the support address), when not to From.
    pub reply_to: Option<String>,
    /// A file sent with it: its name and bytes.
    pub attachment_name: Option<String>,
    pub attachment: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
