//! The answers of the API's POSTs sent with an `Idempotency-Key`, kept 24 hours so the
//! same request answers them again without doing anything: by the token's digest and
//! the key (unique), the request's fingerprint, then the status, content type and body
//! once it has answered (sealed: an answer may hold a customer's link).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Id,
    TokenDigest,
    IdemKey,
    Fingerprint,
    CreatedAt,
    Status,
    ContentType,
    Body,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use IdempotencyKeys as K;
        manager
            .create_table(
                Table::create()
                    .table(K::Table)
                    .col(
                        ColumnDef::new(K::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(K::TokenDigest).string().not_null())
                    .col(ColumnDef::new(K::IdemKey).string().not_null())
                    .col(ColumnDef::new(K::Fingerprint).string().not_null())
                    .col(
                        ColumnDef::new(K::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(K::Status).integer().null())
                    .col(ColumnDef::new(K::ContentType).string().null())
                    .col(ColumnDef::new(K::Body).binary().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idempotency_keys_token_key")
                    .table(K::Table)
                    .col(K::TokenDigest)
                    .col(K::IdemKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}
