//! The `migration_ledger` table's row, as sea-orm sees it (only `store` reads it).

use sea_orm::entity::prelude::*;

/// One source message a migration copied, found at the destination or skipped.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "migration_ledger")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub migration_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source_folder: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source_uid: i64,
    pub key: String,
    pub dest_uid: Option<i64>,
    pub skipped: bool,
    pub source_deleted: bool,
    pub pass: i32,
    pub removed: bool,
    /// The source item's version when copied (a DAV item's ETag); none for mail.
    pub version: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
