//! The ledger of a migration's copies in rows: one row per source message that a pass
//! copied, found at the destination or skipped, written with the batch that made it
//! (in the transaction of the folder's checkpoint), so that saving a batch costs the
//! batch, not the folder. Before this, the ledger was part of each folder's
//! checkpoint JSON, rewritten whole after every batch; such a checkpoint is moved into
//! rows the first time its folder is saved again.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MigrationLedger {
    Table,
    MigrationId,
    SourceFolder,
    SourceUid,
    Key,
    DestUid,
    Skipped,
    SourceDeleted,
    Pass,
    Removed,
}

#[derive(DeriveIden)]
enum Migrations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use MigrationLedger as L;
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .col(ColumnDef::new(L::MigrationId).big_integer().not_null())
                    // The source folder as the source server spells it.
                    .col(ColumnDef::new(L::SourceFolder).string().not_null())
                    .col(ColumnDef::new(L::SourceUid).big_integer().not_null())
                    // The message key (Message-ID, or a hash of its headers).
                    .col(ColumnDef::new(L::Key).text().not_null())
                    .col(ColumnDef::new(L::DestUid).big_integer().null())
                    .col(ColumnDef::new(L::Skipped).boolean().not_null())
                    .col(ColumnDef::new(L::SourceDeleted).boolean().not_null())
                    .col(ColumnDef::new(L::Pass).integer().not_null())
                    .col(ColumnDef::new(L::Removed).boolean().not_null())
                    .primary_key(
                        Index::create()
                            .col(L::MigrationId)
                            .col(L::SourceFolder)
                            .col(L::SourceUid),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(L::Table, L::MigrationId)
                            .to(Migrations::Table, Migrations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MigrationLedger::Table).to_owned())
            .await
    }
}
