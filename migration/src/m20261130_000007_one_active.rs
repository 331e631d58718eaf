//! One active migration per destination mailbox, and capacity admission serialised,
//! both kept by the database rather than by a check before the insert (20 concurrent
//! requests for one mailbox once made 12 migrations that would all have copied into it).
//!
//! - A partial unique index over `dest_key` of the migrations whose status is active.
//!   The list of active statuses is `MigrationStatus::is_active` in the server; a store
//!   test proves the two agree.
//! - A `locks` table with one row per admission rule; a transaction that admits a
//!   migration writes its row first, so admissions queue on PostgreSQL's row lock and on
//!   SQLite's write lock, and the capacity count inside it sees every earlier admission.
//!
//! A database that already holds two active migrations of one mailbox keeps the oldest;
//! the others are marked failed with the code `duplicate_active_migration` and a message
//! that says why (Retry on them answers 409 while the first is active).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Locks {
    Table,
    Name,
    TakenAt,
}

const ACTIVE: &str = "('pending', 'validating', 'scheduled', 'processing', 'waiting_for_mx')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Locks::Table)
                    .col(
                        ColumnDef::new(Locks::Name)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Locks::TakenAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "INSERT INTO locks (name, taken_at) VALUES ('migration_admission', 0)",
        )
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE migrations SET status = 'failed', \
             error_code = 'duplicate_active_migration', \
             error_message = 'Another migration of the same mailbox was already in progress; this one was stopped so that two passes never copy into one mailbox.', \
             next_work = NULL, next_run_at = NULL, lease_owner = NULL, lease_until = NULL \
             WHERE status IN {ACTIVE} AND id NOT IN \
             (SELECT MIN(id) FROM migrations WHERE status IN {ACTIVE} GROUP BY dest_key)"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "CREATE UNIQUE INDEX idx_migrations_one_active ON migrations (dest_key) \
             WHERE status IN {ACTIVE}"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_migrations_one_active")
            .await?;
        manager
            .drop_table(Table::drop().table(Locks::Table).to_owned())
            .await
    }
}
