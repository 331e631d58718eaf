//! Migrations, their passes and their folders. A status change is a compare-and-set
//! on the status it expects, so a worker and a person acting at the same moment never
//! overwrite each other: the second one learns that the migration moved on.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use std::collections::BTreeMap;

use super::entities::{migration_folders, migration_ledger, migration_passes, migrations};
use super::{Store, StoreError, StoreResult, Tx};
use crate::domain::{
    CopyRecord, ErrorCode, FolderProgress, Migration, MigrationId, MigrationOptions,
    MigrationStatus, Pass, PassId, PassKind, Security, ServerAccount, Work,
};

/// Ledger rows per INSERT: 9 values each, well under SQLite's and PostgreSQL's limits
/// on bound values, and a batch of the engine (200 messages) in one statement.
const LEDGER_ROWS_PER_INSERT: usize = 250;

/// A migration to insert, its passwords already encrypted.
#[derive(Debug)]
pub struct NewMigration {
    pub status: MigrationStatus,
    pub created_by: String,
    pub requester_email: String,
    pub source: ServerAccount,
    pub source_secret: String,
    pub dest: ServerAccount,
    pub dest_secret: String,
    pub options: MigrationOptions,
    pub two_pass: bool,
    pub mx_domain: String,
    pub window_start: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub next_work: Option<Work>,
    pub resume_work: Option<Work>,
    pub next_run_at: Option<DateTime<Utc>>,
}

/// Which migrations to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct MigrationFilter {
    pub status: Option<MigrationStatus>,
    /// Part of the source or destination username or the requester's email.
    pub search: Option<String>,
    pub page: u64,
    pub per_page: u64,
}

/// The fields a status change may set alongside the status (`Some` sets, to a value
/// or to NULL).
#[derive(Debug, Clone, Default)]
pub struct StatusChange {
    pub next_work: Option<Option<Work>>,
    pub resume_work: Option<Option<Work>>,
    pub next_run_at: Option<Option<DateTime<Utc>>>,
    pub started_at: Option<Option<DateTime<Utc>>>,
    pub finished_at: Option<Option<DateTime<Utc>>>,
    pub mx_switched_at: Option<Option<DateTime<Utc>>>,
    /// A stable code and a sentence.
    pub error: Option<Option<(ErrorCode, String)>>,
    pub options: Option<MigrationOptions>,
    /// A new window (UTC) and the requester's time zone it was given in.
    pub window: Option<(Option<DateTime<Utc>>, String)>,
    /// Frees the worker's hold in the same write.
    pub release_lease: bool,
    /// Changes nothing when a worker holds the migration at this instant (it may be
    /// starting the work the change would move).
    pub only_unleased_at: Option<DateTime<Utc>>,
}

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

/// The work that copies mail and so counts against `capacity.max_concurrent`.
const PASS_WORK: [&str; 3] = ["pre_mx", "post_mx", "sync"];

/// The key that allows one active migration per destination mailbox.
pub fn dest_key(dest: &ServerAccount) -> String {
    format!("{}|{}", dest.host, dest.username).to_lowercase()
}

fn account(
    host: String,
    port: i32,
    security: &str,
    username: String,
    authuser: Option<String>,
) -> StoreResult<ServerAccount> {
    Ok(ServerAccount {
        host,
        port: u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?,
        security: security
            .parse::<Security>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        username,
        authuser,
    })
}

fn work(raw: Option<String>) -> StoreResult<Option<Work>> {
    raw.map(|w| w.parse::<Work>().map_err(StoreError::Corrupt))
        .transpose()
}

