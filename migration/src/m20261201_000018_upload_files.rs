//! Uploaded files kept on disk rather than in their row: a contacts or calendars file
//! (and next a PST or MBOX archive) may be far larger than a row should hold. `kind`
//! is what the file holds (`vcf`, `ics`); `stored` is its file's name under the data
//! directory's `uploads/`, encrypted chunk by chunk; `data` stays for the small files
//! kept as before (lists of mailboxes, tickets' attachments).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Uploads {
    Table,
    Kind,
    Stored,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ColumnDef::new(Uploads::Kind).string().null().to_owned(),
            ColumnDef::new(Uploads::Stored).string().null().to_owned(),
        ] {
            // One column per statement: SQLite adds one at a time.
            manager
                .alter_table(
                    Table::alter()
                        .table(Uploads::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Uploads::Stored, Uploads::Kind] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Uploads::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
