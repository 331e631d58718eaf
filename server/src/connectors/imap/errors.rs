//! How IMAP work fails: a connection or login that did not happen (`ConnectError`,
//! with the class the API and the emails name), an operation the server refused or a
//! connection that broke (`OpError`), and the deadline every wait for a server has.

use std::time::Duration;

use super::proto::server_words;
use crate::connectors::net::{Pulse, Reach, ReachError};
use crate::domain::ErrorCode;

/// Why a connection or login failed, for exit codes and API error codes.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("Cannot resolve {0}: {1}")]
    Dns(String, String),
    #[error("Refused to connect to {0}: {1}")]
    Target(String, String),
    #[error("Cannot reach {0}: {1}")]
    Connection(String, String),
    #[error("{0} gave no answer {1}")]
    Timeout(String, String),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("{0} refused the login: {1}")]
    Auth(String, String),
    #[error("{0} answered something unexpected: {1}")]
    Protocol(String, String),
}

impl ConnectError {
    /// The server it happened with, as `host:port`.
    pub fn server(&self) -> &str {
        match self {
            Self::Dns(s, _)
            | Self::Target(s, _)
            | Self::Connection(s, _)
            | Self::Timeout(s, _)
            | Self::Tls(s, _)
            | Self::Auth(s, _)
            | Self::Protocol(s, _) => s,
        }
    }

    /// The error code the API, the console and the emails use.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Dns(..) => ErrorCode::Dns,
            Self::Target(..) => ErrorCode::PrivateTarget,
            Self::Connection(..) => ErrorCode::Tcp,
            Self::Timeout(..) => ErrorCode::Timeout,
            Self::Tls(..) => ErrorCode::Tls,
            Self::Auth(..) => ErrorCode::Auth,
            Self::Protocol(..) => ErrorCode::Protocol,
        }
    }

    pub(super) fn reach(label: &str, err: ReachError) -> Self {
        let label = label.to_owned();
        match err {
            ReachError::Dns(_, why) => Self::Dns(label, why),
            err @ ReachError::Refused { .. } => Self::Target(label, err.to_string()),
            ReachError::Timeout(d) => {
                Self::Timeout(label, format!("to the connection within {d:?}"))
            }
            ReachError::Tcp(why) => Self::Connection(label, why),
        }
    }
}

/// `fut` with the connection step's deadline; `step` names what was awaited.
pub(crate) async fn connect_step<T>(
    reach: &Reach,
    label: &str,
    step: &str,
    fut: impl Future<Output = Result<T, ConnectError>>,
) -> Result<T, ConnectError> {
    let deadline = reach.connect_timeout;
    let done = tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Timeout(
                label.to_owned(),
                format!("to {step} within {deadline:?}"),
            ))
        });
    reach.alive_for(deadline);
    done
}

/// An error of one operation: the server said NO/BAD (a per-item failure), or the
/// connection broke (reconnect and resume).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("the server refused: {0}")]
    Refused(String),
    #[error("connection lost: {0}")]
    Connection(String),
}

impl From<async_imap::error::Error> for OpError {
    fn from(err: async_imap::error::Error) -> Self {
        use async_imap::error::Error;
        match err {
            Error::No(text) | Error::Bad(text) => OpError::Refused(server_words(&text)),
            other => OpError::Connection(other.to_string()),
        }
    }
}

impl From<std::io::Error> for OpError {
    fn from(err: std::io::Error) -> Self {
        OpError::Connection(err.to_string())
    }
}

/// The deadline of one wait and the work's pulse that its end beats.
pub(super) struct Wait {
    pub(super) deadline: Duration,
    pub(super) pulse: Option<Pulse>,
}

/// `fut` with the deadline of one wait for the server: a server that stops answering
/// is a broken connection (reconnect and resume), never a hang. An answer (or an
/// error) is a sign of life for the work.
pub(super) async fn timed<T, E: Into<OpError>>(
    wait: Wait,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, OpError> {
    match tokio::time::timeout(wait.deadline, fut).await {
        Ok(result) => {
            if let Some(pulse) = &wait.pulse {
                pulse.alive_for(wait.deadline);
            }
            result.map_err(Into::into)
        }
        Err(_) => Err(OpError::Connection(format!(
            "no answer within {:?}",
            wait.deadline
        ))),
    }
}
