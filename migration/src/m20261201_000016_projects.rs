//! Projects: many mailboxes moved as one, followed by the customer with the project's
//! ID (unique, readable aloud) and a password kept only as an argon2 hash. A
//! migration names the project it belongs to; a paused migration keeps the status it
//! was paused in, to go back to it on resume; `paused` is active, so the index that
//! keeps one active migration per mailbox is made again with it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    PublicId,
    Name,
    RequesterEmail,
    TimeZone,
    Options,
    WindowStart,
    Concurrency,
    PasswordHash,
    CreatedAt,
    CreatedBy,
    TicketId,
    ApprovedAt,
    PausedAt,
    Digest,
    DigestAt,
    CompletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Migrations {
    Table,
    ProjectId,
    PausedStatus,
}

const ACTIVE_BEFORE: &str =
    "('pending', 'validating', 'scheduled', 'processing', 'waiting_for_mx')";
const ACTIVE: &str =
    "('pending', 'validating', 'scheduled', 'processing', 'waiting_for_mx', 'paused')";

async fn one_active_index(manager: &SchemaManager<'_>, active: &str) -> Result<(), DbErr> {
    // One call, so both statements run on one connection: SQLite's pool once ran the
    // CREATE on a connection that had not yet seen the DROP.
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "DROP INDEX IF EXISTS idx_migrations_one_active; \
             CREATE UNIQUE INDEX idx_migrations_one_active ON migrations (dest_key) \
             WHERE status IN {active}"
        ))
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Projects as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(
                        ColumnDef::new(P::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(P::PublicId).string().not_null())
                    .col(ColumnDef::new(P::Name).string().not_null())
                    .col(ColumnDef::new(P::RequesterEmail).string().not_null())
                    .col(ColumnDef::new(P::TimeZone).string().not_null())
                    .col(ColumnDef::new(P::Options).text().not_null())
                    .col(
                        ColumnDef::new(P::WindowStart)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(P::Concurrency).integer().not_null())
                    .col(ColumnDef::new(P::PasswordHash).string().not_null())
                    .col(
                        ColumnDef::new(P::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(P::CreatedBy).string().not_null())
                    .col(ColumnDef::new(P::TicketId).big_integer().null())
                    .col(
                        ColumnDef::new(P::ApprovedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(P::PausedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(P::Digest).boolean().not_null().default(true))
                    .col(
                        ColumnDef::new(P::DigestAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(P::CompletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("projects_public_id")
                    .table(P::Table)
                    .col(P::PublicId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for column in [
            ColumnDef::new(Migrations::ProjectId)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Migrations::PausedStatus)
                .string()
                .null()
                .to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Migrations::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("migrations_project")
                    .table(Migrations::Table)
                    .col(Migrations::ProjectId)
                    .to_owned(),
            )
            .await?;
        one_active_index(manager, ACTIVE).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        one_active_index(manager, ACTIVE_BEFORE).await?;
        manager
            .drop_index(
                Index::drop()
                    .name("migrations_project")
                    .table(Migrations::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Migrations::PausedStatus, Migrations::ProjectId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Migrations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Projects::Table).to_owned())
            .await
    }
}
