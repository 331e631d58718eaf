//! The claim and the lease on a migration's work: a worker leases the most overdue
//! row (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: compare-and-set alone), renews
//! the lease while it works, and frees it when the work stops. Work that copies mail
//! is claimed only within the limits: the whole capacity, each project's concurrency
//! and the passes per source server; rows beyond a limit are left out of the query
//! itself, so a project of 500 waiting mailboxes never hides the single migration
//! behind them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::entities::{migrations, projects};
use super::{Store, StoreResult};
use crate::domain::{Migration, MigrationId, MigrationStatus};

/// What a claim may take now.
#[derive(Debug, Clone, Default)]
pub struct ClaimLimits {
    /// Work that copies mail may be claimed (the whole capacity has room).
    pub pass_allowed: bool,
    /// Projects at their concurrency: their passes wait.
    pub full_projects: Vec<i64>,
    /// Source servers at `capacity.per_source_host`: their passes wait.
    pub full_hosts: Vec<String>,
}

/// The work that copies mail and so counts against `capacity.max_concurrent`.
const PASS_WORK: [&str; 3] = ["pre_mx", "post_mx", "sync"];

/// `update` also clears the row's lease.
pub(super) fn without_lease(
    update: sea_orm::UpdateMany<migrations::Entity>,
) -> sea_orm::UpdateMany<migrations::Entity> {
    update
        .col_expr(
            migrations::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            migrations::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

/// No live lease on the row at `now`.
pub(super) fn lease_free(now: DateTime<Utc>) -> Condition {
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
    limits: &ClaimLimits,
) -> StoreResult<Option<i64>> {
    let mut query = migrations::Entity::find()
        .filter(migrations::Column::NextWork.is_not_null())
        .filter(migrations::Column::Status.ne(MigrationStatus::Paused.as_str()))
        .filter(migrations::Column::NextRunAt.lte(now))
        .filter(lease_free(now))
        .order_by_asc(migrations::Column::NextRunAt)
        .limit(8)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    if !limits.pass_allowed {
        query = query.filter(migrations::Column::NextWork.is_not_in(PASS_WORK));
    } else if !(limits.full_projects.is_empty() && limits.full_hosts.is_empty()) {
        let mut room = Condition::all();
        if !limits.full_projects.is_empty() {
            room = room.add(
                Condition::any()
                    .add(migrations::Column::ProjectId.is_null())
                    .add(migrations::Column::ProjectId.is_not_in(limits.full_projects.clone())),
            );
        }
        if !limits.full_hosts.is_empty() {
            room = room.add(migrations::Column::SourceHost.is_not_in(limits.full_hosts.clone()));
        }
        query = query.filter(
            Condition::any()
                .add(migrations::Column::NextWork.is_not_in(PASS_WORK))
                .add(room),
        );
    }
    for row in query.all(conn).await? {
        let res = migrations::Entity::update_many()
            .col_expr(migrations::Column::LeaseOwner, Expr::value(owner))
            .col_expr(migrations::Column::LeaseUntil, Expr::value(lease_until))
            .filter(migrations::Column::Id.eq(row.id))
            .filter(migrations::Column::NextWork.eq(row.next_work.clone()))
            .filter(migrations::Column::Status.ne(MigrationStatus::Paused.as_str()))
            .filter(lease_free(now))
            .exec(conn)
            .await?;
        if res.rows_affected == 1 {
            return Ok(Some(row.id));
        }
    }
    Ok(None)
}

impl Store {
    /// Leases the most overdue migration with work to do to `owner` until
    /// `lease_until`, within `limits`.
    pub async fn claim_due_migration(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limits: &ClaimLimits,
    ) -> StoreResult<Option<Migration>> {
        let id = if self.db.get_database_backend() == DbBackend::Postgres {
            let tx = self.db.begin().await?;
            let id = claim_in(&tx, owner, now, lease_until, limits).await?;
            tx.commit().await?;
            id
        } else {
            // SQLite has no row locks; a transaction that reads then writes could fail
            // to upgrade its lock, so the compare-and-set stands alone.
            claim_in(&self.db, owner, now, lease_until, limits).await?
        };
        match id {
            Some(id) => self.get_migration(MigrationId(id)).await,
            None => Ok(None),
        }
    }

    /// Migrations a live worker is copying now.
    pub async fn count_running_passes(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(migrations::Entity::find()
            .filter(migrations::Column::LeaseUntil.gt(now))
            .filter(migrations::Column::NextWork.is_in(PASS_WORK))
            .count(&self.db)
            .await?)
    }

    /// The limits of a claim at `now`: room in the whole capacity (`max_concurrent`),
    /// the projects at their concurrency and the source servers at `per_host`.
    pub async fn claim_limits(
        &self,
        now: DateTime<Utc>,
        max_concurrent: u64,
        per_host: u64,
    ) -> StoreResult<ClaimLimits> {
        let running = migrations::Entity::find()
            .filter(migrations::Column::LeaseUntil.gt(now))
            .filter(migrations::Column::NextWork.is_in(PASS_WORK))
            .all(&self.db)
            .await?;
        let mut by_project = std::collections::HashMap::<i64, u64>::new();
        let mut by_host = std::collections::HashMap::<String, u64>::new();
        for row in &running {
            if let Some(project) = row.project_id {
                *by_project.entry(project).or_default() += 1;
            }
            *by_host.entry(row.source_host.clone()).or_default() += 1;
        }
        let mut full_projects = Vec::new();
        if !by_project.is_empty() {
            let limits = projects::Entity::find()
                .filter(projects::Column::Id.is_in(by_project.keys().copied()))
                .all(&self.db)
                .await?;
            for project in limits {
                let limit = u64::try_from(project.concurrency.max(1)).unwrap_or(1);
                if by_project.get(&project.id).copied().unwrap_or(0) >= limit {
                    full_projects.push(project.id);
                }
            }
        }
        let full_hosts = by_host
            .into_iter()
            .filter(|(_, n)| *n >= per_host)
            .map(|(host, _)| host)
            .collect();
        Ok(ClaimLimits {
            pass_allowed: (running.len() as u64) < max_concurrent,
            full_projects,
            full_hosts,
        })
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
        without_lease(migrations::Entity::update_many())
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
