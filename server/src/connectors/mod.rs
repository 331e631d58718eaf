//! Protocol IO only: endpoints and cursors in, items and cursors out. Connectors know
//! nothing of jobs, tenants or the database.

pub mod cards;
pub mod dav;
pub mod dns;
pub mod imap;
pub mod net;
pub mod tls;
