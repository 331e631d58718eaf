//! The records Ferry keeps, as the rest of the code sees them (the store maps its rows
//! to these; nothing outside `store` sees a row).

use chrono::{DateTime, Utc};

use super::{EmailAddress, OutboxId, Role, Scopes, TokenId, UserId};

/// A staff account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: EmailAddress,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A console session, looked up by the digest of its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// An API token; the secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub name: String,
    /// The first characters of the token, to tell tokens apart in a list.
    pub prefix: String,
    pub scopes: Scopes,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    /// A JSON object with the details of the action (never a secret).
    pub detail: serde_json::Value,
    pub ip: Option<String>,
}

/// What to record in the audit log.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub actor: super::Actor,
    pub action: &'static str,
    pub subject: Option<(&'static str, String)>,
    pub detail: serde_json::Value,
    pub ip: Option<String>,
}

impl NewAuditEvent {
    pub fn new(actor: &super::Actor, action: &'static str) -> Self {
        Self {
            actor: actor.clone(),
            action,
            subject: None,
            detail: serde_json::json!({}),
            ip: None,
        }
    }

    pub fn subject(mut self, kind: &'static str, id: impl ToString) -> Self {
        self.subject = Some((kind, id.to_string()));
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.ip = ip;
        self
    }
}

/// Where a notification is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or for SMTP to be configured).
    Pending,
    Sent,
    /// Gave up after the configured number of attempts; a person may resend it.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A rendered email, ready to be written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmail {
    /// The template it was rendered from, e.g. `account_created`.
    pub template: &'static str,
    pub to: Vec<EmailAddress>,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// What the email is about, for the console's links.
    pub about: Option<(&'static str, String)>,
    /// Its place in a ticket's conversation, when it has one.
    pub thread: super::Thread,
    /// Its own Message-ID (without the angle brackets), when a reply must find it.
    pub message_id: Option<String>,
    /// A file sent with it (name, bytes).
    pub attachment: Option<(String, Vec<u8>)>,
}

impl NewEmail {
    /// Puts the email in a ticket's conversation: the tag in the subject, the headers.
    pub fn in_thread(mut self, thread: super::Thread, message_id: String) -> Self {
        if let Some(tag) = &thread.tag
            && !self.subject.contains(tag.as_str())
        {
            self.subject = format!("{tag} {}", self.subject);
        }
        self.thread = thread;
        self.message_id = Some(message_id);
        self
    }
}

/// A notification in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: OutboxId,
    pub created_at: DateTime<Utc>,
    pub template: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The migration it is about, when it is about one.
    pub migration: Option<super::MigrationId>,
    /// Its Message-ID and threading headers (ids without angle brackets).
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub reply_to: Option<String>,
    /// A file sent with it (name, bytes).
    pub attachment: Option<(String, Vec<u8>)>,
}

/// A setting an admin changed in the console; it overrides the file's value of `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSetting {
    pub key: String,
    /// As typed (normalised); encrypted for a secret.
    pub value: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A file handed to Ferry, without its bytes (they are sealed in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: crate::domain::UploadId,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    /// Who the migrations made from a list are for, and the zone of windows it writes
    /// without one.
    pub requester_email: Option<String>,
    pub time_zone: Option<String>,
    /// When migrations were made from it (its bytes are erased then).
    pub used_at: Option<DateTime<Utc>>,
    /// When its bytes were erased.
    pub purged_at: Option<DateTime<Utc>>,
    /// What it holds, for a file to import.
    pub kind: Option<super::FileKind>,
    /// Its file's name under the data directory's `uploads/`, when kept on disk.
    pub stored: Option<String>,
}
