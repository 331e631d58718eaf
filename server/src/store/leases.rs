//! The claim and the lease on a migration's work: a worker leases the most overdue
//! row (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: compare-and-set alone), renews
//! the lease while it works, and frees it when the work stops.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::entities::migrations;
use super::{Store, StoreResult};
use crate::domain::{Migration, MigrationId};

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

impl Store {
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
        without_lease(migrations::Entity::update_many())
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
