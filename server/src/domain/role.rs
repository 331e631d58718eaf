//! A staff account's role.

use std::fmt;
use std::str::FromStr;

/// What a staff account may do in the console. Admins also manage accounts and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
        }
    }
}

impl FromStr for Role {
    type Err = super::FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "admin" => Ok(Role::Admin),
            "staff" => Ok(Role::Staff),
            other => Err(super::FieldError::new(
                "role",
                format!("{other:?} is not a role; use admin or staff"),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
