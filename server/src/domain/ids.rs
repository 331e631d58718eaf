//! The identifiers of Ferry's records, one type each, so that a user's id cannot be
//! passed where a migration's is wanted. Each is the database's integer key; the API
//! and the console show it as a number.

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
            poem_openapi::NewType,
        )]
        #[serde(transparent)]
        #[oai(from_multipart = false, to_header = false, from_parameter = true)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id!(
    /// A migration.
    MigrationId
);
id!(
    /// A project (its database key; people know it by its `ProjectCode`).
    ProjectId
);
id!(
    /// One pass of a migration.
    PassId
);
id!(
    /// A staff account.
    UserId
);
id!(
    /// An API token.
    TokenId
);
id!(
    /// An email in the outbox.
    OutboxId
);
id!(
    /// A file handed to Ferry (a list of mailboxes).
    UploadId
);
id!(
    /// A ticket of the support desk; its number is this id.
    TicketId
);
id!(
    /// A file attached to a ticket's email.
    AttachmentId
);
