//! What the desk keeps about a migration beside the work: the customer's own reference
//! (an order or ticket number) and the staff member who owns it. Notes are audit
//! events (`migration.note_added`): who wrote them and when is the point of a note.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Migrations {
    Table,
    CustomerRef,
    OwnerId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Migrations as M;
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for mut column in [
            ColumnDef::new(M::CustomerRef).string().null().to_owned(),
            ColumnDef::new(M::OwnerId).big_integer().null().to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(M::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Migrations as M;
        for column in [M::CustomerRef, M::OwnerId] {
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
