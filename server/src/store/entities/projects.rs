//! The `projects` table's row, as sea-orm sees it (only `store` reads it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub public_id: String,
    pub name: String,
    pub requester_email: String,
    pub time_zone: String,
    pub options: String,
    pub window_start: Option<DateTimeUtc>,
    pub concurrency: i32,
    /// argon2id; never leaves the store but to be verified.
    pub password_hash: String,
    pub created_at: DateTimeUtc,
    pub created_by: String,
    pub ticket_id: Option<i64>,
    pub approved_at: Option<DateTimeUtc>,
    pub paused_at: Option<DateTimeUtc>,
    pub digest: bool,
    pub digest_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
