//! Every error code Ferry shows: in API error bodies, a migration's `error.code`, the
//! console and the emails. One enum, so a code is never a string typed twice; the
//! OpenAPI document lists its values and a test checks docs/api-guide.md describes each.

use std::fmt;
use std::str::FromStr;

/// A stable, snake_case error code: scripts branch on it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    poem_openapi::Enum,
)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum ErrorCode {
    // The request itself.
    MissingToken,
    InvalidToken,
    InsufficientScope,
    Forbidden,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    LengthRequired,
    PayloadTooLarge,
    UriTooLong,
    UnsupportedMediaType,
    ValidationFailed,
    InternalError,
    // A request that conflicts with the migration's state, or with capacity.
    ActiveMigrationExists,
    MigrationCapacityReached,
    MigrationActive,
    MigrationRunning,
    NotCancellable,
    NotPausable,
    NotPaused,
    ProjectActive,
    NotRetryable,
    NotScheduled,
    NotSyncable,
    NotWaitingForMx,
    WorkPending,
    StatusChanged,
    /// A ticket's list whose migrations were made already.
    ListUsed,
    /// An Idempotency-Key sent again with another request.
    IdempotencyKeyReused,
    /// An Idempotency-Key whose first request is still running.
    IdempotencyKeyInProgress,
    /// Too many writes by this token in the last minute.
    RateLimited,
    /// Ferry's disk has no room for an uploaded file.
    InsufficientStorage,
    Starting,
    CredentialsPurged,
    // Reaching a customer's server (test-connection, validation, a pass).
    Dns,
    PrivateTarget,
    Tcp,
    Timeout,
    Tls,
    Auth,
    Protocol,
    // A pass that did not end well.
    CopyFailed,
    Incomplete,
    /// Written by the schema migration that made one active migration per mailbox a
    /// database rule, on the duplicates it stopped: rows carry it, so it must read back.
    DuplicateActiveMigration,
}

/// Why a migration stopped and what a person does next, in plain words (the server's
/// own words stay in the migration's error message, for staff).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub what: &'static str,
    pub next: &'static str,
}

