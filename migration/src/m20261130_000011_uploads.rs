//! Files people hand Ferry (a list of mailboxes uploaded in the console; next, a
//! ticket's attachments): the bytes encrypted with the data directory's key, since a
//! list holds passwords, and erased once used or after the credential retention; the
//! file's name, size and digest stay.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Uploads {
    Table,
    Id,
    CreatedAt,
    CreatedBy,
    FileName,
    Size,
    Sha256,
    Data,
    RequesterEmail,
    TimeZone,
    UsedAt,
    PurgedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Uploads as U;
        manager
            .create_table(
                Table::create()
                    .table(U::Table)
                    .col(
                        ColumnDef::new(U::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(U::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(U::CreatedBy).string().not_null())
                    .col(ColumnDef::new(U::FileName).string().not_null())
                    .col(ColumnDef::new(U::Size).big_integer().not_null())
                    .col(ColumnDef::new(U::Sha256).string().not_null())
                    // Nonce and ciphertext (XChaCha20-Poly1305); NULL once erased.
                    .col(ColumnDef::new(U::Data).binary().null())
                    .col(ColumnDef::new(U::RequesterEmail).string().null())
                    .col(ColumnDef::new(U::TimeZone).string().null())
                    .col(ColumnDef::new(U::UsedAt).timestamp_with_time_zone().null())
                    .col(
                        ColumnDef::new(U::PurgedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Uploads::Table).to_owned())
            .await
    }
}
