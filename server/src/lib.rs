//! Ferry moves customers' mail, contacts and calendars from their old provider into the
//! provider that runs it. See docs/ARCHITECTURE.md for the map of this crate.
//!
//! Modules in the order data flows through them (a tidy test keeps this list whole):
//! - `config`: one typed `Settings`, layered from defaults, file, environment and flags;
//! - `app`: the composition root that builds everything below from the settings;
//! - `intake`: where requests enter (the console, the REST API, `ferry migrate`);
//! - `service`: the rules of every action a request takes;
//! - `scheduler`: the workers that lease due migrations and run their steps, and the cron jobs;
//! - `sync`: a step run end to end (the mail engine and its checkpoints);
//! - `planner`: pure decisions the engine asks for (which folder lands where);
//! - `connectors`: protocol IO (IMAP, DNS) and the one checked way to a customer's host;
//! - `store`: the database, the only module that sees a row;
//! - `notify`: the outbox's delivery over SMTP;
//! - `render`: templates turned into pages and emails;
//! - `domain`: the vocabulary all of them share, with no IO and no clock;
//! - `crypto`: secrets at rest, hashes and tokens;
//! - `clock`: the time, read through one value that tests can move forward;
//! - `logging`, `metrics`: what the process tells its operator;
//! - `seed`: demo data for a first look.

pub mod config;
pub mod app;
pub mod intake;
pub mod service;
pub mod scheduler;
pub mod sync;
pub mod planner;
pub mod connectors;
pub mod store;
pub mod notify;
pub mod render;
pub mod domain;
pub mod crypto;
pub mod clock;
pub mod logging;
pub mod metrics;
pub mod seed;
