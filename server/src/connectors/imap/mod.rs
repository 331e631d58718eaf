//! An IMAP session over async-imap and the few operations a migration needs: list,
//! select, fetch, flags, delete. `connect` opens it, `append` writes messages, `errors`
//! says how it fails, and `proto` holds the protocol's text with no socket (unit-tested).

mod append;
mod connect;
mod errors;
pub mod proto;

use std::collections::HashSet;
use std::time::Duration;

use async_imap::types::NameAttribute;
use chrono::{DateTime, FixedOffset};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::net::Pulse;
use super::tls;
use crate::domain::{KEY_FIELDS, SpecialUse, message_key};
use crate::domain::{ListedFolder, Namespace};

pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> ImapStream for T {}

type Session = async_imap::Session<Box<dyn ImapStream>>;

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
    /// IDLE (RFC 2177): the server says when mail arrives.
    pub idle: bool,
    /// MOVE (RFC 6851).
    pub r#move: bool,
    pub appendlimit: Option<u64>,
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

impl ImapConnection {
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
        self.uid_search("ALL").await
    }

    async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, OpError> {
        let mut uids: Vec<u32> = timed(self.wait(), self.session.uid_search(criteria))
            .await?
            .into_iter()
            .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The UIDs of the selected folder's messages not marked deleted, sorted.
    pub async fn search_undeleted(&mut self) -> Result<Vec<u32>, OpError> {
        self.uid_search("UNDELETED").await
    }

    /// Moves messages of the selected folder to `folder`: MOVE where the server has
    /// it, else COPY, then the originals deleted (expunged by UID with UIDPLUS, only
    /// marked without: a plain EXPUNGE could remove others).
    pub async fn move_uids(&mut self, uids: &[u32], folder: &str) -> Result<(), OpError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        if self.caps.r#move {
            return timed(self.wait(), self.session.uid_mv(&set, folder)).await;
        }
        timed(self.wait(), self.session.uid_copy(&set, folder)).await?;
        self.delete_uids(uids).await.map(|_| ())
    }

    /// Waits until the server says the selected folder changed (IDLE), or `max` has
    /// passed; false when the server cannot IDLE (the caller polls). The session is
    /// the same one afterwards.
    pub async fn idle(self, max: Duration) -> Result<(Self, bool), OpError> {
        if !self.caps.idle {
            return Ok((self, false));
        }
        let Self {
            session,
            caps,
            namespace,
            label,
            deadline,
            pulse,
        } = self;
        let mut handle = session.idle();
        timed(
            Wait {
                deadline,
                pulse: pulse.clone(),
            },
            handle.init(),
        )
        .await?;
        let (waiting, _stop) = handle.wait_with_timeout(max);
        // The server's keep-alives reset async-imap's own timer: ours bounds the wait.
        let _ = tokio::time::timeout(max + Duration::from_secs(5), waiting).await;
        let session = timed(
            Wait {
                deadline,
                pulse: pulse.clone(),
            },
            handle.done(),
        )
        .await?;
        Ok((
            Self {
                session,
                caps,
                namespace,
                label,
                deadline,
                pulse,
            },
            true,
        ))
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

pub use append::{AppendItem, STREAM_CHUNK, StreamError, stream_append};
pub(crate) use errors::connect_step;
pub use errors::{ConnectError, OpError};
use errors::{Wait, timed};
use proto::flag_text;
pub use proto::uid_set;
