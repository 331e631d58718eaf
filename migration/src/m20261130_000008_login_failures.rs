//! Failed sign-ins, counted per key (`ip:ADDRESS`, `account:EMAIL`) in the database so
//! that every Ferry process shares the counts (they were per process, in memory, so two
//! processes allowed twice the guesses).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Key,
    Failures,
    FirstAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use LoginFailures as L;
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .col(ColumnDef::new(L::Key).string().not_null().primary_key())
                    .col(ColumnDef::new(L::Failures).integer().not_null())
                    // When the counted window started, in Unix milliseconds (an integer
                    // compares the same way on both databases).
                    .col(ColumnDef::new(L::FirstAtMs).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginFailures::Table).to_owned())
            .await
    }
}
