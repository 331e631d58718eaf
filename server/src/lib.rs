//! Ferry moves customers' mail, contacts and calendars from their old provider into the
//! provider that runs it. See docs/ARCHITECTURE.md for the map of this crate.
//!
//! Modules in data-flow order: `config` and `app` compose everything; `intake` is where
//! requests enter; `service` holds the rules of every action; `notify` delivers email;
//! `render` turns context into pages and emails; `store` is the database; `domain` is the
//! vocabulary all of them share; `crypto` keeps secrets.

pub mod app;
pub mod config;
pub mod connectors;
pub mod crypto;
pub mod domain;
pub mod intake;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod planner;
pub mod render;
pub mod scheduler;
pub mod seed;
pub mod service;
pub mod store;
pub mod sync;
