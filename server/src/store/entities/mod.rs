//! Table definitions for sea-orm. Private to `store`: rows never leave it.

pub mod api_tokens;
pub mod audit_events;
pub mod idempotency_keys;
pub mod login_failures;
pub mod migration_folders;
pub mod migration_ledger;
pub mod migration_passes;
pub mod migrations;
pub mod outbox;
pub mod projects;
pub mod sessions;
pub mod settings;
pub mod ticket_attachments;
pub mod ticket_messages;
pub mod tickets;
pub mod uploads;
pub mod users;
