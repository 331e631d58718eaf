//! "Delete migrated": a worker removes from the destination exactly the copies this
//! migration made from a given pass on, and nothing else.

use std::collections::HashSet;

use serde_json::json;

use super::progress::DbCheckpoints;
use super::runner::{Runner, WorkOutcome};
use crate::connectors::imap::ImapConnection;
use crate::connectors::net::Pulse;
use crate::domain::{ErrorCode, Migration, Work};
use crate::sync::checkpoint::CheckpointStore;

impl Runner {
    /// Removes from the destination the copies this migration made from pass
    /// `from_pass` on, and nothing else; the status stays as it was.
    pub(super) async fn delete_migrated_now(
        &self,
        m: Migration,
        from_pass: u32,
        holder: &str,
        pulse: &Pulse,
    ) -> anyhow::Result<WorkOutcome> {
        let Some((_, dest)) = self.endpoints(&m).await? else {
            return self
                .fail(
                    &m,
                    m.status,
                    Work::DeleteMigrated { from_pass },
                    ErrorCode::CredentialsPurged,
                    "its stored passwords were erased after the retention period".into(),
                    None,
                )
                .await;
        };
        let checkpoints = DbCheckpoints {
            store: self.store().clone(),
            migration_id: m.id,
            holder: holder.to_owned(),
        };
        let state = checkpoints.load().await?;
        let mut conn = match ImapConnection::connect(&dest, &self.reach().with_pulse(pulse)).await {
            Ok(conn) => conn,
            Err(err) => {
                let dest_account = m.dest.clone();
                return self
                    .connect_failed(
                        &m,
                        m.status,
                        Work::DeleteMigrated { from_pass },
                        "destination",
                        &dest_account,
                        err,
                    )
                    .await;
            }
        };
        let (mut removed, mut kept_unknown) = (0u64, 0u64);
        for (folder, mut fs) in state.folders {
            let uids: Vec<u32> = fs
                .ledger()
                .values()
                .filter(|e| e.pass >= from_pass && !e.skipped && !e.removed)
                .filter_map(|e| e.dest_uid)
                .collect();
            kept_unknown += fs
                .ledger()
                .values()
                .filter(|e| e.pass >= from_pass && !e.skipped && !e.removed && e.dest_uid.is_none())
                .count() as u64;
            if uids.is_empty() {
                continue;
            }
            let selected = conn
                .select(&fs.dest)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if selected.uidvalidity != fs.dest_uidvalidity {
                tracing::warn!(migration = m.id, folder = %fs.dest, "Destination folder was recreated; its copies are not removed");
                continue;
            }
            if !conn
                .delete_uids(&uids)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                anyhow::bail!(
                    "the destination server lacks UIDPLUS, so only exactly this migration's copies could not be expunged"
                );
            }
            let gone: HashSet<u32> = uids.iter().copied().collect();
            fs.update_all(|entry| {
                let hit = entry.dest_uid.is_some_and(|u| gone.contains(&u));
                entry.removed |= hit;
                hit
            });
            removed += uids.len() as u64;
            crate::sync::checkpoint::save(&checkpoints, &folder, &mut fs).await?;
        }
        conn.logout().await;
        self.work_done(
            &m,
            "migration.migrated_deleted",
            json!({ "from_pass": from_pass, "removed": removed, "without_uid": kept_unknown }),
        )
        .await?;
        tracing::info!(
            migration = m.id,
            from_pass,
            removed,
            "Migrated messages removed"
        );
        Ok(WorkOutcome::Done)
    }
}
