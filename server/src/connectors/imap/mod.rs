//! An IMAP session over async-imap: connect (implicit TLS, STARTTLS or plain), log in
//! (LOGIN, or SASL PLAIN with an authorization identity for admin/master users), read
//! the capabilities once, and the few operations a migration needs.
//!
//! APPEND is written by hand on async-imap's raw command API because its own `append`
//! waits for a continuation even when the server offers LITERAL+ and drops the
//! APPENDUID that tells us where the copy landed (both needed here).

pub mod proto;
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

use super::net::{self, Pulse, Reach, ReachError};
use crate::domain::{ErrorCode, ImapEndpoint, KEY_FIELDS, Security, SpecialUse, message_key};
use crate::planner::folders::{ListedFolder, Namespace};

pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> ImapStream for T {}

type Session = async_imap::Session<Box<dyn ImapStream>>;

/// Why a connection or login failed, for exit codes and API error codes.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("Cannot resolve {0}: {1}")]
    Dns(String, String),
    #[error("Refused to connect to {0}: {1}")]
    Target(String, String),
    #[error("Cannot reach {0}: {1}")]
    Connection(String, String),
    #[error("{0} gave no answer {1}")]
    Timeout(String, String),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("{0} refused the login: {1}")]
    Auth(String, String),
    #[error("{0} answered something unexpected: {1}")]
    Protocol(String, String),
}

impl ConnectError {
    /// The server it happened with, as `host:port`.
    pub fn server(&self) -> &str {
        match self {
            Self::Dns(s, _)
            | Self::Target(s, _)
            | Self::Connection(s, _)
            | Self::Timeout(s, _)
            | Self::Tls(s, _)
            | Self::Auth(s, _)
            | Self::Protocol(s, _) => s,
        }
    }

    /// The error code the API, the console and the emails use.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Dns(..) => ErrorCode::Dns,
            Self::Target(..) => ErrorCode::PrivateTarget,
            Self::Connection(..) => ErrorCode::Tcp,
            Self::Timeout(..) => ErrorCode::Timeout,
            Self::Tls(..) => ErrorCode::Tls,
            Self::Auth(..) => ErrorCode::Auth,
            Self::Protocol(..) => ErrorCode::Protocol,
        }
    }

    fn reach(label: &str, err: ReachError) -> Self {
        let label = label.to_owned();
        match err {
            ReachError::Dns(_, why) => Self::Dns(label, why),
            err @ ReachError::Refused { .. } => Self::Target(label, err.to_string()),
            ReachError::Timeout(d) => {
                Self::Timeout(label, format!("to the connection within {d:?}"))
            }
            ReachError::Tcp(why) => Self::Connection(label, why),
        }
    }
}

/// `fut` with the connection step's deadline; `step` names what was awaited.
async fn connect_step<T>(
    reach: &Reach,
    label: &str,
    step: &str,
    fut: impl Future<Output = Result<T, ConnectError>>,
) -> Result<T, ConnectError> {
    let deadline = reach.connect_timeout;
    let done = tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Timeout(
                label.to_owned(),
                format!("to {step} within {deadline:?}"),
            ))
        });
    reach.alive_for(deadline);
    done
}

/// What the server offers, read once after login.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub uidplus: bool,
    pub literal_plus: bool,
    pub literal_minus: bool,
    pub multiappend: bool,
    pub special_use: bool,
    /// CONDSTORE (or QRESYNC, which implies it): HIGHESTMODSEQ and CHANGEDSINCE.
    pub condstore: bool,
    /// NAMESPACE (RFC 2342): the personal prefix and delimiter are asked, not guessed.
    pub namespace: bool,
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

/// The deadline of one wait and the work's pulse that its end beats.
struct Wait {
    deadline: Duration,
    pulse: Option<Pulse>,
}

