//! The version of a source item when it was copied (a CardDAV/CalDAV item's ETag):
//! a later pass re-copies an item whose version changed at the source. Mail leaves it
//! empty (its changes are flags, compared by the engine).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum MigrationLedger {
    Table,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MigrationLedger::Table)
                    .add_column(ColumnDef::new(MigrationLedger::Version).string().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MigrationLedger::Table)
                    .drop_column(MigrationLedger::Version)
                    .to_owned(),
            )
            .await
    }
}
