//! An API token's scopes.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::FieldError;

/// What an API token may do. Each endpoint names the one scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    MigrationsRead,
    MigrationsWrite,
    /// Start a migration without a window, bypassing the notice rule.
    MigrationsOverride,
    AuditRead,
    /// Read and change the settings an admin changes in the console.
    SettingsAdmin,
    /// Read the support desk's tickets, their emails and files.
    TicketsRead,
    /// Answer, assign and close tickets, and make migrations from their lists.
    TicketsWrite,
    /// Read projects and their mailboxes.
    ProjectsRead,
    /// Create projects, add mailboxes, pause, resume, sync, retry, cancel, delete.
    ProjectsWrite,
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::MigrationsRead,
        Scope::MigrationsWrite,
        Scope::MigrationsOverride,
        Scope::AuditRead,
        Scope::SettingsAdmin,
        Scope::TicketsRead,
        Scope::TicketsWrite,
        Scope::ProjectsRead,
        Scope::ProjectsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MigrationsRead => "migrations:read",
            Scope::MigrationsWrite => "migrations:write",
            Scope::MigrationsOverride => "migrations:override",
            Scope::AuditRead => "audit:read",
            Scope::SettingsAdmin => "settings:admin",
            Scope::TicketsRead => "tickets:read",
            Scope::TicketsWrite => "tickets:write",
            Scope::ProjectsRead => "projects:read",
            Scope::ProjectsWrite => "projects:write",
        }
    }
}

impl FromStr for Scope {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| {
                let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                FieldError::new(
                    "scope",
                    format!("{s:?} is not a scope; use one of {}", known.join(", ")),
                )
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token's set of scopes, stored as a space-separated list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().collect())
    }

    pub fn parse_list(raw: &str) -> Result<Self, FieldError> {
        raw.split_whitespace()
            .map(Scope::from_str)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_stored_form() {
        let scopes = Scopes::parse_list("migrations:write  migrations:read").unwrap();
        assert_eq!(scopes.to_string(), "migrations:read migrations:write");
        assert!(scopes.contains(Scope::MigrationsRead));
        assert!(!scopes.contains(Scope::AuditRead));
    }

    #[test]
    fn names_the_scopes_it_knows_when_one_is_wrong() {
        let err = Scopes::parse_list("migrations:read mail:all").unwrap_err();
        assert!(err.message.contains("\"mail:all\" is not a scope"), "{err}");
        assert!(err.message.contains("audit:read"), "{err}");
    }
}
