//! Later passes bring changes over: flags and keywords of earlier copies (CONDSTORE
//! or a FLAGS comparison), and with `sync_deletions` the copies whose source message
//! was expunged (only this migration's copies).

use super::*;

/// Brings the flags of copies made by earlier runs in line with their source
/// messages: with CONDSTORE, only the messages changed since the mod-sequence of the
/// last pass that added up; without it, every one (a FLAGS fetch on either side).
/// Returns how many copies changed.
pub(super) async fn sync_flags(
    sides: &mut Sides,
    fs: &mut FolderState,
    earlier: &[u32],
    listed: &[u32],
    before: FolderStatus,
) -> Result<u64, FolderError> {
    let present: HashSet<u32> = listed.iter().copied().collect();
    let ours: Vec<u32> = earlier
        .iter()
        .copied()
        .filter(|uid| present.contains(uid))
        .collect();
    if ours.is_empty() {
        return Ok(0);
    }
    let changed_since = if sides.src.caps.condstore && fs.source_modseq != 0 {
        if before.highest_modseq == Some(fs.source_modseq) {
            return Ok(0);
        }
        Some(fs.source_modseq)
    } else {
        None
    };
    let source_flags = sides.src.fetch_flags(&ours, changed_since).await?;
    if source_flags.is_empty() {
        return Ok(0);
    }
    // Copies made without UIDPLUS are known by key only: found once, then by UID.
    if source_flags
        .iter()
        .any(|(uid, _)| fs.ledger().get(uid).is_some_and(|e| e.dest_uid.is_none()))
    {
        locate_copies(&mut sides.dst, fs).await?;
    }
    // Source UID → destination UID of its copy.
    let copies: BTreeMap<u32, u32> = source_flags
        .iter()
        .filter_map(|(uid, _)| {
            fs.ledger()
                .get(uid)
                .and_then(|e| e.dest_uid)
                .map(|d| (*uid, d))
        })
        .collect();
    if copies.is_empty() {
        return Ok(0);
    }
    let dest_uids: Vec<u32> = copies.values().copied().collect();
    let dest_flags: BTreeMap<u32, Vec<String>> = sides
        .dst
        .fetch_flags(&dest_uids, None)
        .await?
        .into_iter()
        .collect();
    let updates = flag_updates(&source_flags, &copies, &dest_flags);
    let mut n = 0;
    for (flags, uids) in &updates {
        sides.dst.set_flags(uids, flags).await?;
        n += uids.len() as u64;
    }
    Ok(n)
}

/// The destination copies whose flags differ from their source message's, grouped by
/// the flags they must have (one STORE per group). Pure.
pub(super) fn flag_updates(
    source: &[(u32, Vec<String>)],
    copies: &BTreeMap<u32, u32>,
    dest: &BTreeMap<u32, Vec<String>>,
) -> BTreeMap<Vec<String>, Vec<u32>> {
    let mut out: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
    for (uid, flags) in source {
        let Some(dest_uid) = copies.get(uid) else {
            continue;
        };
        // A copy gone from the destination has nothing to update.
        let Some(current) = dest.get(dest_uid) else {
            continue;
        };
        if current != flags {
            out.entry(flags.clone()).or_default().push(*dest_uid);
        }
    }
    out
}

/// Removes at the destination the copies this migration made of source messages that
/// are no longer at the source, and notes each in the ledger. Never a message the
/// migration found there (skipped) or whose copy it cannot name (no UIDPLUS).
pub(super) async fn sync_deletions(
    sides: &mut Sides,
    fs: &mut FolderState,
    now_listed: &[u32],
) -> Result<u64, FolderError> {
    let present: HashSet<u32> = now_listed.iter().copied().collect();
    let gone: Vec<(u32, u32)> = fs
        .ledger()
        .iter()
        .filter(|(uid, e)| !present.contains(uid) && !e.skipped && !e.removed && !e.source_deleted)
        .filter_map(|(uid, e)| e.dest_uid.map(|d| (*uid, d)))
        .collect();
    if gone.is_empty() {
        return Ok(0);
    }
    if !sides.dst.caps.uidplus {
        return Err(FolderError::Other(anyhow::anyhow!(
            "deletions cannot be brought over: the destination has no UIDPLUS, so Ferry cannot expunge exactly its own copies"
        )));
    }
    let mut removed = 0;
    for chunk in gone.chunks(BATCH_MESSAGES) {
        let dest_uids: Vec<u32> = chunk.iter().map(|(_, d)| *d).collect();
        sides.dst.delete_uids(&dest_uids).await?;
        for (uid, _) in chunk {
            fs.update(*uid, |e| e.removed = true);
        }
        removed += chunk.len() as u64;
    }
    Ok(removed)
}
