//! One struct per email: what its templates may say. The renderer is strict, so a
//! template that names a field its struct does not have fails to render (in the tests,
//! which render every email from its `example()`), never sends an empty gap.

use crate::domain::MigrationId;
use serde::Serialize;

/// An email's context, and which templates (`email/NAME.txt` and `email/NAME.html`)
/// it fills.
pub trait Email: Serialize {
    fn name(&self) -> &'static str;
}

/// "Your Ferry account is ready", to a new staff account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountCreated {
    pub name: String,
    pub email: String,
    pub role: String,
    pub created_by: String,
    pub login_url: String,
}

impl Email for AccountCreated {
    fn name(&self) -> &'static str {
        "account_created"
    }
}

/// The settings page's test email.
#[derive(Debug, Clone, Serialize)]
pub struct TestEmail {
    pub to: String,
    pub by: String,
}

impl Email for TestEmail {
    fn name(&self) -> &'static str {
        "test_email"
    }
}

/// What every migration email may say about its migration (never a password).
#[derive(Debug, Clone, Serialize)]
pub struct MigrationFacts {
    pub id: MigrationId,
    pub status: String,
    /// "user on host".
    pub source: String,
    pub destination: String,
    /// The window in the migration's time zone, when it has one.
    pub window: Option<String>,
    pub time_zone: String,
    pub two_pass: bool,
    pub mx_domain: String,
    /// The provider's MX records ("10 mx1.provider.example").
    pub mx_hosts: Vec<String>,
    /// The migration's page in the console.
    pub url: String,
}

/// A pass as the emails name it.
#[derive(Debug, Clone, Serialize)]
pub struct PassFacts {
    pub number: u32,
    pub kind: String,
    /// "pre-MX pass", "post-MX pass", "synchronisation pass".
    pub label: String,
}

/// What happened to a migration, each with what its email says beyond the facts.
/// `report` is a pass's report as stored (`sync::mail::Report` in JSON).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MigrationNews {
    Received {},
    Scheduled {
        rescheduled: bool,
    },
    PassStarted {
        pass: PassFacts,
    },
    PassFinished {
        pass: PassFacts,
        report: serde_json::Value,
    },
    /// The pre-MX pass is done: change the MX records.
    MxNeeded {
        need: &'static str,
        pass: PassFacts,
        report: serde_json::Value,
        /// How long after the switch the last pass starts, for people.
        grace: String,
    },
    /// A login was refused: the customer must fix a password.
    PasswordNeeded {
        need: &'static str,
        /// "source" or "destination".
        side: String,
        account: String,
        error: String,
    },
    Completed {
        pass: PassFacts,
        report: serde_json::Value,
    },
    Failed {
        error: String,
    },
}

impl MigrationNews {
    pub fn mx_needed(pass: PassFacts, report: serde_json::Value, grace: String) -> Self {
        Self::MxNeeded {
            need: "mx",
            pass,
            report,
            grace,
        }
    }

    pub fn password_needed(side: &str, account: String, error: String) -> Self {
        Self::PasswordNeeded {
            need: "password",
            side: side.to_owned(),
            account,
            error,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Received {} => "migration_received",
            Self::Scheduled { .. } => "migration_scheduled",
            Self::PassStarted { .. } => "pass_started",
            Self::PassFinished { .. } => "pass_finished",
            Self::MxNeeded { .. } | Self::PasswordNeeded { .. } => "action_needed",
            Self::Completed { .. } => "migration_completed",
            Self::Failed { .. } => "migration_failed",
        }
    }
}

/// A migration email's whole context: the facts and the news, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationEmail<'a> {
    #[serde(flatten)]
    pub facts: &'a MigrationFacts,
    #[serde(flatten)]
    pub news: &'a MigrationNews,
}

impl Email for MigrationEmail<'_> {
    fn name(&self) -> &'static str {
        self.news.name()
    }
}

/// Example values, one per email, for the tests that render every template.
#[cfg(test)]
pub mod examples {
    use super::*;

    pub fn facts() -> MigrationFacts {
        MigrationFacts {
            id: MigrationId(7),
            status: "scheduled".into(),
            source: "ana@old.example on imap.old.example".into(),
            destination: "ana@new.example on imap.provider.example".into(),
            window: Some("Tuesday 1 December 2026 at 21:00 CET".into()),
            time_zone: "Europe/Berlin".into(),
            two_pass: true,
            mx_domain: "new.example".into(),
            mx_hosts: vec!["10 mx1.provider.example".into()],
            url: "https://ferry.example/migrations/7".into(),
        }
    }

    fn pass() -> PassFacts {
        PassFacts {
            number: 1,
            kind: "pre_mx".into(),
            label: "pre-MX pass".into(),
        }
    }

    fn report() -> serde_json::Value {
        serde_json::json!({
            "totals": {"copied": 3, "skipped": 1, "failed": 1, "bytes": 2_500_000},
            "folders": [{"source_path": "INBOX", "copied": 3, "skipped": 1, "failed": 1,
                "failures": [{"uid": 9, "reason": "too big"}]}],
        })
    }

    /// Every kind of migration news, in a stable order.
    pub fn news() -> Vec<MigrationNews> {
        vec![
            MigrationNews::Received {},
            MigrationNews::Scheduled { rescheduled: false },
            MigrationNews::Scheduled { rescheduled: true },
            MigrationNews::PassStarted { pass: pass() },
            MigrationNews::PassFinished {
                pass: pass(),
                report: report(),
            },
            MigrationNews::mx_needed(pass(), report(), "1 hour".into()),
            MigrationNews::password_needed(
                "source",
                "ana@old.example".into(),
                "the server refused the login".into(),
            ),
            MigrationNews::Completed {
                pass: pass(),
                report: report(),
            },
            MigrationNews::Failed {
                error: "the source server: no answer within 60 s".into(),
            },
        ]
    }

    pub fn account_created() -> AccountCreated {
        AccountCreated {
            name: "Ana <script>".into(),
            email: "ana@example.com".into(),
            role: "staff".into(),
            created_by: "bob@example.com".into(),
            login_url: "https://ferry.example/login".into(),
        }
    }

    pub fn test_email() -> TestEmail {
        TestEmail {
            to: "desk@provider.example".into(),
            by: "user:bob@example.com".into(),
        }
    }
}
