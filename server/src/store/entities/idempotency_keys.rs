//! The `idempotency_keys` table's row, as sea-orm sees it (only `store` reads it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub token_digest: String,
    pub idem_key: String,
    pub fingerprint: String,
    pub created_at: DateTimeUtc,
    /// `None` while the first request runs.
    pub status: Option<i32>,
    pub content_type: Option<String>,
    /// Sealed.
    pub body: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
