//! The service layer: every action a person or a program can take, with its rules,
//! whichever door it comes through (console, API, command line). Each action
//! validates its input, writes its change, its audit event and its notifications in one
//! transaction, and then wakes the dispatcher.

mod accounts;
mod desk;
mod items;
mod actions;
mod customers;
mod lifecycle;
mod lists;
mod login_limit;
mod migrations;
mod projects;
mod public;
mod request;
mod settings;
mod tickets;
mod uploads;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::domain::{ErrorCode, FieldError, MigrationId};
use crate::notify::Dispatcher;
use crate::render::Renderer;
use crate::store::{Store, StoreError};

pub use accounts::{Idempotency, LoginError, MIN_PASSWORD_LEN, NewStaff, SignedIn};
pub use customers::{ProjectSession, ProjectSignInError};
pub(crate) use lifecycle::Step;
pub use lists::RowReport;
pub(crate) use migrations::imap_endpoint;
pub use migrations::{ConnectionProblem, FolderSummary, MigrationDetail};
pub use projects::{
    ActionReport, MIN_PROJECT_PASSWORD, ProjectAction, ProjectInput, ProjectMade, ProjectView,
    project_status_words,
};
pub use public::{PublicAnswer, PublicOutcome, PublicRequest};
pub use settings::{LiveSettings, RELOAD_EVERY, SettingView};
pub use tickets::{
    FoundList, IncomingEmail, Received, SupportState, SupportStatus, TicketChange, TicketView,
};
pub use uploads::IncomingFile;

/// What every action needs; cheap to clone. Its parts are private: the use cases are
/// methods, one file each (`accounts`, `migrations`, `actions`, `lifecycle`,
/// `settings`), and the few readers outside (pages that list, the scheduler's claims,
/// the worker in `scheduler::runner`) go through the accessors below.
#[derive(Debug, Clone)]
pub struct Services {
    store: Store,
    renderer: Arc<Renderer>,
    dispatcher: Dispatcher,
    cipher: Arc<crate::crypto::Cipher>,
    /// Read through [`Services::settings`]; admins change some of them in the console.
    live_settings: Arc<LiveSettings>,
    /// The time, for every rule and record of the service and the workers.
    clock: SharedClock,
    /// The work this process runs now, by migration: a stop cancels it at once.
    running: Arc<std::sync::Mutex<HashMap<MigrationId, CancellationToken>>>,
    /// Wakes the workers when work may have become due (a request, an action).
    work_ready: Arc<tokio::sync::Notify>,
    support: Arc<std::sync::Mutex<tickets::SupportStatus>>,
}

impl Services {
    pub fn new(
        store: Store,
        renderer: Renderer,
        dispatcher: Dispatcher,
        cipher: crate::crypto::Cipher,
        live_settings: LiveSettings,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            renderer: Arc::new(renderer),
            dispatcher,
            cipher: Arc::new(cipher),
            live_settings: Arc::new(live_settings),
            clock,
            running: Arc::default(),
            work_ready: Arc::new(tokio::sync::Notify::new()),
            support: Arc::default(),
        }
    }

    /// The database, for reads outside the service (lists, the audit log, claims) and
    /// for the worker.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    pub(crate) fn cipher(&self) -> &Arc<crate::crypto::Cipher> {
        &self.cipher
    }

    /// What time it is, by the clock the composition root chose.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Notes the work running for a migration in this process, so a stop reaches it at
    /// once (a worker in another process sees the stop at its next heartbeat).
    pub(crate) fn register_running(&self, id: MigrationId, stop: CancellationToken) {
        self.running().insert(id, stop);
    }

    pub(crate) fn unregister_running(&self, id: MigrationId) {
        self.running().remove(&id);
    }

    /// Stops the work running for a migration in this process, if any.
    pub(crate) fn stop_running(&self, id: MigrationId) {
        if let Some(stop) = self.running().get(&id) {
            stop.cancel();
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<MigrationId, CancellationToken>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn wake_workers(&self) {
        self.work_ready.notify_one();
    }

    /// Resolves when [`Services::wake_workers`] was called (the claimer waits on it).
    pub async fn work_ready(&self) {
        self.work_ready.notified().await;
    }
}

/// Why an action did not happen, in words fit for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// One error per field that does not parse or breaks a rule.
    #[error("Invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    /// The action conflicts with the current state (409).
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// Try again later (503, retryable).
    #[error("{message}")]
    Unavailable { code: ErrorCode, message: String },
    /// A file larger than the limit (413).
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            StoreError::ActiveMigrationExists => ServiceError::Conflict {
                code: ErrorCode::ActiveMigrationExists,
                message: "This mailbox already has a migration in progress; cancel it or wait for it to finish.".into(),
            },
            other => ServiceError::Internal(other.into()),
        }
    }
}

impl ServiceError {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError::new(field, message)])
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
