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

/// One row of a list of mailboxes as a ticket's emails report it.
#[derive(Debug, Clone, Serialize)]
pub struct RowLine {
    /// The row's number in its file.
    pub row: usize,
    /// The file it is in; `None` for a request written in the email's text.
    pub file: Option<String>,
    /// The source mailbox, or what the row has in its place.
    pub mailbox: String,
    /// What became of it: "ready", "scheduled for …", "waiting for its logins to be
    /// checked", or empty when it has problems.
    pub outcome: String,
    /// Each problem as "the field: what to write instead".
    pub problems: Vec<String>,
}

/// The acknowledgement of a new ticket, with the report of the request it carried.
#[derive(Debug, Clone, Serialize)]
pub struct TicketReceived {
    pub number: i64,
    pub subject: String,
    pub rows: Vec<RowLine>,
    /// Files that held no readable list, with why.
    pub unreadable_lists: Vec<String>,
    /// The public CSV template.
    pub template_url: String,
    pub provider_name: String,
    pub support_contact: String,
}

impl Email for TicketReceived {
    fn name(&self) -> &'static str {
        "ticket_received"
    }
}

/// A staff member's answer in a ticket.
#[derive(Debug, Clone, Serialize)]
pub struct TicketReply {
    pub number: i64,
    pub text: String,
    pub by: String,
    pub provider_name: String,
    pub support_contact: String,
}

impl Email for TicketReply {
    fn name(&self) -> &'static str {
        "ticket_reply"
    }
}

/// What was made of a ticket's list: the migrations scheduled and the rows to fix.
#[derive(Debug, Clone, Serialize)]
pub struct TicketRows {
    pub number: i64,
    pub file: Option<String>,
    pub rows: Vec<RowLine>,
    pub provider_name: String,
    pub support_contact: String,
}

impl Email for TicketRows {
    fn name(&self) -> &'static str {
        "ticket_rows"
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
    /// Where this email's reader follows the migration: the customer's page for the
    /// customer, the console for staff.
    pub url: String,
    /// The provider's name and how customers reach support (empty: not shown).
    pub provider_name: String,
    pub support_contact: String,
    /// This copy is staff's; `customer_copy` says whether the customer got one too.
    pub for_staff: bool,
    pub customer_copy: bool,
}

/// What a migration has copied over all its passes, for emails that would otherwise
/// count only the last one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overall {
    pub passes: u32,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
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
        overall: Overall,
    },
    /// The pre-MX pass is done: change the MX records.
    MxNeeded {
        need: &'static str,
        pass: PassFacts,
        report: serde_json::Value,
        overall: Overall,
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
        overall: Overall,
    },
    Failed {
        /// Why, in plain words; `error` is the server's own words, for staff only.
        what: &'static str,
        error: String,
    },
    /// Staff stopped it; the customer is told (with the reason) unless staff chose not.
    Stopped {
        stopped: bool,
        reason: Option<String>,
        notify: bool,
    },
}

impl MigrationNews {
    pub fn mx_needed(
        pass: PassFacts,
        report: serde_json::Value,
        overall: Overall,
        grace: String,
    ) -> Self {
        Self::MxNeeded {
            need: "mx",
            pass,
            report,
            overall,
            grace,
        }
    }

    pub fn stopped(reason: Option<String>, notify: bool) -> Self {
        Self::Stopped {
            stopped: true,
            reason,
            notify,
        }
    }

