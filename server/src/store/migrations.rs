//! Migrations, their passes and their folders. A status change is a compare-and-set
//! on the status it expects, so a worker and a person acting at the same moment never
//! overwrite each other: the second one learns that the migration moved on.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};

use super::entities::{migration_folders, migration_passes, migrations};
use super::{Store, StoreError, StoreResult, Tx};
use crate::domain::{
    FolderProgress, Migration, MigrationOptions, MigrationStatus, Pass, Security, ServerAccount,
    Work,
};

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
    pub next_run_at: Option<Option<DateTime<Utc>>>,
    pub finished_at: Option<Option<DateTime<Utc>>>,
}

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
        id: row.id,
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
        error_code: row.error_code,
        error_message: row.error_message,
        started_at: row.started_at,
        finished_at: row.finished_at,
        credentials_purged_at: row.credentials_purged_at,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn pass_from(row: migration_passes::Model) -> Pass {
    Pass {
        id: row.id,
        migration_id: row.migration_id,
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
    pub async fn get_migration(&self, id: i64) -> StoreResult<Option<Migration>> {
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

    /// Active migrations in all, and for one destination mailbox.
    pub async fn count_active_migrations(&self, dest_key: Option<&str>) -> StoreResult<u64> {
        let mut query = migrations::Entity::find()
            .filter(migrations::Column::Status.is_in(MigrationStatus::active()));
        if let Some(key) = dest_key {
            query = query.filter(migrations::Column::DestKey.eq(key));
        }
        Ok(query.count(&self.db).await?)
    }

    /// The encrypted passwords (source, destination), when not purged.
    pub async fn migration_secrets(
        &self,
        id: i64,
    ) -> StoreResult<(Option<String>, Option<String>)> {
        let row = migrations::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("migration"))?;
        Ok((row.source_secret, row.dest_secret))
    }

    pub async fn migration_passes(&self, id: i64) -> StoreResult<Vec<Pass>> {
        Ok(migration_passes::Entity::find()
            .filter(migration_passes::Column::MigrationId.eq(id))
            .order_by_asc(migration_passes::Column::Number)
            .all(&self.db)
            .await?
            .into_iter()
            .map(pass_from)
            .collect())
    }

    pub async fn migration_folders(&self, id: i64) -> StoreResult<Vec<FolderProgress>> {
        Ok(migration_folders::Entity::find()
            .filter(migration_folders::Column::MigrationId.eq(id))
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
        .await?;
        migration_from(row)
    }

    /// Moves a migration from `from` to `to` with the changes given; false when it was
    /// no longer in `from` (someone else moved it first).
    pub async fn change_migration_status(
        &self,
        id: i64,
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
        if let Some(at) = change.finished_at {
            update = update.col_expr(migrations::Column::FinishedAt, Expr::value(at));
        }
        let res = update
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::Status.eq(from.as_str()))
            .exec(&self.inner)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Deletes a migration that no worker holds; false when one does.
    pub async fn delete_migration(&self, id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
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
