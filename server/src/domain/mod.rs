//! The pure vocabulary of Ferry: validated values that the rest of the code passes
//! around. Nothing here does IO or reads the clock.

mod actor;
mod email;
mod endpoint;
mod error_code;
mod folders;
mod ids;
mod mail;
mod message_key;
mod migration;
mod mx;
mod names;
mod project;
mod records;
mod request;
mod role;
mod scope;
mod ticket;
mod window;

pub use actor::Actor;
pub use email::{EmailAddress, mask};
pub use endpoint::{
    DavAccount, DavEndpoint, Endpoint, FileKind, FileSource, ServerAccount, dav_url,
};
pub use error_code::{ErrorCode, Failure};
pub use folders::{ListedFolder, Namespace};
pub use ids::{
    AttachmentId, MigrationId, OutboxId, PassId, ProjectId, TicketId, TokenId, UploadId, UserId,
};
pub use mail::{
    CopyRecord, DuplicatePolicy, FolderMap, FolderStrategy, ImapEndpoint, ItemPolicy,
    MigrationKind, Mode, Security, SpecialUse,
};
pub use message_key::{KEY_FIELDS, message_key};
pub use migration::{
    FolderProgress, Migration, MigrationOptions, MigrationStatus, Pace, Pass, PassKind, Work,
};
pub use mx::{mx_answer, mx_switched};
pub use names::{domain_name, host_name};
pub use project::{
    MailboxProgress, OptionTexts, Project, ProjectCode, ProjectCounts, ProjectOptions,
    ProjectStatus, ProjectTotals, concurrency_text,
};
pub use records::{
    ApiToken, AuditEvent, DeliveryStatus, NewAuditEvent, NewEmail, OutboxMessage, Session,
    StoredSetting, Upload, User,
};
pub use request::{
    ListedRequest, MigrationRequest, Parsed, ServerInput, choice, day, folder_map, local_time,
    quoted, time_zone,
};
pub use role::Role;
pub use scope::{Scope, Scopes};
pub use ticket::{
    Attachment, AttachmentKind, Direction, Inbound, Thread, Ticket, TicketAttachment,
    TicketMessage, TicketStatus,
};
pub use window::{WindowError, WindowRules};

/// A value a user typed that does not parse, with the field it belongs to and a
/// sentence that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
