//! Runs one step end to end: a mail migration between two IMAP servers, with a
//! checkpoint after every batch, the removal of what it copied, and the short looks at a
//! server before (`probe`), and the support mailbox's reading (`support`). The only module that opens protocol connections.

pub mod checkpoint;
pub mod items;
pub mod mail;
pub mod probe;
pub mod support;
