//! The short looks at a server that are not a copy: the survey that test-connection
//! shows (each folder with its count and size) and the login check of both sides before
//! a migration is scheduled. Like the engine, they reach a server only through
//! `connectors::imap`, which connects through the checked path of `connectors::net`.

use crate::connectors::imap::{ConnectError, ImapConnection};
use crate::connectors::net::Reach;
use crate::domain::ImapEndpoint;
use crate::sync::mail::{Side, connect_pair};

/// A selectable folder, by its decoded path, with what it holds.
#[derive(Debug, Clone)]
pub struct FolderSize {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
}

/// Logs in and lists every selectable folder with its count and size. A server that
/// cannot be reached or refuses the login is the inner error (for the person testing);
/// one that fails after the login is the outer one.
pub async fn survey(
    endpoint: &ImapEndpoint,
    reach: &Reach,
) -> anyhow::Result<Result<Vec<FolderSize>, ConnectError>> {
    let mut conn = match ImapConnection::connect(endpoint, reach).await {
        Ok(conn) => conn,
        Err(err) => return Ok(Err(err)),
    };
    let listed = conn.list_folders().await?;
    let namespace = conn.folder_namespace(&listed);
    let mut folders = Vec::new();
    for folder in listed.iter().filter(|f| f.selectable) {
        let (messages, bytes) = conn.folder_size(&folder.raw).await?;
        folders.push(FolderSize {
            name: namespace.decode(&folder.raw).join("/"),
            messages,
            bytes,
        });
    }
    conn.logout().await;
    Ok(Ok(folders))
}

/// Logs in on both sides at once and out again. The source's failure is reported
/// first when both fail.
pub async fn check_logins(
    source: &ImapEndpoint,
    dest: &ImapEndpoint,
    reach: &Reach,
) -> Result<(), (Side, ConnectError)> {
    let (src, dst) = connect_pair(source, dest, reach).await?;
    tokio::join!(src.logout(), dst.logout());
    Ok(())
}
