//! A migration's passes, folders and ledger: what its work writes as it goes (each
//! folder's checkpoint with the ledger rows it changed, the folders' counts for the
//! bars, a pass opened and closed with its report), and what the pages read back.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use std::collections::BTreeMap;

use super::entities::{migration_folders, migration_ledger, migration_passes, migrations};
use super::{Store, StoreError, StoreResult, Tx};
use crate::domain::{CopyRecord, FolderProgress, MigrationId, Pass, PassId, PassKind};

/// Ledger rows per INSERT: 10 values each, well under SQLite's and PostgreSQL's limits
/// on bound values, and a batch of the engine (200 messages) in one statement.
const LEDGER_ROWS_PER_INSERT: usize = 250;

/// A folder about to be copied in a pass: its names and what the pass expects.
#[derive(Debug, Clone)]
pub struct PlannedFolder {
    pub source_folder: String,
    pub source_path: String,
    pub dest_path: String,
}

/// A folder's counts as a pass goes.
#[derive(Debug, Clone, Default)]
pub struct FolderCounts {
    /// pending, copying, done.
    pub status: &'static str,
    pub expected: u64,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
}

/// A pass's end: its status, report and totals.
#[derive(Debug, Clone)]
pub struct PassEnd {
    /// succeeded, failed, cancelled.
    pub status: &'static str,
    pub report: Option<serde_json::Value>,
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn db_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Sets counter columns.
fn set_counts<E: EntityTrait, C: sea_orm::sea_query::IntoIden, const N: usize>(
    mut update: sea_orm::UpdateMany<E>,
    counts: [(C, u64); N],
) -> sea_orm::UpdateMany<E> {
    for (col, n) in counts {
        update = update.col_expr(col, Expr::value(db_count(n)));
    }
    update
}

fn pass_from(row: migration_passes::Model) -> Pass {
    Pass {
        id: PassId(row.id),
        migration_id: MigrationId(row.migration_id),
        number: u32::try_from(row.number).unwrap_or(0),
        kind: row.kind,
        status: row.status,
        started_at: row.started_at,
        finished_at: row.finished_at,
        report: row.report.and_then(|r| serde_json::from_str(&r).ok()),
        copied: count(row.copied),
        skipped: count(row.skipped),
        failed: count(row.failed),
        bytes: count(row.bytes),
    }
}

fn folder_from(row: migration_folders::Model) -> FolderProgress {
    FolderProgress {
        position: u32::try_from(row.position).unwrap_or(0),
        source_folder: row.source_folder,
        source_path: row.source_path,
        dest_path: row.dest_path,
        status: row.status,
        expected: count(row.expected),
        copied: count(row.copied),
        skipped: count(row.skipped),
        failed: count(row.failed),
        bytes: count(row.bytes),
        updated_at: Some(row.updated_at),
    }
}

impl Store {
    pub async fn migration_passes(&self, id: MigrationId) -> StoreResult<Vec<Pass>> {
        Ok(migration_passes::Entity::find()
            .filter(migration_passes::Column::MigrationId.eq(id))
            .order_by_asc(migration_passes::Column::Number)
            .all(&self.db)
            .await?
            .into_iter()
            .map(pass_from)
            .collect())
    }

    /// The passes of several migrations in one query, by migration, in their order.
    pub async fn passes_of(
        &self,
        ids: &[MigrationId],
    ) -> StoreResult<std::collections::HashMap<MigrationId, Vec<Pass>>> {
        let mut by_id: std::collections::HashMap<MigrationId, Vec<Pass>> =
            std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            for row in migration_passes::Entity::find()
                .filter(migration_passes::Column::MigrationId.is_in(chunk.iter().copied()))
                .order_by_asc(migration_passes::Column::Number)
                .all(&self.db)
                .await?
            {
                by_id
                    .entry(MigrationId(row.migration_id))
                    .or_default()
                    .push(pass_from(row));
            }
        }
        Ok(by_id)
    }

    /// The pass a crash interrupted, if any: the last one, still running.
    pub async fn open_pass(&self, id: MigrationId) -> StoreResult<Option<Pass>> {
        Ok(migration_passes::Entity::find()
            .filter(migration_passes::Column::MigrationId.eq(id))
            .order_by_desc(migration_passes::Column::Number)
            .one(&self.db)
            .await?
            .filter(|p| p.status == "running")
            .map(pass_from))
    }

