//! The `migration_passes` table's row, as sea-orm sees it (only `store` reads it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "migration_passes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub migration_id: i64,
    pub number: i32,
    pub kind: String,
    pub status: String,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub report: Option<String>,
    pub copied: i64,
    pub skipped: i64,
    pub failed: i64,
    pub bytes: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
