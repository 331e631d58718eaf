//! Failed sign-ins per key, shared by every process through the database. Each key's
//! count covers one window that starts at its first failure; a failure after the window
//! starts a new one.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entities::login_failures::{self, Column as C};
use super::{Store, StoreResult};

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

impl Store {
    /// The failures counted for each of `keys` in windows that started at or after
    /// `since` (keys with none are left out).
    pub async fn login_failures(
        &self,
        keys: &[String],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, u32)>> {
        let rows = login_failures::Entity::find()
            .filter(C::Key.is_in(keys.iter().cloned()))
            .filter(C::FirstAtMs.gte(ms(since)))
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.key, u32::try_from(r.failures).unwrap_or(0)))
            .collect())
    }

    /// Counts one failure for each of `keys`, in one statement per key so concurrent
    /// failures (from any process) all count.
    pub async fn record_login_failure(
        &self,
        keys: &[String],
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (now, since) = (ms(now), ms(window_start));
        for key in keys {
            login_failures::Entity::insert(login_failures::ActiveModel {
                key: Set(key.clone()),
                failures: Set(1),
                first_at_ms: Set(now),
            })
            .on_conflict(
                OnConflict::column(C::Key)
                    .value(
                        C::Failures,
                        Expr::cust_with_values(
                            "CASE WHEN login_failures.first_at_ms < ? THEN 1 ELSE login_failures.failures + 1 END",
                            [since],
                        ),
                    )
                    .value(
                        C::FirstAtMs,
                        Expr::cust_with_values(
                            "CASE WHEN login_failures.first_at_ms < ? THEN ? ELSE login_failures.first_at_ms END",
                            [since, now],
                        ),
                    )
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        }
        Ok(())
    }

    pub async fn clear_login_failures(&self, keys: &[String]) -> StoreResult<()> {
        login_failures::Entity::delete_many()
            .filter(C::Key.is_in(keys.iter().cloned()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets windows that started before `before`; the session sweeper calls it.
    pub async fn prune_login_failures(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = login_failures::Entity::delete_many()
            .filter(C::FirstAtMs.lt(ms(before)))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }
}
