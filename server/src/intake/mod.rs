//! Where data enters Ferry: HTTP (the console's pages and the REST API). Later: the
//! support mailbox, uploaded files, MCP. Intake parses and authenticates, then calls the
//! service layer; it holds no business rule of its own.

pub mod cli;
pub mod http;
