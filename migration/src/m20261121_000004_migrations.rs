//! Migrations (one mailbox each), their passes, and their folders: the checkpoint the
//! engine resumes from and the progress the console and the API show.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Migrations {
    Table,
    Id,
    Status,
    CreatedAt,
    UpdatedAt,
    CreatedBy,
    RequesterEmail,
    SourceHost,
    SourcePort,
    SourceSecurity,
    SourceUsername,
    SourceAuthuser,
    SourceSecret,
    DestHost,
    DestPort,
    DestSecurity,
    DestUsername,
    DestAuthuser,
    DestSecret,
    DestKey,
    Options,
    TwoPass,
    MxDomain,
    WindowStart,
    TimeZone,
    NextWork,
    ResumeWork,
    NextRunAt,
    MxSwitchedAt,
    MxCheckedAt,
    MxAnswer,
    LeaseOwner,
    LeaseUntil,
    ErrorCode,
    ErrorMessage,
    StartedAt,
    FinishedAt,
    CredentialsPurgedAt,
}

#[derive(DeriveIden)]
enum MigrationPasses {
    Table,
    Id,
    MigrationId,
    Number,
    Kind,
    Status,
    StartedAt,
    FinishedAt,
    Report,
    Copied,
    Skipped,
    Failed,
    Bytes,
}

#[derive(DeriveIden)]
enum MigrationFolders {
    Table,
    Id,
    MigrationId,
    Position,
    SourceFolder,
    SourcePath,
    DestPath,
    Checkpoint,
    Status,
    Expected,
    Copied,
    Skipped,
    Failed,
    Bytes,
    UpdatedAt,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn counter(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

/// A row of `table` goes when its migration goes.
fn belongs_to_migration(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Migrations::Table, Migrations::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// One row per migration and `key`.
fn per_migration(
    name: &str,
    table: impl IntoIden,
    migration: impl IntoIden,
    key: impl IntoIden,
) -> IndexCreateStatement {
    Index::create()
        .name(name)
        .table(table)
        .col(migration)
        .col(key)
        .unique()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Migrations as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(id(M::Id))
                    .col(ColumnDef::new(M::Status).string().not_null())
                    .col(ts(M::CreatedAt).not_null())
                    .col(ts(M::UpdatedAt).not_null())
                    .col(ColumnDef::new(M::CreatedBy).string().not_null())
                    .col(ColumnDef::new(M::RequesterEmail).string().not_null())
                    .col(ColumnDef::new(M::SourceHost).string().not_null())
                    .col(ColumnDef::new(M::SourcePort).integer().not_null())
                    .col(ColumnDef::new(M::SourceSecurity).string().not_null())
                    .col(ColumnDef::new(M::SourceUsername).string().not_null())
                    .col(ColumnDef::new(M::SourceAuthuser).string())
                    .col(ColumnDef::new(M::SourceSecret).text())
                    .col(ColumnDef::new(M::DestHost).string().not_null())
                    .col(ColumnDef::new(M::DestPort).integer().not_null())
                    .col(ColumnDef::new(M::DestSecurity).string().not_null())
                    .col(ColumnDef::new(M::DestUsername).string().not_null())
                    .col(ColumnDef::new(M::DestAuthuser).string())
                    .col(ColumnDef::new(M::DestSecret).text())
                    .col(ColumnDef::new(M::DestKey).string().not_null())
                    .col(ColumnDef::new(M::Options).text().not_null())
                    .col(ColumnDef::new(M::TwoPass).boolean().not_null())
                    .col(ColumnDef::new(M::MxDomain).string().not_null())
                    .col(ts(M::WindowStart))
                    .col(ColumnDef::new(M::TimeZone).string().not_null())
                    .col(ColumnDef::new(M::NextWork).string())
                    .col(ColumnDef::new(M::ResumeWork).string())
                    .col(ts(M::NextRunAt))
                    .col(ts(M::MxSwitchedAt))
                    .col(ts(M::MxCheckedAt))
                    .col(ColumnDef::new(M::MxAnswer).text())
                    .col(ColumnDef::new(M::LeaseOwner).string())
                    .col(ts(M::LeaseUntil))
                    .col(ColumnDef::new(M::ErrorCode).string())
                    .col(ColumnDef::new(M::ErrorMessage).text())
                    .col(ts(M::StartedAt))
                    .col(ts(M::FinishedAt))
                    .col(ts(M::CredentialsPurgedAt))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_migrations_due", M::NextRunAt),
            ("idx_migrations_status", M::Status),
            ("idx_migrations_dest", M::DestKey),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(M::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        use MigrationPasses as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(id(P::Id))
                    .col(ColumnDef::new(P::MigrationId).big_integer().not_null())
                    .col(ColumnDef::new(P::Number).integer().not_null())
                    .col(ColumnDef::new(P::Kind).string().not_null())
                    .col(ColumnDef::new(P::Status).string().not_null())
                    .col(ts(P::StartedAt).not_null())
                    .col(ts(P::FinishedAt))
                    .col(ColumnDef::new(P::Report).text())
                    .col(counter(P::Copied))
                    .col(counter(P::Skipped))
                    .col(counter(P::Failed))
                    .col(counter(P::Bytes))
                    .foreign_key(&mut belongs_to_migration(P::Table, P::MigrationId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(per_migration(
                "idx_passes_migration",
                P::Table,
                P::MigrationId,
                P::Number,
            ))
            .await?;

        use MigrationFolders as F;
        manager
            .create_table(
                Table::create()
                    .table(F::Table)
                    .col(id(F::Id))
                    .col(ColumnDef::new(F::MigrationId).big_integer().not_null())
                    .col(ColumnDef::new(F::Position).integer().not_null())
                    .col(ColumnDef::new(F::SourceFolder).string().not_null())
                    .col(ColumnDef::new(F::SourcePath).string().not_null())
                    .col(ColumnDef::new(F::DestPath).string().not_null())
                    .col(ColumnDef::new(F::Checkpoint).text())
                    .col(ColumnDef::new(F::Status).string().not_null())
                    .col(counter(F::Expected))
                    .col(counter(F::Copied))
                    .col(counter(F::Skipped))
                    .col(counter(F::Failed))
                    .col(counter(F::Bytes))
                    .col(ts(F::UpdatedAt).not_null())
                    .foreign_key(&mut belongs_to_migration(F::Table, F::MigrationId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(per_migration(
                "idx_folders_migration",
                F::Table,
                F::MigrationId,
                F::SourceFolder,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MigrationFolders::Table.into_iden(),
            MigrationPasses::Table.into_iden(),
            Migrations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