    /// The state this news tells, as a key: an email whose key is the last one sent
    /// about the migration is not sent again ("scheduled" three times, "change your MX"
    /// twice). `window` tells one schedule from another.
    pub fn key(&self, window: Option<chrono::DateTime<chrono::Utc>>) -> String {
        match self {
            Self::Received {} => "received".into(),
            Self::Scheduled { .. } => match window {
                Some(at) => format!("scheduled:{}", at.timestamp()),
                None => "scheduled:now".into(),
            },
            Self::PassStarted { pass } => format!("pass_started:{}", pass.number),
            Self::PassFinished { pass, .. } => format!("pass_finished:{}", pass.number),
            Self::MxNeeded { .. } => "mx_needed".into(),
            Self::PasswordNeeded { side, .. } => format!("password_needed:{side}"),
            Self::Completed { .. } => "completed".into(),
            Self::Failed { .. } => "failed".into(),
            Self::Stopped { .. } => "stopped".into(),
        }
    }

    /// Whether the customer gets this news: what they must act on and how their
    /// migration ends always; the progress of the work in hand (a pass starting or
    /// finishing, a first schedule) only while `notify_customer` (a staff sync or retry
    /// may leave the customer out); a stop as staff chose.
    pub fn for_customer(&self, notify_customer: bool) -> bool {
        match self {
            Self::Received {}
            | Self::Scheduled { rescheduled: true }
            | Self::MxNeeded { .. }
            | Self::PasswordNeeded { .. }
            | Self::Completed { .. }
            | Self::Failed { .. } => true,
            Self::Scheduled { rescheduled: false }
            | Self::PassStarted { .. }
            | Self::PassFinished { .. } => notify_customer,
            Self::Stopped { notify, .. } => *notify,
        }
    }

    /// The customer must do something (change MX records, give a new password).
    pub fn is_action_needed(&self) -> bool {
        matches!(self, Self::MxNeeded { .. } | Self::PasswordNeeded { .. })
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
            Self::Stopped { .. } => "migration_stopped",
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

/// One mailbox of a project as its emails report it.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectLine {
    pub mailbox: String,
    /// The status in the customer's words.
    pub status: String,
    pub copied: u64,
    pub failed: u64,
    /// Why it stopped, or what the customer must do.
    pub problem: Option<String>,
}

/// What a project's email is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectNews {
    /// The project exists: its ID, its tracking page and its window.
    Created,
    /// The password Ferry chose, in an email of its own.
    Password,
    /// The daily digest while it runs.
    Digest,
    /// Every mailbox is finished: the report.
    Completed,
}

/// A project's email to its requester.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectEmail {
    pub news: ProjectNews,
    pub name: String,
    pub code: String,
    /// The tracking page (`/track`).
    pub url: String,
    pub window: Option<String>,
    pub awaiting_approval: bool,
    /// Only in the `Password` email, and only when Ferry generated it.
    pub password: Option<String>,
    pub mailboxes: Vec<ProjectLine>,
    pub completed: u64,
    pub failed: u64,
    pub active: u64,
    pub provider_name: String,
    pub support_contact: String,
}

impl Email for ProjectEmail {
    fn name(&self) -> &'static str {
        match self.news {
            ProjectNews::Created => "project_created",
            ProjectNews::Password => "project_password",
            ProjectNews::Digest => "project_digest",
            ProjectNews::Completed => "project_completed",
        }
    }
}

/// Example values, one per email, for the tests that render every template.
#[cfg(test)]
pub mod examples {
    use super::*;

