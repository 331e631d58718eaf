//! The `migration_folders` table's row, as sea-orm sees it (only `store` reads it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "migration_folders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub migration_id: i64,
    pub position: i32,
    pub source_folder: String,
    pub source_path: String,
    pub dest_path: String,
    /// The engine's `FolderState` as JSON.
    pub checkpoint: Option<String>,
    pub status: String,
    pub expected: i64,
    pub copied: i64,
    pub skipped: i64,
    pub failed: i64,
    pub bytes: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
