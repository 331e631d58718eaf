//! APPEND, written by hand on async-imap's raw command API: its own `append` waits for
//! a continuation even when the server offers LITERAL+ and drops the APPENDUID that
//! says where the copy landed (both needed here). One message, several in one command
//! (MULTIAPPEND), and a large message streamed chunk by chunk from the source.

use async_imap::imap_proto::{self, ResponseCode, Status};
use chrono::{DateTime, FixedOffset};
use tokio::io::AsyncWriteExt;

use super::ImapConnection;
use super::errors::{OpError, timed};
use async_imap::imap_proto::rfc4315::UidSetMember;

use super::proto::{literal_spec, quote, refusal};

/// One message to append: its flags, INTERNALDATE and exact bytes.
#[derive(Debug, Clone, Copy)]
pub struct AppendItem<'a> {
    pub flags: &'a [String],
    pub internal_date: Option<DateTime<FixedOffset>>,
    pub body: &'a [u8],
}

impl ImapConnection {
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
            literal_spec(item.flags, item.internal_date, len, non_sync)
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
        let line = format!(
            " {}\r\n",
            literal_spec(item.flags, item.internal_date, len, non_sync)
        );
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
