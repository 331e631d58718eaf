//! One side of a migration, typed by how Ferry reaches it: an IMAP account, a
//! CardDAV/CalDAV account, or a file handed to Ferry. A new kind of source is a new
//! variant here and a runner in `sync`; the migrations table keeps every variant in
//! the same columns (`store::migrations`).

use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{Security, UploadId};

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
