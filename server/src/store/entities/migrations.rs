//! The `migrations` table's row, as sea-orm sees it (only `store` reads it).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "migrations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub created_by: String,
    pub requester_email: String,
    pub source_host: String,
    pub source_port: i32,
    pub source_security: String,
    pub source_username: String,
    pub source_authuser: Option<String>,
    /// Encrypted (crypto::Cipher), base64.
    pub source_secret: Option<String>,
    pub dest_host: String,
    pub dest_port: i32,
    pub dest_security: String,
    pub dest_username: String,
    pub dest_authuser: Option<String>,
    pub dest_secret: Option<String>,
    /// `host|username`, lowercase: one active migration per destination mailbox.
    pub dest_key: String,
    /// `MigrationOptions` as JSON.
    pub options: String,
    pub two_pass: bool,
    pub mx_domain: String,
    pub window_start: Option<DateTimeUtc>,
    pub time_zone: String,
    pub next_work: Option<String>,
    pub resume_work: Option<String>,
    pub next_run_at: Option<DateTimeUtc>,
    pub mx_switched_at: Option<DateTimeUtc>,
    pub mx_checked_at: Option<DateTimeUtc>,
    pub mx_answer: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub credentials_purged_at: Option<DateTimeUtc>,
    /// The customer page's token, encrypted (crypto::Cipher), for the links in emails.
    pub customer_token: Option<String>,
    /// SHA-256 of the token (crypto::token_digest): how a link finds its migration.
    pub customer_token_digest: Option<String>,
    /// Whether the progress of the work in hand is emailed to the customer.
    pub notify_customer: bool,
    /// The key of the last email about the migration (`MigrationNews::key`).
    pub last_news: Option<String>,
    /// The key of the last email the customer got.
    pub customer_told: Option<String>,
    /// The customer's own reference (an order or ticket number).
    pub customer_ref: Option<String>,
    /// The staff member who owns it (`users.id`).
    pub owner_id: Option<i64>,
    /// The ticket it was made from.
    pub ticket_id: Option<i64>,
    /// The project it belongs to.
    pub project_id: Option<i64>,
    /// While paused: the status to go back to.
    pub paused_status: Option<String>,
    /// `MigrationKind`: mail, contacts, calendars.
    pub kind: String,
    /// `Endpoint` as JSON; `None` on rows from before kinds (IMAP, in `source_*`).
    pub source_endpoint: Option<String>,
    pub dest_endpoint: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
