//! A small IMAP client for tests (async-imap, independent of Ferry's own connector):
//! seed a mailbox over APPEND and read it back, byte for byte.

use std::collections::BTreeMap;

use anyhow::Context;
use async_imap::Session;
use async_imap::types::Flag;
use chrono::{DateTime, FixedOffset, Utc};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::dovecot::Dovecot;

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

pub type ImapSession = Session<Box<dyn Stream>>;

/// A message as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub uid: u32,
    pub body: Vec<u8>,
    /// System flags and keywords, sorted, `\Recent` left out.
    pub flags: Vec<String>,
    pub internal_date: DateTime<Utc>,
}

/// A message to put in a folder.
#[derive(Debug, Clone)]
pub struct SeedMessage {
    pub body: Vec<u8>,
    pub flags: Vec<String>,
    pub internal_date: Option<DateTime<FixedOffset>>,
}

/// Logs in over plaintext IMAP.
pub async fn login(server: &Dovecot, user: &str, password: &str) -> anyhow::Result<ImapSession> {
    login_at(server.port, user, password).await
}

/// Logs in over plaintext IMAP to whatever listens on 127.0.0.1:`port`.
pub async fn login_at(port: u16, user: &str, password: &str) -> anyhow::Result<ImapSession> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    login_on(Box::new(tcp), user, password).await
}

/// Logs in over implicit TLS, trusting the harness's test CA.
pub async fn login_tls(
    server: &Dovecot,
    user: &str,
    password: &str,
) -> anyhow::Result<ImapSession> {
    let tcp = TcpStream::connect(("127.0.0.1", server.tls_port)).await?;
    let connector = crate::tls_client::connector(&server.certs.ca_cert)?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?.to_owned();
    let tls = connector
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    login_on(Box::new(tls), user, password).await
}

async fn login_on(
    stream: Box<dyn Stream>,
    user: &str,
    password: &str,
) -> anyhow::Result<ImapSession> {
    let mut client = async_imap::Client::new(stream);
    client.read_response().await.context("no greeting")?;
    client
        .login(user, password)
        .await
        .map_err(|(e, _)| e)
        .context("LOGIN")
}

fn flag_name(flag: &Flag<'_>) -> Option<String> {
    Some(match flag {
        Flag::Recent => return None,
        Flag::Seen => "\\Seen".to_owned(),
        Flag::Answered => "\\Answered".to_owned(),
        Flag::Flagged => "\\Flagged".to_owned(),
        Flag::Deleted => "\\Deleted".to_owned(),
        Flag::Draft => "\\Draft".to_owned(),
        Flag::MayCreate => "\\*".to_owned(),
        Flag::Custom(name) => name.to_string(),
    })
}

/// Creates `folder` (and its parents) unless it exists.
pub async fn ensure_folder(session: &mut ImapSession, folder: &str) -> anyhow::Result<()> {
    if folder.eq_ignore_ascii_case("INBOX") {
        return Ok(());
    }
    let exists = session
        .list(None, Some(folder))
        .await?
        .try_collect::<Vec<_>>()
        .await?
        .iter()
        .any(|n| n.name() == folder);
    if !exists {
        match session.create(folder).await {
            Ok(()) => {}
            // A LIST pattern with `&` or `%` in the name may not find it: it is there.
            Err(async_imap::error::Error::No(text)) if text.to_lowercase().contains("exists") => {}
            Err(err) => return Err(err).with_context(|| format!("CREATE {folder}")),
        }
    }
    Ok(())
}

/// Appends messages to a folder, creating it when missing.
pub async fn seed(
    session: &mut ImapSession,
    folder: &str,
    messages: &[SeedMessage],
) -> anyhow::Result<()> {
    ensure_folder(session, folder).await?;
    for m in messages {
        let flags = if m.flags.is_empty() {
            None
        } else {
            Some(format!("({})", m.flags.join(" ")))
        };
        let date = m
            .internal_date
            .map(|d| format!("\"{}\"", d.format("%d-%b-%Y %H:%M:%S %z")));
        session
            .append(folder, flags.as_deref(), date.as_deref(), &m.body)
            .await
            .with_context(|| format!("APPEND to {folder}"))?;
    }
    Ok(())
}

