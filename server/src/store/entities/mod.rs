//! Table definitions for sea-orm. Private to `store`: rows never leave it.

pub mod api_tokens;
pub mod audit_events;
pub mod outbox;
pub mod sessions;
pub mod users;
