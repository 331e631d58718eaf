//! "Delete migrated": removes from the destination exactly the copies this migration
//! made from a given pass on (by the UIDs its ledger recorded), and nothing else; each
//! folder's ledger notes the removal before the next folder.

use super::*;

/// What a removal did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Copies expunged at the destination.
    pub removed: u64,
    /// Copies of those passes whose destination UID was never known (a destination
    /// without UIDPLUS): left in place, since they cannot be told apart.
    pub without_uid: u64,
}

/// Removes the copies recorded from pass `from_pass` on. A folder whose UIDVALIDITY
/// changed since (recreated) is left alone: its UIDs now name other messages.
pub async fn delete_migrated<C: CheckpointStore>(
    dest: &ImapEndpoint,
    reach: &Reach,
    checkpoints: &C,
    from_pass: u32,
) -> Result<Removed, MigrateError> {
    let state = checkpoints.load().await?;
    let mut conn = ImapConnection::connect(dest, reach)
        .await
        .map_err(|err| MigrateError::Connect(Side::Destination, err))?;
    let mut done = Removed::default();
    for (folder, mut fs) in state.folders {
        let of_those = |e: &Entry| e.pass >= from_pass && !e.skipped && !e.removed;
        let uids: Vec<u32> = fs
            .ledger()
            .values()
            .filter(|e| of_those(e))
            .filter_map(|e| e.dest_uid)
            .collect();
        done.without_uid += fs
            .ledger()
            .values()
            .filter(|e| of_those(e) && e.dest_uid.is_none())
            .count() as u64;
        if uids.is_empty() {
            continue;
        }
        let selected = conn.select(&fs.dest).await.map_err(op_error)?;
        if selected.uidvalidity != fs.dest_uidvalidity {
            tracing::warn!(folder = %fs.dest, "Destination folder was recreated; its copies are not removed");
            continue;
        }
        if !conn.delete_uids(&uids).await.map_err(op_error)? {
            return Err(MigrateError::Refused(
                "the destination server lacks UIDPLUS, so only exactly this migration's copies could not be expunged".into(),
            ));
        }
        let gone: HashSet<u32> = uids.iter().copied().collect();
        fs.update_all(|entry| {
            let hit = entry.dest_uid.is_some_and(|u| gone.contains(&u));
            entry.removed |= hit;
            hit
        });
        done.removed += uids.len() as u64;
        save(checkpoints, &folder, &mut fs).await?;
    }
    conn.logout().await;
    Ok(done)
}