    pub fn projects() -> Vec<ProjectEmail> {
        let base = ProjectEmail {
            news: ProjectNews::Created,
            name: "Acme GmbH".into(),
            code: "FY-7K3M-Q9P2".into(),
            url: "https://ferry.example/track".into(),
            window: Some("Friday 4 December 2026 at 22:00 CET".into()),
            awaiting_approval: false,
            password: None,
            mailboxes: vec![
                ProjectLine {
                    mailbox: "ana@acme.example".into(),
                    status: "complete".into(),
                    copied: 41_003,
                    failed: 0,
                    problem: None,
                },
                ProjectLine {
                    mailbox: "bob@acme.example".into(),
                    status: "stopped on a problem".into(),
                    copied: 0,
                    failed: 0,
                    problem: Some("the old server refused the password".into()),
                },
            ],
            completed: 1,
            failed: 1,
            active: 0,
            provider_name: "Example Mail".into(),
            support_contact: "support@provider.example".into(),
        };
        vec![
            base.clone(),
            ProjectEmail {
                news: ProjectNews::Password,
                password: Some("k3Rtq9ZmPw2xY7cVbN4a".into()),
                ..base.clone()
            },
            ProjectEmail {
                news: ProjectNews::Digest,
                active: 1,
                completed: 1,
                failed: 0,
                ..base.clone()
            },
            ProjectEmail {
                news: ProjectNews::Completed,
                ..base
            },
        ]
    }

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
            url: "https://ferry.example/track/Zm9vYmFy".into(),
            provider_name: "Example Mail".into(),
            support_contact: "support@provider.example, +33 1 23 45 67 89".into(),
            for_staff: false,
            customer_copy: true,
        }
    }

    fn pass() -> PassFacts {
        PassFacts {
            number: 1,
            kind: "pre_mx".into(),
            label: "first copy".into(),
        }
    }

    fn report() -> serde_json::Value {
        serde_json::json!({
            "totals": {"copied": 3, "skipped": 1, "failed": 1, "bytes": 2_500_000},
            "folders": [{"source_path": "INBOX", "copied": 3, "skipped": 1, "failed": 1,
                "failures": [{"uid": 9, "item": null, "reason": "too big"}]}],
        })
    }

    fn overall() -> Overall {
        Overall {
            passes: 2,
            copied: 41_003,
            skipped: 12,
            failed: 1,
            bytes: 3_200_000_000,
        }
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
                overall: overall(),
            },
            MigrationNews::mx_needed(pass(), report(), overall(), "1 hour".into()),
            MigrationNews::password_needed(
                "source",
                "ana@old.example".into(),
                "the server refused the login".into(),
            ),
            MigrationNews::Completed {
                pass: pass(),
                report: report(),
                overall: overall(),
            },
            MigrationNews::Failed {
                what: "A server stopped answering.",
                error: "the source server: no answer within 60 s".into(),
            },
            MigrationNews::stopped(Some("the customer asked to wait".into()), true),
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

    fn row_lines() -> Vec<RowLine> {
        vec![
            RowLine {
                row: 2,
                file: Some("mailboxes.csv".into()),
                mailbox: "ana@old.example".into(),
                outcome: "scheduled for Tuesday 1 December 2026 at 21:00 CET".into(),
                problems: vec![],
            },
            RowLine {
                row: 3,
                file: Some("mailboxes.csv".into()),
                mailbox: "bob@old.example".into(),
                outcome: String::new(),
                problems: vec![
                    "source password: the password is empty; write the mailbox's password".into(),
                ],
            },
        ]
    }

    pub fn ticket_received() -> TicketReceived {
        TicketReceived {
            number: 12,
            subject: "Please move our mailboxes".into(),
            rows: row_lines(),
            unreadable_lists: vec![
                "photo.xlsx: the file is not a spreadsheet Ferry can read".into(),
            ],
            template_url: "https://ferry.example/templates/migration-request.csv".into(),
            provider_name: "Example Mail".into(),
            support_contact: "support@provider.example".into(),
        }
    }

    pub fn ticket_reply() -> TicketReply {
        TicketReply {
            number: 12,
            text: "Hello Ana,\n\nrow 3 needs the password.".into(),
            by: "Bob".into(),
            provider_name: "Example Mail".into(),
            support_contact: String::new(),
        }
    }

    pub fn ticket_rows() -> TicketRows {
        TicketRows {
            number: 12,
            file: Some("mailboxes.csv".into()),
            rows: row_lines(),
            provider_name: "Example Mail".into(),
            support_contact: "support@provider.example".into(),
        }
    }

    pub fn test_email() -> TestEmail {
        TestEmail {
            to: "desk@provider.example".into(),
            by: "user:bob@example.com".into(),
        }
    }
}
