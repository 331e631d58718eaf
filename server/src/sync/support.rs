//! The support mailbox as the desk's reader sees it: open it (the processed folder
//! created when missing, folder names written as `/`-separated paths and spelled the
//! server's way), list what waits in the folder read, fetch one email's bytes, move
//! it to the processed folder once its ticket holds it, and wait for more (IDLE where
//! the server has it). What is stored, and when, is the caller's: it files an email
//! away only after its ticket is committed, so a crash between the two reads the same
//! email again, and the ticket's store finds it by its UIDVALIDITY and UID.

use std::time::Duration;

use crate::connectors::imap::{ImapConnection, OpError};
use crate::connectors::net::Reach;
use crate::domain::ImapEndpoint;

/// An open support mailbox, its folder selected.
#[derive(Debug)]
pub struct SupportMailbox {
    conn: Option<ImapConnection>,
    /// The folder read and the processed folder, in the server's spelling.
    folder: String,
    processed: String,
    uidvalidity: u32,
}

/// Why the support mailbox could not be read, in words for the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    #[error("{0}")]
    Connect(#[from] crate::connectors::imap::ConnectError),
    #[error("{0}")]
    Imap(#[from] OpError),
    #[error("the folder {0:?} does not exist on the support mailbox")]
    NoFolder(String),
}

impl SupportMailbox {
    /// Logs in, creates the processed folder when missing and selects the folder read.
    pub async fn open(
        endpoint: &ImapEndpoint,
        reach: &Reach,
        folder: &str,
        processed: &str,
    ) -> Result<Self, SupportError> {
        let mut conn = ImapConnection::connect(endpoint, reach).await?;
        let listed = conn.list_folders().await?;
        let namespace = conn.folder_namespace(&listed);
        let spell = |path: &str| {
            let parts: Vec<String> = path
                .split('/')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            namespace.encode(&parts)
        };
        let (folder, processed) = (spell(folder), spell(processed));
        let exists = |name: &str| {
            listed
                .iter()
                .any(|f| f.selectable && f.raw.eq_ignore_ascii_case(name))
        };
        if !exists(&folder) {
            return Err(SupportError::NoFolder(folder));
        }
        if !exists(&processed) {
            conn.create_folder(&processed).await?;
            tracing::info!(folder = %processed, "Created the support mailbox's processed folder");
        }
        let status = conn.select(&folder).await?;
        Ok(Self {
            conn: Some(conn),
            folder,
            processed,
            uidvalidity: status.uidvalidity,
        })
    }

    fn conn(&mut self) -> Result<&mut ImapConnection, OpError> {
        self.conn
            .as_mut()
            .ok_or_else(|| OpError::Connection("the connection was lost while idle".into()))
    }

    /// The folder read, as the server spells it (the key of where an email was read).
    pub fn folder(&self) -> &str {
        &self.folder
    }

    pub fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }

    /// The UIDs waiting in the folder, oldest first.
    pub async fn waiting(&mut self) -> Result<Vec<u32>, OpError> {
        // A NOOP-like SELECT again: some servers tell of new mail only on a command.
        let folder = self.folder.clone();
        let status = self.conn()?.select(&folder).await?;
        self.uidvalidity = status.uidvalidity;
        self.conn()?.search_undeleted().await
    }

    /// One email's bytes; `None` when it is gone (another reader took it).
    pub async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, OpError> {
        let bodies = self.conn()?.fetch_bodies(&[uid]).await?;
        Ok(bodies.get(uid).map(<[u8]>::to_vec))
    }

    /// Moves an email whose ticket holds it to the processed folder.
    pub async fn file_away(&mut self, uid: u32) -> Result<(), OpError> {
        let processed = self.processed.clone();
        self.conn()?.move_uids(&[uid], &processed).await
    }

    /// Waits for new mail: IDLE up to `max` where the server has it (the caller keeps
    /// `max` under the 29 minutes after which a server may drop an idle client), else
    /// sleeps `max`.
    pub async fn wait(&mut self, max: Duration) -> Result<(), OpError> {
        let conn = self
            .conn
            .take()
            .ok_or_else(|| OpError::Connection("the connection was lost while idle".into()))?;
        let (conn, idled) = conn.idle(max).await?;
        self.conn = Some(conn);
        if !idled {
            tokio::time::sleep(max).await;
        }
        Ok(())
    }

    pub async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            conn.logout().await;
        }
    }
}
