//! Who did something, for the audit log.

use std::fmt;

/// Who did something, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A staff member signed in to the console (their account id and email).
    User { id: super::UserId, email: String },
    /// An API token, by its name.
    Token { id: super::TokenId, name: String },
    /// An administrator at a shell running a `ferry` command.
    Cli,
    /// Ferry itself: the scheduler, the dispatcher, start-up.
    System,
    /// The customer, on their migration's page (reached with its link).
    Customer,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User { email, .. } => write!(f, "user:{email}"),
            Actor::Token { name, .. } => write!(f, "token:{name}"),
            Actor::Cli => f.write_str("cli"),
            Actor::System => f.write_str("system"),
            Actor::Customer => f.write_str("customer"),
        }
    }
}
