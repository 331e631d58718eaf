//! The `uploads` table's row, as sea-orm sees it (only `store` reads it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "uploads")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub created_at: DateTimeUtc,
    pub created_by: String,
    pub file_name: String,
    pub size: i64,
    pub sha256: String,
    /// Encrypted; `None` once erased.
    pub data: Option<Vec<u8>>,
    pub requester_email: Option<String>,
    pub time_zone: Option<String>,
    pub used_at: Option<DateTimeUtc>,
    pub purged_at: Option<DateTimeUtc>,
    /// What the file holds (`vcf`, `ics`), for a file to import.
    pub kind: Option<String>,
    /// The file's name under the data directory's `uploads/`, for a file kept on disk.
    pub stored: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
