//! Ferry's end-to-end suite: one test binary, real servers (Dovecot, aiosmtpd,
//! PostgreSQL, SQLite), no mocks.

mod api;
mod api_guard;
mod browser;
mod cli;
mod console;
mod contacts;
mod customer;
mod console_desk;
mod console_import;
mod console_migrations;
mod cyrus;
mod dav;
mod engine;
mod hardening;
mod harness;
mod lifecycle;
mod migrate;
mod migrations_api;
mod projects;
mod store;
mod tickets;
mod tidy;
