//! An IMAP session over async-imap: connect (implicit TLS, STARTTLS or plain), log in
//! (LOGIN, or SASL PLAIN with an authorization identity for admin/master users), read
//! the capabilities once, and the few operations a migration needs.
//!
//! APPEND is written by hand on async-imap's raw command API because its own `append`
//! waits for a continuation even when the server offers LITERAL+ and drops the
//! APPENDUID that tells us where the copy landed (both needed here).

mod tls;

use std::collections::HashSet;
use std::time::Duration;

use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{self, ResponseCode, Status};
use async_imap::types::{Flag, NameAttribute};
use chrono::{DateTime, FixedOffset};
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::domain::{ImapEndpoint, KEY_FIELDS, Security, SpecialUse, message_key};
use crate::planner::folders::ListedFolder;

/// Every network wait gives up after this.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(120);
/// Connecting (DNS, TCP, TLS, greeting) gives up sooner.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> ImapStream for T {}

type Session = async_imap::Session<Box<dyn ImapStream>>;

/// Why a connection or login failed, for exit codes and API error codes.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("Cannot reach {0}: {1}")]
    Connection(String, String),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("{0} refused the login: {1}")]
    Auth(String, String),
    #[error("{0} answered something unexpected: {1}")]
    Protocol(String, String),
}

/// What the server offers, read once after login.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub uidplus: bool,
    pub literal_plus: bool,
    pub literal_minus: bool,
    pub special_use: bool,
    pub appendlimit: Option<u64>,
}

/// An error of one operation: the server said NO/BAD (a per-item failure), or the
/// connection broke (reconnect and resume).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("the server refused: {0}")]
    Refused(String),
    #[error("connection lost: {0}")]
    Connection(String),
}

impl From<async_imap::error::Error> for OpError {
    fn from(err: async_imap::error::Error) -> Self {
        use async_imap::error::Error;
        match err {
            Error::No(text) | Error::Bad(text) => OpError::Refused(server_words(&text)),
            other => OpError::Connection(other.to_string()),
        }
    }
}

impl From<std::io::Error> for OpError {
    fn from(err: std::io::Error) -> Self {
        OpError::Connection(err.to_string())
    }
}

async fn timed<T, E: Into<OpError>>(fut: impl Future<Output = Result<T, E>>) -> Result<T, OpError> {
    match tokio::time::timeout(NETWORK_TIMEOUT, fut).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(OpError::Connection(format!(
            "no answer within {NETWORK_TIMEOUT:?}"
        ))),
    }
}

/// A message's metadata, enough to decide whether to copy it.
#[derive(Debug, Clone)]
pub struct MessageMeta {
    pub uid: u32,
    pub flags: Vec<String>,
    pub internal_date: Option<DateTime<FixedOffset>>,
    pub size: u32,
    pub key: String,
}

/// A selected folder's identity.
#[derive(Debug, Clone, Copy)]
pub struct FolderStatus {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub exists: u32,
}

impl From<&async_imap::types::Mailbox> for FolderStatus {
    fn from(mailbox: &async_imap::types::Mailbox) -> Self {
        Self {
            uidvalidity: mailbox.uid_validity.unwrap_or(0),
            uidnext: mailbox.uid_next.unwrap_or(1),
            exists: mailbox.exists,
        }
    }
}

pub struct ImapConnection {
    session: Session,
    pub caps: Capabilities,
    label: String,
}

impl std::fmt::Debug for ImapConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapConnection")
            .field("server", &self.label)
            .finish_non_exhaustive()
    }
}

struct PlainAuth {
    response: Vec<u8>,
}

impl async_imap::Authenticator for PlainAuth {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        std::mem::take(&mut self.response)
    }
}

fn flag_text(flag: &Flag<'_>) -> Option<String> {
    Some(match flag {
        Flag::Recent => return None,
        Flag::Seen => "\\Seen".into(),
        Flag::Answered => "\\Answered".into(),
        Flag::Flagged => "\\Flagged".into(),
        Flag::Deleted => "\\Deleted".into(),
        Flag::Draft => "\\Draft".into(),
        Flag::MayCreate => return None,
        Flag::Custom(name) => name.to_string(),
    })
}

