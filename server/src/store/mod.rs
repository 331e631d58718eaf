//! The only module that names `sea_orm`: it opens the database (SQLite or PostgreSQL),
//! applies the schema, and maps rows to the records in [`crate::domain`].
//!
//! Reads are methods of [`Store`]. Writes that a user cares about go through a [`Tx`],
//! so that a change, its audit event and its notification commit together or not at all.

mod accounts;
mod audit;
mod entities;
mod idempotency;
mod leases;
mod login_failures;
mod migrations;
mod outbox;
mod passes;
mod projects;
mod settings;
mod tickets;
mod uploads;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqlErr, TransactionTrait,
};

pub use accounts::NewUser;
pub use audit::{AuditFilter, MAX_AUDIT_PAGE};
pub use idempotency::KeptKey;
pub use leases::ClaimLimits;
pub use migrations::{MigrationFilter, NewMigration, StatusChange, dest_key};
pub use outbox::OutboxFilter;
pub use passes::{FolderCounts, PassEnd, PlannedFolder};
pub use projects::{NewProject, ProjectChange, ProjectFilter};
pub use tickets::{MailSource, NewAttachment, NewTicketMessage, ThreadText, TicketFilter};
pub use uploads::{NewFileUpload, NewUpload};

/// The domain's ids are the tables' integer keys: usable in a query as they are.
macro_rules! id_columns {
    ($($id:ty),+) => {$(
        impl From<$id> for sea_orm::Value {
            fn from(id: $id) -> Self {
                id.0.into()
            }
        }

        impl From<$id> for i64 {
            fn from(id: $id) -> Self {
                id.0
            }
        }
    )+};
}

id_columns!(
    crate::domain::MigrationId,
    crate::domain::UserId,
    crate::domain::TokenId,
    crate::domain::OutboxId,
    crate::domain::PassId
);

/// How long a statement waits for SQLite's write lock before it fails.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections in the pool: SQLite serialises writers anyway; PostgreSQL gets a few per
/// process so the console stays responsive while workers write.
const MAX_CONNECTIONS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is already taken (an email, a token name).
    #[error("{0} already exists")]
    Duplicate(&'static str),
    #[error("{0} was not found")]
    NotFound(&'static str),
    /// The destination mailbox already has an active migration (the database's
    /// partial unique index said so).
    #[error("the mailbox already has an active migration")]
    ActiveMigrationExists,
    #[error("Stored data is not valid: {0}")]
    Corrupt(String),
    #[error("Database error: {0}")]
    Db(#[from] DbErr),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A write that may make a migration active: the one-active-per-mailbox index's
/// refusal becomes [`StoreError::ActiveMigrationExists`].
fn active_conflict_or(err: DbErr) -> StoreError {
    match err.sql_err() {
        // The other unique index of the table (a customer page token) is not the rule
        // of one active migration per mailbox; both databases name it in the message.
        Some(SqlErr::UniqueConstraintViolation(what)) if what.contains("customer_token") => {
            StoreError::Db(err)
        }
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::ActiveMigrationExists,
        _ => StoreError::Db(err),
    }
}

fn duplicate_or(err: DbErr, what: &'static str) -> StoreError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Duplicate(what),
        _ => StoreError::Db(err),
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

/// A transaction; dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: DatabaseTransaction,
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(MAX_CONNECTIONS)
            .connect_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        let db = Database::connect(options)
            .await
            .with_context(|| format!("Failed to open the database {}", redact_url(url)))?;
        if db.get_database_backend() == DbBackend::Sqlite {
            // WAL lets the console read while a worker writes; the setting is kept in
            // the file. busy_timeout is per connection (sqlx sets it too).
            db.execute_unprepared("PRAGMA journal_mode = WAL;").await?;
            db.execute_unprepared(&format!(
                "PRAGMA busy_timeout = {};",
                SQLITE_BUSY_TIMEOUT.as_millis()
            ))
            .await?;
        }
        Migrator::up(&db, None)
            .await
            .context("Failed to apply the database schema")?;
        Ok(Self { db })
    }

    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Postgres => "postgres",
            DbBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(Tx {
            inner: self.db.begin().await?,
        })
    }

    /// Whether the database answers; for `/healthz`.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }

    pub async fn close(self) -> StoreResult<()> {
        Ok(self.db.close().await?)
    }
}

impl Tx {
    pub async fn commit(self) -> StoreResult<()> {
        Ok(self.inner.commit().await?)
    }
}

/// A database URL fit for an error message: the password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_the_password_of_a_database_url() {
        assert_eq!(
            super::redact_url("postgres://ferry:s3cret@db:5432/ferry"),
            "postgres://ferry:***@db:5432/ferry"
        );
        assert_eq!(
            super::redact_url("sqlite://data/ferry.db"),
            "sqlite://data/ferry.db"
        );
    }
}