    /// Each folder's saved checkpoint (the engine's JSON), by source folder.
    pub async fn folder_checkpoints(&self, id: MigrationId) -> StoreResult<Vec<(String, String)>> {
        Ok(migration_folders::Entity::find()
            .filter(migration_folders::Column::MigrationId.eq(id))
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|f| f.checkpoint.map(|c| (f.source_folder, c)))
            .collect())
    }

    /// A migration's ledger: by source folder, each source UID's record.
    pub async fn ledger(
        &self,
        id: MigrationId,
    ) -> StoreResult<BTreeMap<String, BTreeMap<u32, CopyRecord>>> {
        let mut out: BTreeMap<String, BTreeMap<u32, CopyRecord>> = BTreeMap::new();
        let rows = migration_ledger::Entity::find()
            .filter(migration_ledger::Column::MigrationId.eq(id))
            .all(&self.db)
            .await?;
        for row in rows {
            let uid = u32::try_from(row.source_uid).map_err(|_| {
                StoreError::Corrupt(format!("migration {id}: ledger UID {}", row.source_uid))
            })?;
            out.entry(row.source_folder).or_default().insert(
                uid,
                CopyRecord {
                    key: row.key,
                    dest_uid: row.dest_uid.and_then(|u| u32::try_from(u).ok()),
                    skipped: row.skipped,
                    source_deleted: row.source_deleted,
                    pass: u32::try_from(row.pass).unwrap_or(0),
                    removed: row.removed,
                    version: row.version,
                },
            );
        }
        Ok(out)
    }

    /// Saves one folder's checkpoint, creating its row when the pass has not planned it,
    /// with the ledger entries that changed (`replace`: the folder's saved ledger goes
    /// first), if `holder` still holds the migration's lease at `now`; false (nothing
    /// written) when it does not. This fences a worker whose lease ran out: once another worker
    /// has claimed the migration, the old one can neither overwrite the checkpoints
    /// the new one goes on from nor, since every batch is saved as in flight before it
    /// is appended, append another batch.
    pub async fn save_folder_checkpoint(
        &self,
        id: MigrationId,
        source_folder: &str,
        checkpoint: &str,
        ledger: (bool, &[(u32, CopyRecord)]),
        holder: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let tx = self.db.begin().await?;
        // A write first: SQLite takes its write lock at once (a read first could fail
        // to upgrade), and PostgreSQL locks the row a claim would change.
        let held = migrations::Entity::update_many()
            .col_expr(migrations::Column::LeaseOwner, Expr::value(holder))
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::LeaseOwner.eq(holder))
            .filter(migrations::Column::LeaseUntil.gt(now))
            .exec(&tx)
            .await?;
        if held.rows_affected != 1 {
            return Ok(false);
        }
        // An upsert: the pass's plan may not be written yet (it is, once a second).
        use migration_folders::Column as F;
        migration_folders::Entity::insert(migration_folders::ActiveModel {
            migration_id: Set(id.0),
            position: Set(-1),
            source_folder: Set(source_folder.to_owned()),
            source_path: Set(source_folder.to_owned()),
            dest_path: Set(String::new()),
            checkpoint: Set(Some(checkpoint.to_owned())),
            status: Set("pending".into()),
            updated_at: Set(now),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([F::MigrationId, F::SourceFolder])
                .update_columns([F::Checkpoint, F::UpdatedAt])
                .to_owned(),
        )
        .exec(&tx)
        .await?;
        let (replace, entries) = ledger;
        use migration_ledger::Column as L;
        if replace {
            migration_ledger::Entity::delete_many()
                .filter(L::MigrationId.eq(id))
                .filter(L::SourceFolder.eq(source_folder))
                .exec(&tx)
                .await?;
        }
        for chunk in entries.chunks(LEDGER_ROWS_PER_INSERT) {
            let rows = chunk.iter().map(|(uid, e)| migration_ledger::ActiveModel {
                migration_id: Set(id.0),
                source_folder: Set(source_folder.to_owned()),
                source_uid: Set(i64::from(*uid)),
                key: Set(e.key.clone()),
                dest_uid: Set(e.dest_uid.map(i64::from)),
                skipped: Set(e.skipped),
                source_deleted: Set(e.source_deleted),
                pass: Set(i32::try_from(e.pass).unwrap_or(i32::MAX)),
                removed: Set(e.removed),
                version: Set(e.version.clone()),
            });
            migration_ledger::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([L::MigrationId, L::SourceFolder, L::SourceUid])
                        .update_columns([
                            L::Key,
                            L::DestUid,
                            L::Skipped,
                            L::SourceDeleted,
                            L::Pass,
                            L::Removed,
                            L::Version,
                        ])
                        .to_owned(),
                )
                .exec(&tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A pass's folders, in order, their counts back to zero (checkpoints kept).
    pub async fn plan_folders(
        &self,
        id: MigrationId,
        folders: &[PlannedFolder],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let tx = self.db.begin().await?;
        migration_folders::Entity::update_many()
            .col_expr(migration_folders::Column::Position, Expr::value(-1))
            .filter(migration_folders::Column::MigrationId.eq(id))
            .exec(&tx)
            .await?;
        use migration_folders::Column as F;
        for (position, f) in folders.iter().enumerate() {
            migration_folders::Entity::insert(migration_folders::ActiveModel {
                migration_id: Set(id.0),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                source_folder: Set(f.source_folder.clone()),
                source_path: Set(f.source_path.clone()),
                dest_path: Set(f.dest_path.clone()),
                checkpoint: Set(None),
                status: Set("pending".into()),
                updated_at: Set(now),
                ..Default::default()
            })
            .on_conflict(
                // A row a checkpoint created keeps its checkpoint; counts start again.
                OnConflict::columns([F::MigrationId, F::SourceFolder])
                    .update_columns([
                        F::Position,
                        F::SourcePath,
                        F::DestPath,
                        F::Status,
                        F::Expected,
                        F::Copied,
                        F::Skipped,
                        F::Failed,
                        F::Bytes,
                        F::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&tx)
            .await?;
        }
        Ok(tx.commit().await?)
    }

    /// A folder's counts so far in this pass.
    pub async fn folder_progress(
        &self,
        id: MigrationId,
        source_path: &str,
        counts: &FolderCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        use migration_folders::Column as F;
        set_counts(
            migration_folders::Entity::update_many(),
            [
                (F::Expected, counts.expected),
                (F::Copied, counts.copied),
                (F::Skipped, counts.skipped),
                (F::Failed, counts.failed),
                (F::Bytes, counts.bytes),
            ],
        )
        .col_expr(F::Status, Expr::value(counts.status))
        .col_expr(migration_folders::Column::UpdatedAt, Expr::value(now))
        .filter(migration_folders::Column::MigrationId.eq(id))
        .filter(migration_folders::Column::SourcePath.eq(source_path))
        .filter(migration_folders::Column::Position.gte(0))
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// The folders of several migrations in one query, by migration.
    pub async fn folders_of(
        &self,
        ids: &[MigrationId],
    ) -> StoreResult<std::collections::HashMap<MigrationId, Vec<FolderProgress>>> {
        let mut by_id: std::collections::HashMap<MigrationId, Vec<FolderProgress>> =
            std::collections::HashMap::new();
        for row in migration_folders::Entity::find()
            .filter(migration_folders::Column::MigrationId.is_in(ids.iter().copied()))
            .filter(migration_folders::Column::Position.gte(0))
            .order_by_asc(migration_folders::Column::Position)
            .all(&self.db)
            .await?
        {
            by_id
                .entry(MigrationId(row.migration_id))
                .or_default()
                .push(folder_from(row));
        }
        Ok(by_id)
    }

    pub async fn migration_folders(&self, id: MigrationId) -> StoreResult<Vec<FolderProgress>> {
        Ok(migration_folders::Entity::find()
            .filter(migration_folders::Column::MigrationId.eq(id))
            .filter(migration_folders::Column::Position.gte(0))
            .order_by_asc(migration_folders::Column::Position)
            .all(&self.db)
            .await?
            .into_iter()
            .map(folder_from)
            .collect())
    }
}

impl Tx {
    /// Numbers and opens a new pass.
    pub async fn start_pass(
        &self,
        migration_id: MigrationId,
        kind: PassKind,
        now: DateTime<Utc>,
    ) -> StoreResult<Pass> {
        let last = migration_passes::Entity::find()
            .filter(migration_passes::Column::MigrationId.eq(migration_id))
            .order_by_desc(migration_passes::Column::Number)
            .one(&self.inner)
            .await?
            .map_or(0, |p| p.number);
        let row = migration_passes::ActiveModel {
            migration_id: Set(migration_id.0),
            number: Set(last + 1),
            kind: Set(kind.as_str().to_owned()),
            status: Set("running".into()),
            started_at: Set(now),
            ..Default::default()
        }
        .insert(&self.inner)
        .await?;
        Ok(pass_from(row))
    }

    /// Closes a pass with its report.
    pub async fn finish_pass(
        &self,
        pass_id: PassId,
        end: &PassEnd,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let report = end
            .report
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        use migration_passes::Column as P;
        set_counts(
            migration_passes::Entity::update_many(),
            [
                (P::Copied, end.copied),
                (P::Skipped, end.skipped),
                (P::Failed, end.failed),
                (P::Bytes, end.bytes),
            ],
        )
        .col_expr(P::Status, Expr::value(end.status))
        .col_expr(P::FinishedAt, Expr::value(now))
        .col_expr(P::Report, Expr::value(report))
        .filter(migration_passes::Column::Id.eq(pass_id))
        .exec(&self.inner)
        .await?;
        Ok(())
    }
}