/// The server's own sentence from async-imap's rendering of a NO/BAD
/// (`code: …, info: Some("…")`).
fn server_words(text: &str) -> String {
    text.split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(words, _)| words.replace("\\\"", "\""))
        .unwrap_or_else(|| text.trim().to_owned())
}

/// Quotes a string for an IMAP command (names come from LIST or from our planner).
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl ImapConnection {
    pub async fn connect(endpoint: &ImapEndpoint) -> Result<Self, ConnectError> {
        let label = format!("{}:{}", endpoint.host, endpoint.port);
        let connect = async {
            let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
                .await
                .map_err(|e| ConnectError::Connection(label.clone(), e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            let stream: Box<dyn ImapStream> = match endpoint.security {
                Security::None => Box::new(tcp),
                Security::Ssl => Box::new(Self::tls(endpoint, tcp, &label).await?),
                Security::Starttls => {
                    let mut client = async_imap::Client::new(tcp);
                    Self::greeting(&mut client, &label).await?;
                    client
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .map_err(|e| {
                            ConnectError::Tls(label.clone(), format!("STARTTLS refused: {e}"))
                        })?;
                    Box::new(Self::tls(endpoint, client.into_inner(), &label).await?)
                }
            };
            let mut client = async_imap::Client::new(stream);
            if endpoint.security != Security::Starttls {
                Self::greeting(&mut client, &label).await?;
            }
            Ok::<_, ConnectError>(client)
        };
        let client = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| {
                ConnectError::Connection(
                    label.clone(),
                    format!("no answer within {CONNECT_TIMEOUT:?}"),
                )
            })??;
        let password = endpoint.password.expose_secret();
        let login = match &endpoint.authuser {
            None => {
                tokio::time::timeout(CONNECT_TIMEOUT, client.login(&endpoint.username, password))
                    .await
            }
            Some(admin) => {
                let response = format!("{}\0{admin}\0{password}", endpoint.username).into_bytes();
                tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    client.authenticate("PLAIN", PlainAuth { response }),
                )
                .await
            }
        };
        let mut session = match login {
            Ok(Ok(session)) => session,
            Ok(Err((
                async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text),
                _,
            ))) => {
                return Err(ConnectError::Auth(label, server_words(&text)));
            }
            Ok(Err((err, _))) => return Err(ConnectError::Protocol(label, err.to_string())),
            Err(_) => {
                return Err(ConnectError::Connection(
                    label,
                    "no answer to the login".into(),
                ));
            }
        };
        // Pre-login capabilities are often short (Dovecot): ask again.
        let caps = session
            .capabilities()
            .await
            .map_err(|e| ConnectError::Protocol(label.clone(), e.to_string()))?;
        let appendlimit = caps.iter().find_map(|c| match c {
            async_imap::types::Capability::Atom(a) => {
                a.strip_prefix("APPENDLIMIT=").and_then(|n| n.parse().ok())
            }
            _ => None,
        });
        let caps = Capabilities {
            uidplus: caps.has_str("UIDPLUS"),
            literal_plus: caps.has_str("LITERAL+"),
            literal_minus: caps.has_str("LITERAL-"),
            special_use: caps.has_str("SPECIAL-USE"),
            appendlimit,
        };
        Ok(Self {
            session,
            caps,
            label,
        })
    }

    async fn tls(
        endpoint: &ImapEndpoint,
        tcp: TcpStream,
        label: &str,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
        let connector = tls::connector(endpoint.verify_tls)
            .map_err(|e| ConnectError::Tls(label.to_owned(), e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
            .map_err(|e| ConnectError::Tls(label.to_owned(), e.to_string()))?;
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| ConnectError::Tls(label.to_owned(), e.to_string()))
    }

    async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug>(
        client: &mut async_imap::Client<T>,
        label: &str,
    ) -> Result<(), ConnectError> {
        match client.read_response().await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ConnectError::Connection(
                label.to_owned(),
                "closed before the greeting".into(),
            )),
            Err(e) => Err(ConnectError::Connection(label.to_owned(), e.to_string())),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Every folder with its delimiter, role and subscription.
    pub async fn list_folders(&mut self) -> Result<Vec<ListedFolder>, OpError> {
        let names: Vec<_> = timed(async {
            self.session
                .list(Some(""), Some("*"))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        let subscribed: HashSet<String> = timed(async {
            self.session
                .lsub(Some(""), Some("*"))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?
        .iter()
        .map(|n| n.name().to_owned())
        .collect();
        Ok(names
            .iter()
            .map(|n| {
                let attrs = n.attributes();
                let special_use = attrs.iter().find_map(|a| match a {
                    NameAttribute::Sent => Some(SpecialUse::Sent),
                    NameAttribute::Drafts => Some(SpecialUse::Drafts),
                    NameAttribute::Trash => Some(SpecialUse::Trash),
                    NameAttribute::Junk => Some(SpecialUse::Junk),
                    NameAttribute::Archive => Some(SpecialUse::Archive),
                    NameAttribute::All => Some(SpecialUse::All),
                    NameAttribute::Flagged => Some(SpecialUse::Flagged),
                    NameAttribute::Extension(ext) => SpecialUse::from_attribute(ext),
                    _ => None,
                });
                let selectable = !attrs.iter().any(|a| match a {
                    NameAttribute::NoSelect => true,
                    NameAttribute::Extension(ext) => ext.eq_ignore_ascii_case("\\NonExistent"),
                    _ => false,
                });
                ListedFolder {
                    raw: n.name().to_owned(),
                    delimiter: n.delimiter().and_then(|d| d.chars().next()),
                    special_use,
                    selectable,
                    subscribed: subscribed.contains(n.name()),
                }
            })
            .collect())
    }

    pub async fn create_folder(&mut self, name: &str) -> Result<(), OpError> {
        match timed(self.session.create(name)).await {
            // Created by a concurrent run or as a parent: fine.
            Err(OpError::Refused(text)) if text.to_ascii_lowercase().contains("exists") => Ok(()),
            other => other,
        }
    }

    pub async fn subscribe(&mut self, name: &str) -> Result<(), OpError> {
        timed(self.session.subscribe(name)).await
    }

    /// STATUS without selecting (for pre-counts and the fast path of a second pass).
    pub async fn status(&mut self, name: &str) -> Result<FolderStatus, OpError> {
        let mailbox = timed(self.session.status(name, "(MESSAGES UIDNEXT UIDVALIDITY)")).await?;
        Ok(FolderStatus::from(&mailbox))
    }

    pub async fn select(&mut self, name: &str) -> Result<FolderStatus, OpError> {
        let mailbox = timed(self.session.select(name)).await?;
        Ok(FolderStatus::from(&mailbox))
    }

    /// Metadata and keys of the selected folder's messages in a UID set (`1:*`, `5:*`).
    pub async fn fetch_meta(&mut self, uid_set: &str) -> Result<Vec<MessageMeta>, OpError> {
        let query =
            format!("(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({KEY_FIELDS})])");
        let fetches: Vec<_> = timed(async {
            self.session
                .uid_fetch(uid_set, &query)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        let mut out = Vec::with_capacity(fetches.len());
        for f in fetches {
            let Some(uid) = f.uid else { continue };
            let size = f.size.unwrap_or(0);
            out.push(MessageMeta {
                uid,
                flags: f.flags().filter_map(|fl| flag_text(&fl)).collect(),
                internal_date: f.internal_date(),
                size,
                key: message_key(f.header().unwrap_or_default(), size),
            });
        }
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    /// The full bytes of some messages of the selected folder, by UID.
    pub async fn fetch_bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, OpError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let fetches: Vec<_> = timed(async {
            self.session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        Ok(fetches
            .into_iter()
            .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
            .collect())
    }

    /// Appends one message; returns its UID at the destination when the server tells
    /// (UIDPLUS). A refusal (too large, bad message) is `OpError::Refused` with the
    /// server's words.
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &[String],
        internal_date: Option<DateTime<FixedOffset>>,
        body: &[u8],
    ) -> Result<Option<u32>, OpError> {
        let flags: Vec<&str> = flags
            .iter()
            .map(String::as_str)
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .collect();
        let date = internal_date
            .map(|d| format!(" \"{}\"", d.format("%d-%b-%Y %H:%M:%S %z")))
            .unwrap_or_default();
        let non_sync = self.caps.literal_plus || (self.caps.literal_minus && body.len() <= 4096);
        let command = format!(
            "APPEND {} ({}){date} {{{}{}}}",
            quote(folder),
            flags.join(" "),
            body.len(),
            if non_sync { "+" } else { "" }
        );
        timed(async {
            let id = self.session.run_command(&command).await?;
            if !non_sync {
                match self.session.read_response().await? {
                    Some(resp) => match resp.parsed() {
                        imap_proto::Response::Continue(_) => {}
                        imap_proto::Response::Done {
                            status, outcome, ..
                        } if *status != Status::Ok => {
                            return Err(OpError::Refused(
                                outcome
                                    .information
                                    .as_deref()
                                    .unwrap_or("APPEND refused")
                                    .to_owned(),
                            ));
                        }
                        _ => return Err(OpError::Connection("no continuation for APPEND".into())),
                    },
                    None => return Err(OpError::Connection("closed during APPEND".into())),
                }
            }
            let stream = self.session.get_mut();
            stream.write_all(body).await?;
            stream.write_all(b"\r\n").await?;
            stream.flush().await?;
            loop {
                let Some(resp) = self.session.read_response().await? else {
                    return Err(OpError::Connection("closed during APPEND".into()));
                };
                if let imap_proto::Response::Done {
                    tag,
                    status,
                    outcome,
                } = resp.parsed()
                {
                    if *tag != id {
                        continue;
                    }
                    if *status != Status::Ok {
                        return Err(OpError::Refused(
                            outcome
                                .information
                                .as_deref()
                                .unwrap_or("APPEND refused")
                                .trim()
                                .to_owned(),
                        ));
                    }
                    let uid = match &outcome.code {
                        Some(ResponseCode::AppendUid(_, set)) => set
                            .iter()
                            .map(|m| match m {
                                UidSetMember::Uid(u) => *u,
                                UidSetMember::UidRange(r) => *r.start(),
                            })
                            .next(),
                        _ => None,
                    };
                    return Ok(uid);
                }
            }
        })
        .await
    }

    /// Marks messages deleted and expunges exactly them (UID EXPUNGE). Without UIDPLUS
    /// the messages are only marked: a plain EXPUNGE could remove others.
    pub async fn delete_uids(&mut self, uids: &[u32]) -> Result<bool, OpError> {
        if uids.is_empty() {
            return Ok(true);
        }
        let set = uid_set(uids);
        timed(async {
            self.session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        if !self.caps.uidplus {
            return Ok(false);
        }
        timed(async {
            self.session
                .uid_expunge(&set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        Ok(true)
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// A compact UID set: `1:5,9,12:14`. Callers keep sets short (batches of a few hundred).
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut iter = sorted.into_iter();
    let Some(mut start) = iter.next() else {
        return String::new();
    };
    let mut end = start;
    for uid in iter {
        if uid == end + 1 {
            end = uid;
        } else {
            parts.push(if start == end {
                start.to_string()
            } else {
                format!("{start}:{end}")
            });
            start = uid;
            end = uid;
        }
    }
    parts.push(if start == end {
        start.to_string()
    } else {
        format!("{start}:{end}")
    });
    parts.join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(
            super::uid_set(&[5, 1, 2, 3, 9, 12, 13, 14, 3]),
            "1:3,5,9,12:14"
        );
        assert_eq!(super::uid_set(&[7]), "7");
        assert_eq!(super::uid_set(&[]), "");
    }
}
