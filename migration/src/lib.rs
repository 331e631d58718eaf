//! Ferry's schema, applied by `ferry serve` (and every other command that opens the
//! database) before anything else runs.
//!
//! Append-only: a migration that has landed is never edited; a change is a new file.
//! Schema only: demo data lives in `seeds/` and is applied by `ferry seed`.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_accounts;
mod m20261121_000002_audit;
mod m20261121_000003_outbox;
mod m20261121_000004_migrations;
mod m20261121_000005_settings;
mod m20261130_000006_ledger;
mod m20261130_000007_one_active;
mod m20261130_000008_login_failures;
mod m20261130_000009_customer_news;
mod m20261130_000010_desk;
mod m20261130_000011_uploads;
mod m20261201_000012_tickets;
mod m20261201_000013_idempotency;
mod m20261201_000014_reply_to;
mod m20261201_000015_outbox_attachments;
mod m20261201_000016_projects;
mod m20261201_000017_kinds;
mod m20261201_000018_upload_files;
mod m20261201_000019_ledger_version;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_accounts::Migration),
            Box::new(m20261121_000002_audit::Migration),
            Box::new(m20261121_000003_outbox::Migration),
            Box::new(m20261121_000004_migrations::Migration),
            Box::new(m20261121_000005_settings::Migration),
            Box::new(m20261130_000006_ledger::Migration),
            Box::new(m20261130_000007_one_active::Migration),
            Box::new(m20261130_000008_login_failures::Migration),
            Box::new(m20261130_000009_customer_news::Migration),
            Box::new(m20261130_000010_desk::Migration),
            Box::new(m20261130_000011_uploads::Migration),
            Box::new(m20261201_000012_tickets::Migration),
            Box::new(m20261201_000013_idempotency::Migration),
            Box::new(m20261201_000014_reply_to::Migration),
            Box::new(m20261201_000015_outbox_attachments::Migration),
            Box::new(m20261201_000016_projects::Migration),
            Box::new(m20261201_000017_kinds::Migration),
            Box::new(m20261201_000018_upload_files::Migration),
            Box::new(m20261201_000019_ledger_version::Migration),
        ]
    }
}
