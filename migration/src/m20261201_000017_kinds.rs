//! A migration's kind (mail, contacts, calendars) and its two endpoints typed by kind,
//! as JSON (`domain::Endpoint`): a new kind of source or destination needs no new
//! column. Rows from before keep their IMAP endpoints in the `source_*`/`dest_*`
//! columns, which stay filled for every row (host and username key the per-server
//! limits and the one-active rule).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Migrations {
    Table,
    Kind,
    SourceEndpoint,
    DestEndpoint,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ColumnDef::new(Migrations::Kind)
                .string()
                .not_null()
                .default("mail")
                .to_owned(),
            ColumnDef::new(Migrations::SourceEndpoint)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(Migrations::DestEndpoint)
                .text()
                .null()
                .to_owned(),
        ] {
            // One column per statement: SQLite adds one at a time.
            manager
                .alter_table(
                    Table::alter()
                        .table(Migrations::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Migrations::DestEndpoint,
            Migrations::SourceEndpoint,
            Migrations::Kind,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Migrations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
