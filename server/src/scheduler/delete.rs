//! "Delete migrated" under a worker: the engine (`sync::mail::delete_migrated`) removes
//! exactly the copies this migration made from a given pass on; the worker records the
//! outcome, or the failure with its side.

use serde_json::json;

use super::runner::{Runner, WorkOutcome};
use crate::connectors::net::Pulse;
use crate::domain::{ErrorCode, Migration, Work};
use crate::sync::mail::{MigrateError, Removed, delete_migrated};

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
        let checkpoints = self.checkpoints(&m, holder);
        let reach = self.reach().with_pulse(pulse);
        let Removed {
            removed,
            without_uid: kept_unknown,
        } = match delete_migrated(&dest, &reach, &checkpoints, from_pass).await {
            Ok(done) => done,
            Err(MigrateError::Connect(_, err)) => {
                return self
                    .connect_failed(
                        &m,
                        m.status,
                        Work::DeleteMigrated { from_pass },
                        "destination",
                        &m.dest,
                        err,
                    )
                    .await;
            }
            // The engine's own error as it is, so a lost lease is still recognised.
            Err(MigrateError::Other(err)) => return Err(err),
            Err(err) => return Err(err.into()),
        };
        self.work_done(
            &m,
            "migration.migrated_deleted",
            json!({ "from_pass": from_pass, "removed": removed, "without_uid": kept_unknown }),
        )
        .await?;
        tracing::info!(
            migration = %m.id,
            from_pass,
            removed,
            "Migrated messages removed"
        );
        Ok(WorkOutcome::Done)
    }
}
