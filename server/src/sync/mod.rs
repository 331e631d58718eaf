//! Runs one step end to end: for now, a mail migration between two IMAP servers, with
//! a checkpoint after every batch.

pub mod checkpoint;
pub mod mail;
