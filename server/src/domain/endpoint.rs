//! One side of a migration, typed by how Ferry reaches it: an IMAP account, a
//! CardDAV/CalDAV account, or a file handed to Ferry. A new kind of source is a new
//! variant here and a runner in `sync`; the migrations table keeps every variant in
//! the same columns (`store::migrations`).

use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{FieldError, Security, UploadId};

/// An IMAP account, without its password (kept encrypted apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAccount {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub authuser: Option<String>,
}

/// A CardDAV/CalDAV account, without its password: the URL given (a server's root, a
/// home set or a collection; discovery starts there) and the login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DavAccount {
    pub url: String,
    pub username: String,
}

/// A CardDAV/CalDAV account to log in to, with its password.
#[derive(Clone)]
pub struct DavEndpoint {
    pub url: String,
    pub username: String,
    pub password: SecretString,
    /// Verify the server's certificate against the system roots.
    pub verify_tls: bool,
}

impl fmt::Debug for DavEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DavEndpoint")
            .field("url", &self.url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A file uploaded to Ferry (or attached to a ticket), read as a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSource {
    pub upload: UploadId,
    /// The file's name as it was handed in.
    pub name: String,
}

/// One side of a migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Endpoint {
    Imap(ServerAccount),
    Dav(DavAccount),
    File(FileSource),
}

impl Endpoint {
    /// The server's host name (a DAV URL's host; empty for a file): what the
    /// per-server limits and the one-active-migration rule key on.
    pub fn host(&self) -> &str {
        match self {
            Self::Imap(a) => &a.host,
            Self::Dav(d) => url_host(&d.url),
            Self::File(_) => "",
        }
    }

    /// The account's login (a file's name for a file).
    pub fn username(&self) -> &str {
        match self {
            Self::Imap(a) => &a.username,
            Self::Dav(d) => &d.username,
            Self::File(f) => &f.name,
        }
    }

    /// The IMAP account, for a mail migration's engine.
    pub fn imap(&self) -> Option<&ServerAccount> {
        match self {
            Self::Imap(a) => Some(a),
            _ => None,
        }
    }

    /// Whether logging in to it takes a password.
    pub fn has_login(&self) -> bool {
        !matches!(self, Self::File(_))
    }
}

/// For people: `jane@old.example on imap.old.example:993`, `jane on
/// https://dav.old.example/`, `the file contacts.vcf`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Imap(a) => write!(f, "{} on {}:{}", a.username, a.host, a.port),
            Self::Dav(d) => write!(f, "{} on {}", d.username, d.url),
            Self::File(file) => write!(f, "the file {}", file.name),
        }
    }
}

/// What an uploaded file holds, as its name and first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum FileKind {
    /// vCards (2.1, 3.0, 4.0): contacts.
    Vcf,
    /// iCalendar: events, tasks, their time zones and alarms.
    Ics,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vcf => "vcf",
            Self::Ics => "ics",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "vcf" => Some(Self::Vcf),
            "ics" => Some(Self::Ics),
            _ => None,
        }
    }

    /// For sentences: "a vCard file (.vcf)".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Vcf => "a vCard file (.vcf)",
            Self::Ics => "an iCalendar file (.ics)",
        }
    }

    /// What a file named `name` that starts with `head` holds: its contents decide
    /// (a `.txt` export of cards is cards), the name only when they say nothing.
    pub fn sniff(name: &str, head: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(head);
        let first = text
            .trim_start_matches('\u{feff}')
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default()
            .to_ascii_uppercase();
        if first.starts_with("BEGIN:VCARD") {
            return Some(Self::Vcf);
        }
        if first.starts_with("BEGIN:VCALENDAR") {
            return Some(Self::Ics);
        }
        if !first.is_empty() {
            return None;
        }
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".vcf") || lower.ends_with(".vcard") {
            Some(Self::Vcf)
        } else if lower.ends_with(".ics") || lower.ends_with(".ical") {
            Some(Self::Ics)
        } else {
            None
        }
    }
}

/// A DAV server's address as typed: a URL (`https://dav.example.com/dav/`) or just
/// the host, which means HTTPS at its root (discovery finds the rest).
pub fn dav_url(field: &'static str, text: &str) -> Result<String, FieldError> {
    let full = if text.contains("://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    let bad = || {
        FieldError::new(
            field,
            format!(
                "{} is not a server address like https://dav.example.com/ or dav.example.com",
                super::quoted(text)
            ),
        )
    };
    let uri: http::Uri = full.parse().map_err(|_| bad())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none_or(str::is_empty) {
        return Err(bad());
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(FieldError::new(
            field,
            "give the username and password in their own fields, not in the address",
        ));
    }
    Ok(full)
}

/// The host of an `http(s)://host[:port]/…` URL, or the text itself when it is just a
/// host.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_told_by_its_first_line_then_by_its_name() {
        for (name, head, kind) in [
            (
                "contacts.txt",
                "\u{feff}\r\nbegin:vcard\r\n",
                Some(FileKind::Vcf),
            ),
            ("x.vcf", "BEGIN:VCALENDAR\r\n", Some(FileKind::Ics)),
            ("x.vcf", "hello", None),
            ("x.ICS", "", Some(FileKind::Ics)),
            ("x.pdf", "", None),
        ] {
            assert_eq!(
                FileKind::sniff(name, head.as_bytes()),
                kind,
                "{name} {head:?}"
            );
        }
    }

    #[test]
    fn a_dav_address_is_a_url_or_a_host() {
        assert_eq!(
            dav_url("f", "dav.example.com").as_deref(),
            Ok("https://dav.example.com")
        );
        assert_eq!(
            dav_url("f", "http://127.0.0.1:5232/jane/").as_deref(),
            Ok("http://127.0.0.1:5232/jane/")
        );
        for bad in [
            "ftp://x.example/",
            "https://",
            "https://jane:pw@dav.example/",
            "not a host",
        ] {
            let err = dav_url("source.dav_url", bad).unwrap_err();
            assert_eq!(err.field, "source.dav_url", "{bad}");
            assert!(!err.message.contains("pw@"), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn a_dav_endpoint_is_keyed_on_its_url_host() {
        for (url, host) in [
            ("https://dav.example.com/", "dav.example.com"),
            (
                "https://dav.example.com:8443/remote.php/dav",
                "dav.example.com",
            ),
            ("http://[::1]:5232/jane/", "::1"),
            ("dav.example.com", "dav.example.com"),
            ("https://u@dav.example.com/x", "dav.example.com"),
        ] {
            let e = Endpoint::Dav(DavAccount {
                url: url.into(),
                username: "jane".into(),
            });
            assert_eq!(e.host(), host, "{url}");
        }
    }

    #[test]
    fn an_endpoint_is_stored_as_tagged_json() {
        let e = Endpoint::File(FileSource {
            upload: UploadId(7),
            name: "contacts.vcf".into(),
        });
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"type":"file","upload":7,"name":"contacts.vcf"}"#);
        assert_eq!(serde_json::from_str::<Endpoint>(&json).unwrap(), e);
    }
}
