//! What the customer is told, and where they follow it:
//!
//! - `customer_token` (encrypted with the data-directory key, for the links in emails)
//!   and `customer_token_digest` (its SHA-256, unique, to find the migration from a
//!   link): the customer's page of a migration, reached without an account. Rows from
//!   before this have none: their emails keep linking to the console.
//! - `notify_customer`: whether the progress of the work in hand (a pass starting or
//!   finishing, a new schedule) is emailed to the customer; staff actions such as a sync
//!   or a retry may leave the customer out.
//! - `last_news` and `customer_told`: the key of the last email about the migration, and
//!   of the last one the customer got, so that the same news is never sent twice in a
//!   row (a customer once got "change your MX now" twice and "scheduled" three times).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Migrations {
    Table,
    CustomerToken,
    CustomerTokenDigest,
    NotifyCustomer,
    LastNews,
    CustomerTold,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Migrations as M;
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            ColumnDef::new(M::CustomerToken).text().null().to_owned(),
            ColumnDef::new(M::CustomerTokenDigest)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(M::NotifyCustomer)
                .boolean()
                .not_null()
                .default(true)
                .to_owned(),
            ColumnDef::new(M::LastNews).string().null().to_owned(),
            ColumnDef::new(M::CustomerTold).string().null().to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(M::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("migrations_customer_token_digest")
                    .table(M::Table)
                    .col(M::CustomerTokenDigest)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Migrations as M;
        manager
            .drop_index(
                Index::drop()
                    .name("migrations_customer_token_digest")
                    .table(M::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            M::CustomerToken,
            M::CustomerTokenDigest,
            M::NotifyCustomer,
            M::LastNews,
            M::CustomerTold,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(M::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
