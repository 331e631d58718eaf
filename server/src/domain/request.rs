//! A migration request as every intake builds it (the console's form, the API's body,
//! and next a ticket's row): each value parsed where it entered, into its type or into
//! the field error that says why the text was not one. The service takes this one type
//! and answers every field's error at once, those of parsing and those of its rules.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use secrecy::SecretString;

use super::{
    DuplicatePolicy, EmailAddress, FieldError, FolderMap, FolderStrategy, ItemPolicy,
    MigrationKind, Mode, Security,
};

/// A value as an intake parsed it: the value, or why its text was not one (named by
/// its field), kept so that the answer lists it with every other field's error.
pub type Parsed<T> = Result<T, FieldError>;

/// One side of a request.
#[derive(Debug, Clone, Default)]
pub struct ServerInput {
    /// Empty: for the destination, the provider's IMAP server.
    pub host: String,
    pub port: Option<u16>,
    pub security: Option<Parsed<Security>>,
    pub username: String,
    pub password: Option<SecretString>,
    /// An admin or master user who logs in on the mailbox's behalf.
    pub authuser: Option<String>,
    /// A CardDAV/CalDAV server's address (a URL or just its host), for contacts and
    /// calendars; `host`, `port` and `security` are IMAP's.
    pub dav_url: Option<String>,
    /// A file uploaded before (`POST /api/v1/uploads`): the source of an import.
    pub upload_id: Option<super::UploadId>,
}

/// A migration request. `None` is "not given": the service's default, or the error
/// that says the field is required.
#[derive(Debug, Clone, Default)]
pub struct MigrationRequest {
    /// Mail when not given.
    pub kind: Option<Parsed<MigrationKind>>,
    pub source: ServerInput,
    /// Host, port and security default to the provider's IMAP server.
    pub destination: ServerInput,
    pub mode: Option<Parsed<Mode>>,
    pub duplicates: Option<Parsed<DuplicatePolicy>>,
    /// Contacts and calendars: an item already at the destination.
    pub policy: Option<Parsed<ItemPolicy>>,
    pub delete_source: bool,
    pub count_first: bool,
    pub import_since: Option<Parsed<NaiveDate>>,
    pub selected_folders: Vec<String>,
    pub excluded_folders: Vec<String>,
    /// Folders sent where the user says.
    pub folder_map: Vec<Parsed<FolderMap>>,
    pub sync_deletions: bool,
    pub folder_strategy: Option<Parsed<FolderStrategy>>,
    pub two_pass: Option<bool>,
    pub mx_domain: Option<String>,
    /// A wall-clock time in `time_zone`; none means "as soon as possible", which needs
    /// the override permission.
    pub window_start: Option<Parsed<NaiveDateTime>>,
    /// UTC when not given.
    pub time_zone: Option<Parsed<Tz>>,
    pub requester_email: Option<Parsed<EmailAddress>>,
    /// The customer's own reference (an order or ticket number), up to 100 characters.
    pub customer_ref: Option<String>,
    /// The support ticket it is made from (its emails then go to that ticket's thread).
    pub ticket: Option<super::TicketId>,
}

/// A request read from one row of a list of mailboxes, with the problems of the row's
/// shape that the request itself cannot carry (cells beyond the header, a server type
/// Ferry does not move).
#[derive(Debug, Clone)]
pub struct ListedRequest {
    /// The row's number in its file.
    pub row: usize,
    pub request: MigrationRequest,
    pub problems: Vec<FieldError>,
    /// The same mailbox's other kinds (a project's contacts and calendars), checked
    /// and made with it: the row is ready when all of them are.
    pub also: Vec<MigrationRequest>,
}

/// One of a fixed set of words (`Mode`, `Security`, …), its error under `field`.
pub fn choice<T: FromStr<Err = FieldError>>(field: &'static str, text: &str) -> Parsed<T> {
    text.parse::<T>().map_err(|e| FieldError { field, ..e })
}

/// An IANA time zone name such as `Europe/Paris`.
pub fn time_zone(field: &'static str, text: &str) -> Parsed<Tz> {
    Tz::from_str(text.trim()).map_err(|_| {
        FieldError::new(
            field,
            format!("{} is not a time zone name like Europe/Paris", quoted(text)),
        )
    })
}

/// A day, `YYYY-MM-DD`.
pub fn day(field: &'static str, text: &str) -> Parsed<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            field,
            format!("{} is not a date like 2024-01-31", quoted(text)),
        )
    })
}

/// A wall-clock time, `YYYY-MM-DDTHH:MM` (seconds allowed).
pub fn local_time(field: &'static str, text: &str) -> Parsed<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            FieldError::new(
                field,
                format!("{} is not a local time like 2026-12-01T21:00", quoted(text)),
            )
        })
}

/// `SOURCE=DESTINATION`.
pub fn folder_map(field: &'static str, text: &str) -> Parsed<FolderMap> {
    FolderMap::parse(text).map_err(|message| FieldError::new(field, message))
}

/// A value quoted for an error message, cut to a readable length: whatever was sent
/// comes back in the answer, and a megabyte of it helps nobody.
pub fn quoted(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_take_either_spelling_and_name_their_field() {
        assert_eq!(
            choice::<Mode>("mode", "folders-only"),
            Ok(Mode::FoldersOnly)
        );
        assert_eq!(
            choice::<FolderStrategy>("folder_strategy", " Inbox_Only "),
            Ok(FolderStrategy::InboxOnly)
        );
        let err = choice::<Security>("source.security", "sometimes").unwrap_err();
        assert_eq!(err.field, "source.security");
        assert!(err.message.contains("ssl, starttls, none"), "{err}");
    }

    #[test]
    fn an_error_quotes_at_most_sixty_characters_of_what_was_sent() {
        let err = choice::<DuplicatePolicy>("duplicates", &"x".repeat(10_000)).unwrap_err();
        assert!(err.message.len() < 200, "{}", err.message);
        assert!(err.message.contains("skip, overwrite, create"), "{err}");
    }

    #[test]
    fn times_days_and_zones_parse_or_say_what_they_want() {
        assert!(local_time("window.start", "2026-12-01T21:00").is_ok());
        assert!(local_time("window.start", "2026-12-01T21:00:30").is_ok());
        assert_eq!(
            local_time("window.start", "tomorrow").unwrap_err().field,
            "window.start"
        );
        assert!(day("import_since", "2024-01-31").is_ok());
        assert!(day("import_since", "31/01/2024").is_err());
        assert_eq!(
            time_zone("tz", "Europe/Paris"),
            Ok(chrono_tz::Europe::Paris)
        );
        assert!(time_zone("tz", "Mars/Olympus").is_err());
    }
}