/// Every folder's name, as LIST returns it.
pub async fn folders(session: &mut ImapSession) -> anyhow::Result<Vec<String>> {
    Ok(list(session)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// Every folder with whether it can hold messages (not `\Noselect`/`\NonExistent`).
async fn list(session: &mut ImapSession) -> anyhow::Result<Vec<(String, bool)>> {
    use async_imap::types::NameAttribute;
    let mut names: Vec<(String, bool)> = session
        .list(None, Some("*"))
        .await?
        .try_collect::<Vec<_>>()
        .await?
        .iter()
        .map(|n| {
            let selectable = !n.attributes().iter().any(|a| match a {
                NameAttribute::NoSelect => true,
                NameAttribute::Extension(e) => e.eq_ignore_ascii_case("\\NonExistent"),
                _ => false,
            });
            (n.name().to_owned(), selectable)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Every message of a folder, by UID.
pub async fn read_folder(
    session: &mut ImapSession,
    folder: &str,
) -> anyhow::Result<Vec<StoredMessage>> {
    let mailbox = session
        .examine(folder)
        .await
        .with_context(|| format!("EXAMINE {folder}"))?;
    if mailbox.exists == 0 {
        return Ok(Vec::new());
    }
    let fetches: Vec<_> = session
        .uid_fetch("1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        .await?
        .try_collect()
        .await?;
    let mut out = Vec::new();
    for f in fetches {
        let mut flags: Vec<String> = f.flags().filter_map(|fl| flag_name(&fl)).collect();
        flags.sort();
        out.push(StoredMessage {
            uid: f.uid.context("no UID")?,
            body: f.body().context("no body")?.to_vec(),
            flags,
            internal_date: f
                .internal_date()
                .context("no INTERNALDATE")?
                .with_timezone(&Utc),
        });
    }
    out.sort_by_key(|m| m.uid);
    Ok(out)
}

/// The whole mailbox: folder name → messages.
pub async fn read_all(
    session: &mut ImapSession,
) -> anyhow::Result<BTreeMap<String, Vec<StoredMessage>>> {
    let mut all = BTreeMap::new();
    for (folder, selectable) in list(session).await? {
        if !selectable {
            continue;
        }
        // A parent that exists only by its children (maildir++) cannot be examined.
        if let Err(async_imap::error::Error::No(_)) = session.examine(&folder).await {
            continue;
        }
        let messages = read_folder(session, &folder).await?;
        all.insert(folder, messages);
    }
    Ok(all)
}

/// Seeds a whole mailbox, naming folders the server's way (`/` in paths becomes the
/// server's separator; non-ASCII names are encoded in modified UTF-7).
pub async fn seed_mailbox(
    server: &Dovecot,
    session: &mut ImapSession,
    mailbox: &[(&str, Vec<SeedMessage>)],
) -> anyhow::Result<()> {
    for (path, messages) in mailbox {
        let name = encode_path(server, path);
        seed(session, &name, messages).await?;
    }
    Ok(())
}

/// A Unicode path with `/` between levels, spelled the server's way.
pub fn encode_path(server: &Dovecot, path: &str) -> String {
    let encoded: Vec<String> = path
        .split('/')
        .map(|s| utf7_imap::encode_utf7_imap(s.to_owned()))
        .collect();
    server.folder(&encoded.join("/"))
}

/// Two Dovecot servers (`/` layout), each with its user; the source holds
/// [`crate::corpus::mailbox`].
pub async fn seeded_pair(
    (src_user, src_pw): (&str, &str),
    (dst_user, dst_pw): (&str, &str),
) -> anyhow::Result<(Dovecot, Dovecot)> {
    use crate::dovecot::Layout;
    let src = Dovecot::start(Layout::Slash)?;
    src.add_user(src_user, src_pw)?;
    let dst = Dovecot::start(Layout::Slash)?;
    dst.add_user(dst_user, dst_pw)?;
    let mut s = login(&src, src_user, src_pw).await?;
    seed_mailbox(&src, &mut s, &crate::corpus::mailbox()).await?;
    s.logout().await?;
    Ok((src, dst))
}

/// Changes flags of messages of a folder: `change` is a STORE item such as
/// `+FLAGS (\Flagged $Work)` or `-FLAGS (\Seen)`.
pub async fn store(
    session: &mut ImapSession,
    folder: &str,
    uids: &str,
    change: &str,
) -> anyhow::Result<()> {
    session.select(folder).await?;
    let _: Vec<_> = session.uid_store(uids, change).await?.try_collect().await?;
    Ok(())
}

/// Deletes messages of a folder for good (STORE \Deleted, then UID EXPUNGE).
pub async fn expunge(session: &mut ImapSession, folder: &str, uids: &str) -> anyhow::Result<()> {
    store(session, folder, uids, "+FLAGS.SILENT (\\Deleted)").await?;
    let _: Vec<_> = session.uid_expunge(uids).await?.try_collect().await?;
    Ok(())
}

/// A message as a fingerprint: the SHA-256 of its bytes, its flags, its INTERNALDATE.
pub type Digest = ([u8; 32], Vec<String>, i64);

/// The whole mailbox as fingerprints, read a few hundred messages at a time: a mailbox
/// of any size is compared without holding it (the benchmark's large runs).
pub async fn digest_all(
    session: &mut ImapSession,
) -> anyhow::Result<BTreeMap<String, Vec<Digest>>> {
    use sha2::{Digest as _, Sha256};
    let mut all = BTreeMap::new();
    for (folder, selectable) in list(session).await? {
        if !selectable {
            continue;
        }
        let Ok(mailbox) = session.examine(&folder).await else {
            continue;
        };
        let mut digests = Vec::with_capacity(mailbox.exists as usize);
        if mailbox.exists > 0 {
            let mut uids: Vec<u32> = session.uid_search("ALL").await?.into_iter().collect();
            uids.sort_unstable();
            for chunk in uids.chunks(300) {
                let set = chunk
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let fetches: Vec<_> = session
                    .uid_fetch(&set, "(UID FLAGS INTERNALDATE BODY.PEEK[])")
                    .await?
                    .try_collect()
                    .await?;
                for f in fetches {
                    let mut flags: Vec<String> =
                        f.flags().filter_map(|fl| flag_name(&fl)).collect();
                    flags.sort();
                    let hash: [u8; 32] = Sha256::digest(f.body().context("no body")?).into();
                    let date = f.internal_date().context("no INTERNALDATE")?.timestamp();
                    digests.push((hash, flags, date));
                }
            }
        }
        digests.sort();
        all.insert(folder, digests);
    }
    Ok(all)
}
