//! The vocabulary of a mail migration: where to connect, what to copy, and how.

use std::fmt;
use std::str::FromStr;

use secrecy::SecretString;

use super::FieldError;

/// An option with a fixed set of words: the same words in the database (serde), the
/// OpenAPI document (poem-openapi) and on the command line (clap, which also takes `-`
/// for `_`).
macro_rules! choice {
    ($field:literal, $(#[$meta:meta])* pub enum $name:ident { $($variants:tt)* }) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Default,
            serde::Serialize,
            serde::Deserialize,
            poem_openapi::Enum,
            clap::ValueEnum,
        )]
        #[serde(rename_all = "snake_case")]
        #[oai(rename_all = "snake_case")]
        pub enum $name { $($variants)* }

        impl FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                word($field, s)
            }
        }
    };
}

/// One of a choice's words or aliases, in any case; the error lists the words.
fn word<T: clap::ValueEnum>(field: &'static str, text: &str) -> Result<T, FieldError> {
    T::from_str(text.trim(), true).map_err(|_| {
        let words: Vec<String> = T::value_variants()
            .iter()
            .filter_map(T::to_possible_value)
            .map(|v| v.get_name().replace('-', "_"))
            .collect();
        FieldError::new(
            field,
            format!("{} is not one of {}", super::quoted(text), words.join(", ")),
        )
    })
}

choice! {
"kind",
/// What a migration copies; each kind has its runner (`sync::mail`, …) and the
/// endpoints it reads and writes (`Endpoint`).
pub enum MigrationKind {
    /// Folders and messages, from an IMAP server.
    #[default]
    Mail,
    /// Address books and their cards.
    Contacts,
    /// Calendars with their events and tasks.
    Calendars,
}
}

impl MigrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mail => "mail",
            Self::Contacts => "contacts",
            Self::Calendars => "calendars",
        }
    }

    /// What a pass copies into, for people: "folders", "address books", "calendars".
    pub fn collections(self) -> &'static str {
        match self {
            Self::Mail => "folders",
            Self::Contacts => "address books",
            Self::Calendars => "calendars",
        }
    }
}

choice! {
"security",
/// How a connection to an IMAP server is secured.
pub enum Security {
    /// Implicit TLS (port 993).
    #[default]
    #[value(alias = "tls", alias = "imaps")]
    Ssl,
    /// Plain TCP upgraded with STARTTLS (port 143).
    Starttls,
    /// No encryption.
    #[value(alias = "plain")]
    None,
}
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Ssl => "ssl",
            Security::Starttls => "starttls",
            Security::None => "none",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Security::Ssl => 993,
            Security::Starttls | Security::None => 143,
        }
    }
}

/// An IMAP account to log in to.
#[derive(Clone)]
pub struct ImapEndpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// The mailbox to open.
    pub username: String,
    /// An admin or master user who logs in on the mailbox's behalf (SASL PLAIN
    /// authorization identity).
    pub authuser: Option<String>,
    /// The password of `authuser` when set, else of `username`.
    pub password: SecretString,
    /// Verify the server's certificate against the system roots (and `SSL_CERT_FILE`).
    pub verify_tls: bool,
}

impl fmt::Debug for ImapEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("authuser", &self.authuser)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ImapEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.username, self.host, self.port)
    }
}

choice! {
"mode",
/// What a migration copies.
pub enum Mode {
    /// Folders and messages.
    #[default]
    Full,
    /// The folder tree only.
    #[value(alias = "folders_only")]
    FoldersOnly,
}
}

choice! {
"duplicates",
/// What to do with a message whose copy is already in the destination folder.
pub enum DuplicatePolicy {
    /// Leave the destination's copy; count the source message as skipped.
    #[default]
    Skip,
    /// Replace the destination's copy.
    Overwrite,
    /// Copy regardless.
    Create,
}
}

choice! {
"policy",
/// What a contacts or calendars migration does with an item whose UID (or, merging
/// contacts, whose person) is already at the destination.
pub enum ItemPolicy {
    /// Leave the destination's item as it is; count the source's as skipped.
    #[default]
    Skip,
    /// Replace the destination's item with the source's.
    Overwrite,
    /// Always write a new item (under a UID of its own).
    Create,
    /// Contacts: one card per person, with every value of both sides.
    Merge,
}
}

choice! {
"folder_strategy",
/// Which folders a migration takes.
pub enum FolderStrategy {
    #[default]
    All,
    /// INBOX and the special-use folders (Sent, Drafts, Trash, Junk, Archive).
    Standard,
    #[value(alias = "inbox_only")]
    InboxOnly,
}
}

/// A folder the user sends somewhere by name (`--map SRC=DST`, the form's folder
/// mapping): `source` by its path with `/` between levels or the server's spelling,
/// `dest` a path with `/` between levels. Its subfolders follow it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FolderMap {
    pub source: String,
    pub dest: String,
}

impl FolderMap {
    /// Parses `SRC=DST`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (source, dest) = text
            .split_once('=')
            .map(|(s, d)| (s.trim(), d.trim().trim_matches('/')))
            .filter(|(s, d)| !s.is_empty() && !d.is_empty())
            .ok_or_else(|| {
                format!("{} is not a folder mapping: write SOURCE=DESTINATION, such as \"Sent Items=Sent\"", super::quoted(text))
            })?;
        Ok(Self {
            source: source.to_owned(),
            dest: dest.to_owned(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
/// What became of one source message in a migration's ledger: its copy (or the
/// destination's message it was matched with), by which pass, and what happened to it
/// since.
pub struct CopyRecord {
    pub key: String,
    /// The copy's UID at the destination (UIDPLUS), when known.
    pub dest_uid: Option<u32>,
    /// True when the destination already had it and nothing was copied.
    pub skipped: bool,
    /// True once the source's message is deleted (`--delete-source`).
    #[serde(default)]
    pub source_deleted: bool,
    /// The pass that made the copy (or found it).
    #[serde(default)]
    pub pass: u32,
    /// True once the copy was removed from the destination ("delete migrated items").
    #[serde(default)]
    pub removed: bool,
    /// The source item's version when it was copied (a CardDAV/CalDAV item's ETag): a
    /// later pass copies it again once it changed. None for mail.
    #[serde(default)]
    pub version: Option<String>,
}

/// The role a folder plays (RFC 6154), found by attribute or by well-known name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SpecialUse {
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
    /// Gmail's "All Mail": every message again; not copied unless asked for.
    All,
    /// Gmail's "Starred": a view of flagged messages; not copied unless asked for.
    Flagged,
}

impl SpecialUse {
    /// The name a destination folder gets when the destination has none for this role.
    pub fn canonical_name(self) -> &'static str {
        match self {
            SpecialUse::Sent => "Sent",
            SpecialUse::Drafts => "Drafts",
            SpecialUse::Trash => "Trash",
            SpecialUse::Junk => "Junk",
            SpecialUse::Archive => "Archive",
            SpecialUse::All => "All Mail",
            SpecialUse::Flagged => "Starred",
        }
    }

    /// From a LIST attribute such as `\Sent`.
    pub fn from_attribute(attr: &str) -> Option<Self> {
        match attr.trim_start_matches('\\').to_ascii_lowercase().as_str() {
            "sent" => Some(SpecialUse::Sent),
            "drafts" => Some(SpecialUse::Drafts),
            "trash" => Some(SpecialUse::Trash),
            "junk" => Some(SpecialUse::Junk),
            "archive" => Some(SpecialUse::Archive),
            "all" => Some(SpecialUse::All),
            "flagged" => Some(SpecialUse::Flagged),
            _ => None,
        }
    }
}