fn migration_from(row: migrations::Model) -> StoreResult<Migration> {
    let status = MigrationStatus::parse(&row.status).ok_or_else(|| {
        StoreError::Corrupt(format!("migration {}: status {:?}", row.id, row.status))
    })?;
    let options: MigrationOptions = serde_json::from_str(&row.options)
        .map_err(|e| StoreError::Corrupt(format!("migration {}: options: {e}", row.id)))?;
    Ok(Migration {
        id: MigrationId(row.id),
        status,
        created_at: row.created_at,
        updated_at: row.updated_at,
        created_by: row.created_by,
        requester_email: row.requester_email,
        source: account(
            row.source_host,
            row.source_port,
            &row.source_security,
            row.source_username,
            row.source_authuser,
        )?,
        dest: account(
            row.dest_host,
            row.dest_port,
            &row.dest_security,
            row.dest_username,
            row.dest_authuser,
        )?,
        options,
        two_pass: row.two_pass,
        mx_domain: row.mx_domain,
        window_start: row.window_start,
        time_zone: row.time_zone,
        next_work: work(row.next_work)?,
        resume_work: work(row.resume_work)?,
        next_run_at: row.next_run_at,
        mx_switched_at: row.mx_switched_at,
        mx_checked_at: row.mx_checked_at,
        mx_answer: row.mx_answer,
        lease_owner: row.lease_owner,
        lease_until: row.lease_until,
        error_code: row
            .error_code
            .map(|c| c.parse::<ErrorCode>())
            .transpose()
            .map_err(StoreError::Corrupt)?,
        error_message: row.error_message,
        started_at: row.started_at,
        finished_at: row.finished_at,
        credentials_purged_at: row.credentials_purged_at,
    })
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

/// No live lease on the row at `now`.
fn lease_free(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(migrations::Column::LeaseUntil.is_null())
        .add(migrations::Column::LeaseUntil.lt(now))
}

/// Picks due rows (locked and skipped by other claimers on PostgreSQL) and takes the
/// first whose lease is still free by compare-and-set (the only guard on SQLite).
async fn claim_in<C: ConnectionTrait>(
    conn: &C,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    pass_allowed: bool,
) -> StoreResult<Option<i64>> {
    let mut query = migrations::Entity::find()
        .filter(migrations::Column::NextWork.is_not_null())
        .filter(migrations::Column::NextRunAt.lte(now))
        .filter(lease_free(now))
        .order_by_asc(migrations::Column::NextRunAt)
        .limit(8)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    if !pass_allowed {
        query = query.filter(migrations::Column::NextWork.is_not_in(PASS_WORK));
    }
    for row in query.all(conn).await? {
        let res = migrations::Entity::update_many()
            .col_expr(migrations::Column::LeaseOwner, Expr::value(owner))
            .col_expr(migrations::Column::LeaseUntil, Expr::value(lease_until))
            .filter(migrations::Column::Id.eq(row.id))
            .filter(migrations::Column::NextWork.eq(row.next_work.clone()))
            .filter(lease_free(now))
            .exec(conn)
            .await?;
        if res.rows_affected == 1 {
            return Ok(Some(row.id));
        }
    }
    Ok(None)
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
    pub async fn get_migration(&self, id: MigrationId) -> StoreResult<Option<Migration>> {
        migrations::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(migration_from)
            .transpose()
    }

    /// A page of migrations and the number that match.
    pub async fn list_migrations(
        &self,
        filter: &MigrationFilter,
    ) -> StoreResult<(Vec<Migration>, u64)> {
        let mut query = migrations::Entity::find().order_by_desc(migrations::Column::Id);
        if let Some(status) = filter.status {
            query = query.filter(migrations::Column::Status.eq(status.as_str()));
        }
        if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
            let search = search.trim();
            query = query.filter(
                Condition::any()
                    .add(migrations::Column::SourceUsername.contains(search))
                    .add(migrations::Column::DestUsername.contains(search))
                    .add(migrations::Column::RequesterEmail.contains(search)),
            );
        }
        let per_page = filter.per_page.clamp(1, 100);
        let paginator = query.paginate(&self.db, per_page);
        let total = paginator.num_items().await?;
        let rows = paginator.fetch_page(filter.page).await?;
        let list = rows
            .into_iter()
            .map(migration_from)
            .collect::<StoreResult<_>>()?;
        Ok((list, total))
    }

    /// The encrypted passwords (source, destination), when not purged.
    pub async fn migration_secrets(
        &self,
        id: MigrationId,
    ) -> StoreResult<(Option<String>, Option<String>)> {
        let row = migrations::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("migration"))?;
        Ok((row.source_secret, row.dest_secret))
    }

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

    /// Leases the most overdue migration with work to do to `owner` until
    /// `lease_until`; work that copies mail only when `pass_allowed` (capacity).
    pub async fn claim_due_migration(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        pass_allowed: bool,
    ) -> StoreResult<Option<Migration>> {
        let id = if self.db.get_database_backend() == DbBackend::Postgres {
            let tx = self.db.begin().await?;
            let id = claim_in(&tx, owner, now, lease_until, pass_allowed).await?;
            tx.commit().await?;
            id
        } else {
            // SQLite has no row locks; a transaction that reads then writes could fail
            // to upgrade its lock, so the compare-and-set stands alone.
            claim_in(&self.db, owner, now, lease_until, pass_allowed).await?
        };
        match id {
            Some(id) => self.get_migration(MigrationId(id)).await,
            None => Ok(None),
        }
    }

    /// Migrations with work due between `from` and `until`, soonest first.
    pub async fn upcoming_work(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<Migration>> {
        migrations::Entity::find()
            .filter(migrations::Column::NextWork.is_not_null())
            .filter(migrations::Column::NextRunAt.gte(from))
            .filter(migrations::Column::NextRunAt.lt(until))
            .order_by_asc(migrations::Column::NextRunAt)
            .limit(500)
            .all(&self.db)
            .await?
            .into_iter()
            .map(migration_from)
            .collect()
    }

    /// Migrations a live worker is copying now.
    pub async fn count_running_passes(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(migrations::Entity::find()
            .filter(migrations::Column::LeaseUntil.gt(now))
            .filter(migrations::Column::NextWork.is_in(PASS_WORK))
            .count(&self.db)
            .await?)
    }

    /// Extends `owner`'s lease; false when it lost it.
    pub async fn renew_lease(
        &self,
        id: MigrationId,
        owner: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let res = migrations::Entity::update_many()
            .col_expr(migrations::Column::LeaseUntil, Expr::value(until))
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Frees `owner`'s lease (work stopped without a status change).
    pub async fn release_lease(&self, id: MigrationId, owner: &str) -> StoreResult<()> {
        migrations::Entity::update_many()
            .col_expr(
                migrations::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                migrations::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Migrations waiting for their domain's MX that nobody has marked switched.
    pub async fn migrations_watching_mx(&self) -> StoreResult<Vec<Migration>> {
        migrations::Entity::find()
            .filter(migrations::Column::Status.eq(MigrationStatus::WaitingForMx.as_str()))
            .filter(migrations::Column::MxSwitchedAt.is_null())
            .all(&self.db)
            .await?
            .into_iter()
            .map(migration_from)
            .collect()
    }

    /// Records what an MX check saw.
    pub async fn record_mx_check(
        &self,
        id: MigrationId,
        answer: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        migrations::Entity::update_many()
            .col_expr(migrations::Column::MxCheckedAt, Expr::value(now))
            .col_expr(migrations::Column::MxAnswer, Expr::value(answer))
            .filter(migrations::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Finished migrations whose passwords are still stored and finished before `before`.
    pub async fn migrations_to_purge(
        &self,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<MigrationId>> {
        Ok(migrations::Entity::find()
            .filter(migrations::Column::Status.is_not_in(MigrationStatus::active()))
            .filter(migrations::Column::FinishedAt.lt(before))
            .filter(migrations::Column::CredentialsPurgedAt.is_null())
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| MigrationId(m.id))
            .collect())
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
    pub async fn insert_migration(
        &self,
        new: NewMigration,
        now: DateTime<Utc>,
    ) -> StoreResult<Migration> {
        let options =
            serde_json::to_string(&new.options).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let row = migrations::ActiveModel {
            status: Set(new.status.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            created_by: Set(new.created_by),
            requester_email: Set(new.requester_email),
            source_host: Set(new.source.host.clone()),
            source_port: Set(i32::from(new.source.port)),
            source_security: Set(new.source.security.as_str().to_owned()),
            source_username: Set(new.source.username.clone()),
            source_authuser: Set(new.source.authuser.clone()),
            source_secret: Set(Some(new.source_secret)),
            dest_key: Set(dest_key(&new.dest)),
            dest_host: Set(new.dest.host.clone()),
            dest_port: Set(i32::from(new.dest.port)),
            dest_security: Set(new.dest.security.as_str().to_owned()),
            dest_username: Set(new.dest.username.clone()),
            dest_authuser: Set(new.dest.authuser.clone()),
            dest_secret: Set(Some(new.dest_secret)),
            options: Set(options),
            two_pass: Set(new.two_pass),
            mx_domain: Set(new.mx_domain),
            window_start: Set(new.window_start),
            time_zone: Set(new.time_zone),
            next_work: Set(new.next_work.map(|w| w.to_string())),
            resume_work: Set(new.resume_work.map(|w| w.to_string())),
            next_run_at: Set(new.next_run_at),
            ..Default::default()
        }
        .insert(&self.inner)
        .await
        .map_err(super::active_conflict_or)?;
        migration_from(row)
    }

    /// Takes the admission lock, held until this transaction ends, and counts the
    /// active migrations: a capacity check made with this count cannot be overtaken
    /// by a concurrent admission (PostgreSQL queues on the lock's row, SQLite on its
    /// write lock, which the lock's UPDATE takes first).
    pub async fn lock_admission_and_count_active(&self) -> StoreResult<u64> {
        self.inner
            .execute_unprepared(
                "UPDATE locks SET taken_at = taken_at + 1 WHERE name = 'migration_admission'",
            )
            .await?;
        let n = migrations::Entity::find()
            .filter(migrations::Column::Status.is_in(MigrationStatus::active()))
            .count(&self.inner)
            .await?;
        Ok(n)
    }

    /// Moves a migration from `from` to `to` with the changes given; false when it was
    /// no longer in `from` (someone else moved it first).
    pub async fn change_migration_status(
        &self,
        id: MigrationId,
        from: MigrationStatus,
        to: MigrationStatus,
        change: StatusChange,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut update = migrations::Entity::update_many()
            .col_expr(migrations::Column::Status, Expr::value(to.as_str()))
            .col_expr(migrations::Column::UpdatedAt, Expr::value(now));
        if let Some(work) = change.next_work {
            update = update.col_expr(
                migrations::Column::NextWork,
                Expr::value(work.map(|w| w.to_string())),
            );
        }
        if let Some(at) = change.next_run_at {
            update = update.col_expr(migrations::Column::NextRunAt, Expr::value(at));
        }
        if let Some(work) = change.resume_work {
            update = update.col_expr(
                migrations::Column::ResumeWork,
                Expr::value(work.map(|w| w.to_string())),
            );
        }
        if let Some(at) = change.started_at {
            update = update.col_expr(migrations::Column::StartedAt, Expr::value(at));
        }
        if let Some(at) = change.finished_at {
            update = update.col_expr(migrations::Column::FinishedAt, Expr::value(at));
        }
        if let Some(at) = change.mx_switched_at {
            update = update.col_expr(migrations::Column::MxSwitchedAt, Expr::value(at));
        }
        if let Some(error) = change.error {
            let (code, message) = error.unzip();
            let code = code.map(ErrorCode::as_str);
            update = update
                .col_expr(migrations::Column::ErrorCode, Expr::value(code))
                .col_expr(migrations::Column::ErrorMessage, Expr::value(message));
        }
        if let Some(options) = change.options {
            let options =
                serde_json::to_string(&options).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            update = update.col_expr(migrations::Column::Options, Expr::value(options));
        }
        if let Some((window_start, time_zone)) = change.window {
            update = update
                .col_expr(migrations::Column::WindowStart, Expr::value(window_start))
                .col_expr(migrations::Column::TimeZone, Expr::value(time_zone));
        }
        if let Some(at) = change.only_unleased_at {
            update = update.filter(
                Condition::any()
                    .add(migrations::Column::LeaseUntil.is_null())
                    .add(migrations::Column::LeaseUntil.lt(at)),
            );
        }
        if change.release_lease {
            update = update
                .col_expr(
                    migrations::Column::LeaseOwner,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    migrations::Column::LeaseUntil,
                    Expr::value(Option::<DateTime<Utc>>::None),
                );
        }
        let res = update
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::Status.eq(from.as_str()))
            .exec(&self.inner)
            .await
            .map_err(super::active_conflict_or)?;
        Ok(res.rows_affected == 1)
    }

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

    /// Replaces the stored (encrypted) passwords given; with both stored again, the
    /// migration is no longer "purged".
    pub async fn set_migration_secrets(
        &self,
        id: MigrationId,
        source: Option<String>,
        dest: Option<String>,
    ) -> StoreResult<()> {
        let mut update = migrations::Entity::update_many();
        if let Some(s) = source {
            update = update.col_expr(migrations::Column::SourceSecret, Expr::value(s));
        }
        if let Some(d) = dest {
            update = update.col_expr(migrations::Column::DestSecret, Expr::value(d));
        }
        update
            .filter(migrations::Column::Id.eq(id))
            .exec(&self.inner)
            .await?;
        migrations::Entity::update_many()
            .col_expr(
                migrations::Column::CredentialsPurgedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::SourceSecret.is_not_null())
            .filter(migrations::Column::DestSecret.is_not_null())
            .exec(&self.inner)
            .await?;
        Ok(())
    }

    /// Erases a finished migration's stored passwords.
    pub async fn purge_credentials(
        &self,
        id: MigrationId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let res = migrations::Entity::update_many()
            .col_expr(
                migrations::Column::SourceSecret,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                migrations::Column::DestSecret,
                Expr::value(Option::<String>::None),
            )
            .col_expr(migrations::Column::CredentialsPurgedAt, Expr::value(now))
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::CredentialsPurgedAt.is_null())
            .exec(&self.inner)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Deletes a migration that no worker holds; false when one does.
    pub async fn delete_migration(&self, id: MigrationId, now: DateTime<Utc>) -> StoreResult<bool> {
        let res = migrations::Entity::delete_many()
            .filter(migrations::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(migrations::Column::LeaseUntil.is_null())
                    .add(migrations::Column::LeaseUntil.lt(now)),
            )
            .exec(&self.inner)
            .await?;
        Ok(res.rows_affected == 1)
    }
}