impl Failure {
    /// The plain words for a migration stopped with `code`.
    pub fn of(code: Option<ErrorCode>) -> Self {
        let (what, next) = match code {
            Some(ErrorCode::Auth) => (
                "A server refused the login.",
                "Ask the customer for the current password, type it beside Retry and press Store and retry.",
            ),
            Some(ErrorCode::Dns) => (
                "A server's name does not resolve.",
                "Check the server's name with the customer; Retry once it resolves, or request the migration again with the right name.",
            ),
            Some(ErrorCode::PrivateTarget) => (
                "A server is on a private network Ferry may not reach.",
                "Request the migration again with the server's public name.",
            ),
            Some(ErrorCode::Tcp) => (
                "A server did not accept the connection.",
                "Check that the server is up and its port is right, then Retry.",
            ),
            Some(ErrorCode::Timeout) => (
                "A server stopped answering.",
                "Retry later; nothing copied is copied twice.",
            ),
            Some(ErrorCode::Tls) => (
                "The secure connection to a server failed.",
                "Check the security (SSL/TLS or STARTTLS) and the port, then Retry.",
            ),
            Some(ErrorCode::Protocol) => (
                "A server answered something Ferry does not understand.",
                "Retry; if it happens again, send the details to Ferry's maintainers.",
            ),
            Some(ErrorCode::CopyFailed) => (
                "Some messages could not be copied.",
                "See the reasons in the pass report, then Retry; what is copied is not copied again.",
            ),
            Some(ErrorCode::DuplicateActiveMigration) => (
                "Another migration of the same mailbox was already in progress.",
                "Let that one finish, then Retry this one or delete its record.",
            ),
            Some(ErrorCode::Incomplete) => (
                "A pass could not account for every message.",
                "Retry: it copies what is missing.",
            ),
            _ => ("It stopped on an error.", "See the details, then Retry."),
        };
        Self { what, next }
    }
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 44] = [
        Self::MissingToken,
        Self::InvalidToken,
        Self::InsufficientScope,
        Self::Forbidden,
        Self::BadRequest,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::LengthRequired,
        Self::PayloadTooLarge,
        Self::UriTooLong,
        Self::UnsupportedMediaType,
        Self::ValidationFailed,
        Self::InternalError,
        Self::ActiveMigrationExists,
        Self::MigrationCapacityReached,
        Self::MigrationActive,
        Self::MigrationRunning,
        Self::NotCancellable,
        Self::NotPausable,
        Self::NotPaused,
        Self::ProjectActive,
        Self::NotRetryable,
        Self::NotScheduled,
        Self::NotSyncable,
        Self::NotWaitingForMx,
        Self::WorkPending,
        Self::StatusChanged,
        Self::ListUsed,
        Self::IdempotencyKeyReused,
        Self::IdempotencyKeyInProgress,
        Self::RateLimited,
        Self::InsufficientStorage,
        Self::Starting,
        Self::CredentialsPurged,
        Self::Dns,
        Self::PrivateTarget,
        Self::Tcp,
        Self::Timeout,
        Self::Tls,
        Self::Auth,
        Self::Protocol,
        Self::CopyFailed,
        Self::Incomplete,
        Self::DuplicateActiveMigration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::Forbidden => "forbidden",
            Self::BadRequest => "bad_request",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::LengthRequired => "length_required",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UriTooLong => "uri_too_long",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::InternalError => "internal_error",
            Self::ActiveMigrationExists => "active_migration_exists",
            Self::MigrationCapacityReached => "migration_capacity_reached",
            Self::MigrationActive => "migration_active",
            Self::MigrationRunning => "migration_running",
            Self::NotCancellable => "not_cancellable",
            Self::NotPausable => "not_pausable",
            Self::NotPaused => "not_paused",
            Self::ProjectActive => "project_active",
            Self::NotRetryable => "not_retryable",
            Self::NotScheduled => "not_scheduled",
            Self::NotSyncable => "not_syncable",
            Self::NotWaitingForMx => "not_waiting_for_mx",
            Self::WorkPending => "work_pending",
            Self::StatusChanged => "status_changed",
            Self::ListUsed => "list_used",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyKeyInProgress => "idempotency_key_in_progress",
            Self::RateLimited => "rate_limited",
            Self::InsufficientStorage => "insufficient_storage",
            Self::Starting => "starting",
            Self::CredentialsPurged => "credentials_purged",
            Self::Dns => "dns",
            Self::PrivateTarget => "private_target",
            Self::Tcp => "tcp",
            Self::Timeout => "timeout",
            Self::Tls => "tls",
            Self::Auth => "auth",
            Self::Protocol => "protocol",
            Self::CopyFailed => "copy_failed",
            Self::Incomplete => "incomplete",
            Self::DuplicateActiveMigration => "duplicate_active_migration",
        }
    }

    /// The code for an HTTP status that reached the API without one of Ferry's bodies
    /// (the router's 404 or 405, a body limit's 413, …).
    pub fn for_http_status(status: u16) -> Self {
        match status {
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            411 => Self::LengthRequired,
            413 => Self::PayloadTooLarge,
            414 => Self::UriTooLong,
            415 => Self::UnsupportedMediaType,
            500.. => Self::InternalError,
            _ => Self::BadRequest,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown error code {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_and_serialises_as_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert_eq!(
                serde_json::to_value(code).ok(),
                Some(serde_json::Value::from(code.as_str()))
            );
        }
        // The OpenAPI schema is derived from the variants: ALL must have as many.
        let mut registry = poem_openapi::registry::Registry::new();
        <ErrorCode as poem_openapi::types::Type>::register(&mut registry);
        let listed = registry
            .schemas
            .get("ErrorCode")
            .map(|schema| schema.enum_items.len());
        assert_eq!(
            listed,
            Some(ErrorCode::ALL.len()),
            "ErrorCode::ALL lists every variant"
        );
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "no code twice");
        // The word the one-active schema migration writes into stopped duplicates.
        assert_eq!(
            "duplicate_active_migration".parse(),
            Ok(ErrorCode::DuplicateActiveMigration)
        );
    }
}