/// `fut` with the deadline of one wait for the server: a server that stops answering
/// is a broken connection (reconnect and resume), never a hang. An answer (or an
/// error) is a sign of life for the work.
async fn timed<T, E: Into<OpError>>(
    wait: Wait,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, OpError> {
    match tokio::time::timeout(wait.deadline, fut).await {
        Ok(result) => {
            if let Some(pulse) = &wait.pulse {
                pulse.alive_for(wait.deadline);
            }
            result.map_err(Into::into)
        }
        Err(_) => Err(OpError::Connection(format!(
            "no answer within {:?}",
            wait.deadline
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

/// A folder's identity and size, from SELECT or STATUS. UIDNEXT and HIGHESTMODSEQ are
/// optional answers (RFC 3501 lets SELECT omit UIDNEXT; HIGHESTMODSEQ needs CONDSTORE):
/// `None` when the server did not give them, never a guess.
#[derive(Debug, Clone, Copy)]
pub struct FolderStatus {
    pub uidvalidity: u32,
    pub uidnext: Option<u32>,
    pub exists: u32,
    pub highest_modseq: Option<u64>,
}

impl From<&async_imap::types::Mailbox> for FolderStatus {
    fn from(mailbox: &async_imap::types::Mailbox) -> Self {
        Self {
            uidvalidity: mailbox.uid_validity.unwrap_or(0),
            uidnext: mailbox.uid_next,
            exists: mailbox.exists,
            highest_modseq: mailbox.highest_modseq,
        }
    }
}

pub struct ImapConnection {
    session: Session,
    pub caps: Capabilities,
    /// The personal namespace as the server answered NAMESPACE (None without it).
    namespace: Option<Namespace>,
    label: String,
    /// Deadline of each wait for the server.
    deadline: Duration,
    /// The work's pulse, beaten as waits end.
    pulse: Option<Pulse>,
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
    /// Connects through [`net::connect`] (the name resolved once, every address
    /// checked against `reach`), logs in and reads the capabilities; every step has
    /// `reach`'s deadline.
    pub async fn connect(endpoint: &ImapEndpoint, reach: &Reach) -> Result<Self, ConnectError> {
        let label = format!("{}:{}", endpoint.host, endpoint.port);
        let step = reach.connect_timeout;
        let tcp = net::connect(&endpoint.host, endpoint.port, reach)
            .await
            .map_err(|e| ConnectError::reach(&label, e))?;
        let stream: Box<dyn ImapStream> = match endpoint.security {
            Security::None => Box::new(tcp),
            Security::Ssl => Box::new(
                connect_step(
                    reach,
                    &label,
                    "the TLS handshake",
                    Self::tls(endpoint, tcp, &label),
                )
                .await?,
            ),
            Security::Starttls => {
                let mut client = async_imap::Client::new(tcp);
                connect_step(reach, &label, "greet", Self::greeting(&mut client, &label)).await?;
                connect_step(reach, &label, "STARTTLS", async {
                    client
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .map_err(|e| {
                            ConnectError::Tls(label.clone(), format!("STARTTLS refused: {e}"))
                        })
                })
                .await?;
                Box::new(
                    connect_step(
                        reach,
                        &label,
                        "the TLS handshake",
                        Self::tls(endpoint, client.into_inner(), &label),
                    )
                    .await?,
                )
            }
        };
        let mut client = async_imap::Client::new(stream);
        if endpoint.security != Security::Starttls {
            connect_step(reach, &label, "greet", Self::greeting(&mut client, &label)).await?;
        }
        tracing::trace!(server = %label, user = %endpoint.username, "Greeted; logging in");
        let password = endpoint.password.expose_secret();
        let login = match &endpoint.authuser {
            None => tokio::time::timeout(step, client.login(&endpoint.username, password)).await,
            Some(admin) => {
                let response = format!("{}\0{admin}\0{password}", endpoint.username).into_bytes();
                tokio::time::timeout(step, client.authenticate("PLAIN", PlainAuth { response }))
                    .await
            }
        };
        reach.alive_for(step);
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
                return Err(ConnectError::Timeout(
                    label,
                    format!("to the login within {step:?}"),
                ));
            }
        };
        // Pre-login capabilities are often short (Dovecot): ask again.
        let caps = connect_step(reach, &label, "CAPABILITY", async {
            session
                .capabilities()
                .await
                .map_err(|e| ConnectError::Protocol(label.clone(), e.to_string()))
        })
        .await?;
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
            multiappend: caps.has_str("MULTIAPPEND"),
            special_use: caps.has_str("SPECIAL-USE"),
            condstore: caps.has_str("CONDSTORE") || caps.has_str("QRESYNC"),
            namespace: caps.has_str("NAMESPACE"),
            appendlimit,
        };
        let mut conn = Self {
            session,
            caps,
            namespace: None,
            label,
            deadline: reach.io_timeout,
            pulse: reach.pulse.clone(),
        };
        reach.alive_for(reach.io_timeout);
        if conn.caps.namespace {
            conn.namespace = match conn.ask_namespace().await {
                Ok(ns) => ns,
                Err(OpError::Connection(why)) if why.starts_with("no answer") => {
                    return Err(ConnectError::Timeout(
                        conn.label.clone(),
                        format!("to NAMESPACE: {why}"),
                    ));
                }
                Err(e) => return Err(ConnectError::Protocol(conn.label.clone(), e.to_string())),
            };
        }
        Ok(conn)
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

    fn wait(&self) -> Wait {
        Wait {
            deadline: self.deadline,
            pulse: self.pulse.clone(),
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Every folder with its delimiter, role and subscription.
    pub async fn list_folders(&mut self) -> Result<Vec<ListedFolder>, OpError> {
        let names: Vec<_> = timed(self.wait(), async {
            self.session
                .list(Some(""), Some("*"))
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        let subscribed: HashSet<String> = timed(self.wait(), async {
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

    /// How this server spells folder names: the personal namespace it answered to
    /// NAMESPACE; without that extension, the delimiter LIST gives and the layout of
    /// the folders listed (`Namespace::detect`).
    pub fn folder_namespace(&self, listed: &[ListedFolder]) -> Namespace {
        self.namespace
            .clone()
            .unwrap_or_else(|| Namespace::detect(listed))
    }

    /// Sends NAMESPACE and reads its answer by hand: async-imap's parser cannot read a
    /// NAMESPACE response and closes the stream on it, so the reply is read as raw
    /// lines from the socket (nothing is pending in async-imap's buffer between
    /// commands) and parsed by `proto::parse_namespace`.
    async fn ask_namespace(&mut self) -> Result<Option<Namespace>, OpError> {
        let lines = timed(self.wait(), self.raw_command("NAMESPACE")).await?;
        Ok(lines.iter().find_map(|l| proto::parse_namespace(l)))
    }

    /// Runs a command whose answer async-imap cannot parse; returns its untagged lines.
    /// Only for commands whose answer has no literal.
    async fn raw_command(&mut self, command: &str) -> Result<Vec<String>, OpError> {
        use tokio::io::AsyncReadExt;
        let id = self.session.run_command(command).await?;
        let tag = format!("{} ", id.0);
        let stream = self.session.get_mut();
        stream.flush().await?;
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = proto::tagged_end(&buf, &tag) {
                let text = String::from_utf8_lossy(&buf[..end]).into_owned();
                let mut lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
                let done = lines.pop().unwrap_or_default();
                let status = done[tag.len().min(done.len())..].to_owned();
                if !status.to_ascii_uppercase().starts_with("OK") {
                    return Err(OpError::Refused(status));
                }
                return Ok(lines);
            }
            if buf.len() > proto::MAX_RAW_ANSWER {
                return Err(OpError::Connection(format!(
                    "the answer to {command} is longer than {} bytes",
                    proto::MAX_RAW_ANSWER
                )));
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(OpError::Connection(format!("closed during {command}")));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn create_folder(&mut self, name: &str) -> Result<(), OpError> {
        match timed(self.wait(), self.session.create(name)).await {
            // Created by a concurrent run or as a parent: fine.
            Err(OpError::Refused(text)) if text.to_ascii_lowercase().contains("exists") => Ok(()),
            other => other,
        }
    }

    pub async fn subscribe(&mut self, name: &str) -> Result<(), OpError> {
        timed(self.wait(), self.session.subscribe(name)).await
    }

    /// STATUS without selecting (for pre-counts and the fast path of a second pass).
    pub async fn status(&mut self, name: &str) -> Result<FolderStatus, OpError> {
        let items = if self.caps.condstore {
            "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
        } else {
            "(MESSAGES UIDNEXT UIDVALIDITY)"
        };
        let mailbox = timed(self.wait(), self.session.status(name, items)).await?;
        Ok(FolderStatus::from(&mailbox))
    }

    /// Every UID of the selected folder, sorted: `UID SEARCH ALL`, checked against
    /// EXISTS; when the two disagree, `UID FETCH 1:* (UID)` decides, and when that
    /// disagrees too the folder cannot be counted (an error, never a guess). This is
    /// the count a pass proves itself against, taken apart from the copy loop.
    pub async fn list_uids(&mut self, exists: u32) -> Result<Vec<u32>, OpError> {
        match self.search_uids().await {
            Ok(found) if found.len() == exists as usize => return Ok(found),
            Err(OpError::Connection(why)) => return Err(OpError::Connection(why)),
            // Refused, or a count that disagrees: FETCH decides.
            _ => {}
        }
        let mut uids: Vec<u32> = if exists == 0 {
            Vec::new()
        } else {
            timed(self.wait(), async {
                let mut stream = self.session.fetch("1:*", "(UID)").await?;
                let mut uids = Vec::new();
                while let Some(f) = stream.try_next().await? {
                    uids.extend(f.uid);
                }
                Ok::<_, async_imap::error::Error>(uids)
            })
            .await?
        };
        uids.sort_unstable();
        uids.dedup();
        if uids.len() != exists as usize {
            return Err(OpError::Refused(format!(
                "the folder cannot be counted: EXISTS says {exists} messages, FETCH lists {}",
                uids.len()
            )));
        }
        Ok(uids)
    }

    /// Every UID of the selected folder as `UID SEARCH ALL` answers now, sorted.
    pub async fn search_uids(&mut self) -> Result<Vec<u32>, OpError> {
        let mut uids: Vec<u32> = timed(self.wait(), self.session.uid_search("ALL"))
            .await?
            .into_iter()
            .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The flags of messages of the selected folder, by UID; with `changed_since`
    /// (CONDSTORE), only those whose flags changed after that mod-sequence.
    pub async fn fetch_flags(
        &mut self,
        uids: &[u32],
        changed_since: Option<u64>,
    ) -> Result<Vec<(u32, Vec<String>)>, OpError> {
        let query = match changed_since {
            Some(modseq) => format!("(UID FLAGS) (CHANGEDSINCE {modseq})"),
            None => "(UID FLAGS)".to_owned(),
        };
        let mut out = Vec::with_capacity(uids.len());
        for set in proto::uid_sets(uids) {
            // Answers turned into flags as they arrive (see `fetch_meta_set`).
            timed(self.wait(), async {
                let mut stream = self.session.uid_fetch(&set, &query).await?;
                while let Some(f) = stream.try_next().await? {
                    let Some(uid) = f.uid else { continue };
                    let mut flags: Vec<String> =
                        f.flags().filter_map(|fl| flag_text(&fl)).collect();
                    flags.sort();
                    out.push((uid, flags));
                }
                Ok::<_, async_imap::error::Error>(())
            })
            .await?;
        }
        Ok(out)
    }

    /// Sets the flags of messages of the selected folder to exactly `flags`.
    pub async fn set_flags(&mut self, uids: &[u32], flags: &[String]) -> Result<(), OpError> {
        let list: Vec<&str> = flags
            .iter()
            .map(String::as_str)
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .collect();
        for set in proto::uid_sets(uids) {
            timed(self.wait(), async {
                self.session
                    .uid_store(&set, format!("FLAGS.SILENT ({})", list.join(" ")))
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?;
        }
        Ok(())
    }

    pub async fn select(&mut self, name: &str) -> Result<FolderStatus, OpError> {
        let mailbox = timed(self.wait(), self.session.select(name)).await?;
        Ok(FolderStatus::from(&mailbox))
    }

    /// A folder's message count and total size, read-only (EXAMINE, then RFC822.SIZE
    /// of every message: STATUS SIZE would be one command, but async-imap cannot parse
    /// its answer).
    pub async fn folder_size(&mut self, name: &str) -> Result<(u64, u64), OpError> {
        let mailbox = timed(self.wait(), self.session.examine(name)).await?;
        if mailbox.exists == 0 {
            return Ok((0, 0));
        }
        // Summed as the answers arrive (see `fetch_meta_set`).
        let bytes = timed(self.wait(), async {
            let mut stream = self.session.fetch("1:*", "(RFC822.SIZE)").await?;
            let mut bytes = 0u64;
            while let Some(f) = stream.try_next().await? {
                bytes += f.size.map_or(0, u64::from);
            }
            Ok::<_, async_imap::error::Error>(bytes)
        })
        .await?;
        Ok((u64::from(mailbox.exists), bytes))
    }

    /// Metadata and keys of some messages of the selected folder, by UID (in as many
    /// commands as the UID sets need).
    pub async fn fetch_meta(&mut self, uids: &[u32]) -> Result<Vec<MessageMeta>, OpError> {
        let mut out = Vec::with_capacity(uids.len());
        for set in proto::uid_sets(uids) {
            out.extend(self.fetch_meta_set(&set).await?);
        }
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    /// Metadata and keys of the selected folder's messages in a UID set (`1:*`, `5:*`).
    pub async fn fetch_meta_set(&mut self, uid_set: &str) -> Result<Vec<MessageMeta>, OpError> {
        let query =
            format!("(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({KEY_FIELDS})])");
        // Each answer is turned into a small `MessageMeta` as it arrives: async-imap's
        // answer keeps the whole read buffer it was parsed from, so collecting the
        // answers first would hold a buffer per message.
        let out = timed(self.wait(), async {
            let mut stream = self.session.uid_fetch(uid_set, &query).await?;
            let mut out = Vec::new();
            while let Some(f) = stream.try_next().await? {
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
            Ok::<_, async_imap::error::Error>(out)
        })
        .await?;
        let mut out = out;
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    /// The full bytes of some messages of the selected folder, by UID. The bytes stay
    /// in the buffers async-imap read them into (no copy).
    pub async fn fetch_bodies(&mut self, uids: &[u32]) -> Result<Bodies, OpError> {
        if uids.is_empty() {
            return Ok(Bodies::default());
        }
        let set = uid_set(uids);
        let fetches: Vec<_> = timed(self.wait(), async {
            self.session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        Ok(Bodies { fetches })
    }

    /// `len` bytes of a message from `offset` (a partial fetch); `None` when the
    /// message is gone, fewer bytes at its end.
    pub async fn fetch_chunk(
        &mut self,
        uid: u32,
        offset: u64,
        len: u64,
    ) -> Result<Option<async_imap::types::Fetch>, OpError> {
        let fetches: Vec<_> = timed(self.wait(), async {
            self.session
                .uid_fetch(
                    uid.to_string(),
                    format!("(UID BODY.PEEK[]<{offset}.{len}>)"),
                )
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        Ok(fetches.into_iter().find(|f| f.uid == Some(uid)))
    }

    /// Appends one message; returns its UID at the destination when the server tells
    /// (UIDPLUS). A refusal (too large, bad message) is `OpError::Refused` with the
    /// server's words.
    pub async fn append(
        &mut self,
        folder: &str,
        item: &AppendItem<'_>,
    ) -> Result<Option<u32>, OpError> {
        let uids = self
            .append_command(folder, std::slice::from_ref(item))
            .await?;
        Ok(uids.first().copied())
    }

    /// Appends several messages in one command (MULTIAPPEND, RFC 3502) when the server
    /// offers it, else one by one. MULTIAPPEND is all or nothing: on a refusal nothing
    /// was stored and the caller may try the messages one at a time. Returns the
    /// destination UIDs in order when the server tells (UIDPLUS), else an empty list.
    pub async fn append_many(
        &mut self,
        folder: &str,
        items: &[AppendItem<'_>],
    ) -> Result<Vec<u32>, OpError> {
        if items.len() > 1 && !self.caps.multiappend {
            let mut uids = Vec::with_capacity(items.len());
            for item in items {
                uids.extend(
                    self.append_command(folder, std::slice::from_ref(item))
                        .await?,
                );
            }
            if uids.len() != items.len() {
                uids.clear();
            }
            return Ok(uids);
        }
        self.append_command(folder, items).await
    }

    /// One APPEND command with one literal per item.
    async fn append_command(
        &mut self,
        folder: &str,
        items: &[AppendItem<'_>],
    ) -> Result<Vec<u32>, OpError> {
        let Some((first, rest)) = items.split_first() else {
            return Ok(Vec::new());
        };
        // Past the server's APPENDLIMIT, a synchronising literal lets it refuse before
        // the bytes are sent, and the connection stays usable.
        let largest = items.iter().map(|i| i.body.len()).max().unwrap_or(0);
        let non_sync = self.non_sync(largest)
            && self
                .caps
                .appendlimit
                .is_none_or(|limit| largest as u64 <= limit);
        timed(self.wait(), async {
            let id = self
                .append_begin(folder, first, first.body.len(), non_sync)
                .await?;
            self.write_raw(first.body).await?;
            for item in rest {
                self.append_next(&id, item, item.body.len(), non_sync)
                    .await?;
                self.write_raw(item.body).await?;
            }
            self.append_finish(&id).await
        })
        .await
    }

    fn non_sync(&self, largest: usize) -> bool {
        self.caps.literal_plus || (self.caps.literal_minus && largest <= 4096)
    }

    /// Sends `APPEND folder (flags) date {n}` and, for a synchronising literal, waits
    /// for the server's go-ahead.
    async fn append_begin(
        &mut self,
        folder: &str,
        item: &AppendItem<'_>,
        len: usize,
        non_sync: bool,
    ) -> Result<imap_proto::RequestId, OpError> {
        let command = format!(
            "APPEND {} {}",
            quote(folder),
            literal_spec(item, len, non_sync)
        );
        let id = self.session.run_command(&command).await?;
        if !non_sync {
            self.wait_continuation(&id).await?;
        }
        Ok(id)
    }

    /// The next message of a MULTIAPPEND, after the previous literal.
    async fn append_next(
        &mut self,
        id: &imap_proto::RequestId,
        item: &AppendItem<'_>,
        len: usize,
        non_sync: bool,
    ) -> Result<(), OpError> {
        let line = format!(" {}\r\n", literal_spec(item, len, non_sync));
        self.write_raw(line.as_bytes()).await?;
        if !non_sync {
            self.session.get_mut().flush().await?;
            self.wait_continuation(id).await?;
        }
        Ok(())
    }

    async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), OpError> {
        self.session.get_mut().write_all(bytes).await?;
        Ok(())
    }

    async fn wait_continuation(&mut self, id: &imap_proto::RequestId) -> Result<(), OpError> {
        self.session.get_mut().flush().await?;
        loop {
            let Some(resp) = self.session.read_response().await? else {
                return Err(OpError::Connection("closed during APPEND".into()));
            };
            match resp.parsed() {
                imap_proto::Response::Continue(_) => return Ok(()),
                imap_proto::Response::Done {
                    tag,
                    status,
                    outcome,
                } if tag == id && *status != Status::Ok => {
                    return Err(OpError::Refused(refusal(outcome.information.as_deref())));
                }
                imap_proto::Response::Done { .. } => {
                    return Err(OpError::Connection(
                        "unexpected completion during APPEND".into(),
                    ));
                }
                _ => {}
            }
        }
    }

    /// Ends the command and reads its completion: the UIDs of APPENDUID, if any.
    async fn append_finish(&mut self, id: &imap_proto::RequestId) -> Result<Vec<u32>, OpError> {
        let stream = self.session.get_mut();
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
                if tag != id {
                    continue;
                }
                if *status != Status::Ok {
                    return Err(OpError::Refused(refusal(outcome.information.as_deref())));
                }
                let mut uids = Vec::new();
                if let Some(ResponseCode::AppendUid(_, set)) = &outcome.code {
                    for member in set {
                        match member {
                            UidSetMember::Uid(u) => uids.push(*u),
                            UidSetMember::UidRange(r) => uids.extend(r.clone()),
                        }
                    }
                }
                return Ok(uids);
            }
        }
    }

    /// Marks messages deleted and expunges exactly them (UID EXPUNGE). Without UIDPLUS
    /// the messages are only marked: a plain EXPUNGE could remove others.
    pub async fn delete_uids(&mut self, uids: &[u32]) -> Result<bool, OpError> {
        if uids.is_empty() {
            return Ok(true);
        }
        let set = uid_set(uids);
        timed(self.wait(), async {
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
        timed(self.wait(), async {
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
        let _ = tokio::time::timeout(
            Duration::from_secs(5).min(self.deadline),
            self.session.logout(),
        )
        .await;
    }
}

/// One message to append: its flags, INTERNALDATE and exact bytes.
#[derive(Debug, Clone, Copy)]
pub struct AppendItem<'a> {
    pub flags: &'a [String],
    pub internal_date: Option<DateTime<FixedOffset>>,
    pub body: &'a [u8],
}

/// `(flags) "date" {n+}`: the part of APPEND before each literal.
fn literal_spec(item: &AppendItem<'_>, len: usize, non_sync: bool) -> String {
    let flags: Vec<&str> = item
        .flags
        .iter()
        .map(String::as_str)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    let date = item
        .internal_date
        .map(|d| format!(" \"{}\"", d.format("%d-%b-%Y %H:%M:%S %z")))
        .unwrap_or_default();
    format!(
        "({}){date} {{{len}{}}}",
        flags.join(" "),
        if non_sync { "+" } else { "" }
    )
}

fn refusal(words: Option<&str>) -> String {
    words.unwrap_or("APPEND refused").trim().to_owned()
}

/// Message bodies fetched in one command, kept in async-imap's buffers.
#[derive(Debug, Default)]
pub struct Bodies {
    fetches: Vec<async_imap::types::Fetch>,
}

impl Bodies {
    pub fn get(&self, uid: u32) -> Option<&[u8]> {
        self.fetches
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body())
    }
}

/// Bytes read from the source per partial fetch when a message is streamed.
pub const STREAM_CHUNK: u64 = 1024 * 1024;

/// Why streaming a message failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The destination refused the message; both connections are still usable.
    #[error("the destination refused: {0}")]
    Refused(String),
    /// The message is no longer at the source; nothing was appended.
    #[error("the message is gone from the source")]
    Gone,
    /// The source's bytes did not add up to the size it announced: the destination
    /// connection was left inside a literal and must be dropped (which cancels the
    /// APPEND); copy this message whole instead.
    #[error("the source's size for message {0} is not its length")]
    SizeMismatch(u32),
    /// A connection broke; when it happened inside the literal the destination
    /// connection must be dropped too (which cancels the APPEND).
    #[error("connection lost: {0}")]
    Connection(String),
}

/// Copies one large message from the selected source folder to `folder` at the
/// destination without holding it whole: the APPEND literal announces the size the
/// source gave (RFC822.SIZE) and is written chunk by chunk as partial fetches arrive.
/// async-imap buffers each response whole, so this is how memory stays bounded.
pub async fn stream_append(
    src: &mut ImapConnection,
    dst: &mut ImapConnection,
    uid: u32,
    size: u64,
    folder: &str,
    flags: &[String],
    internal_date: Option<DateTime<FixedOffset>>,
) -> Result<Option<u32>, StreamError> {
    let lost = |e: OpError| StreamError::Connection(e.to_string());
    // The first chunk before the APPEND: a message gone costs nothing at the destination.
    let first_len = size.min(STREAM_CHUNK);
    let Some(first) = src.fetch_chunk(uid, 0, first_len).await.map_err(lost)? else {
        return Err(StreamError::Gone);
    };
    let first_bytes = first.body().unwrap_or_default();
    if first_bytes.len() as u64 != first_len {
        return Err(StreamError::SizeMismatch(uid));
    }
    let len = usize::try_from(size).map_err(|_| StreamError::SizeMismatch(uid))?;
    let item = AppendItem {
        flags,
        internal_date,
        body: &[],
    };
    let non_sync = dst.caps.literal_plus && dst.caps.appendlimit.is_none_or(|limit| size <= limit);
    let id = match timed(dst.wait(), dst.append_begin(folder, &item, len, non_sync)).await {
        Ok(id) => id,
        Err(OpError::Refused(why)) => return Err(StreamError::Refused(why)),
        Err(e) => return Err(lost(e)),
    };
    timed(dst.wait(), dst.write_raw(first_bytes))
        .await
        .map_err(lost)?;
    drop(first);
    let mut offset = first_len;
    while offset < size {
        let want = (size - offset).min(STREAM_CHUNK);
        let chunk = src.fetch_chunk(uid, offset, want).await.map_err(lost)?;
        let bytes = chunk.as_ref().and_then(|c| c.body()).unwrap_or_default();
        if bytes.len() as u64 != want {
            return Err(StreamError::SizeMismatch(uid));
        }
        timed(dst.wait(), dst.write_raw(bytes))
            .await
            .map_err(lost)?;
        offset += want;
    }
    // Nothing beyond the announced size, or the copy would be cut short.
    let beyond = src.fetch_chunk(uid, size, 1).await.map_err(lost)?;
    if beyond
        .as_ref()
        .and_then(|c| c.body())
        .is_some_and(|b| !b.is_empty())
    {
        return Err(StreamError::SizeMismatch(uid));
    }
    match timed(dst.wait(), dst.append_finish(&id)).await {
        Ok(uids) => Ok(uids.first().copied()),
        Err(OpError::Refused(why)) => Err(StreamError::Refused(why)),
        Err(e) => Err(lost(e)),
    }
}

pub use proto::uid_set;
