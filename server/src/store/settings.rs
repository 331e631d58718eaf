//! Settings changed in the console: one row per key that overrides the file's value.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder};

use super::entities::settings;
use super::{Store, StoreResult, Tx};
use crate::domain::StoredSetting;

impl Store {
    /// Every stored setting, by key.
    pub async fn list_settings(&self) -> StoreResult<Vec<StoredSetting>> {
        let rows = settings::Entity::find()
            .order_by_asc(settings::Column::Key)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredSetting {
                key: row.key,
                value: row.value,
                updated_at: row.updated_at,
                updated_by: row.updated_by,
            })
            .collect())
    }
}

impl Tx {
    pub async fn put_setting(
        &self,
        key: &str,
        value: String,
        by: String,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        use settings::Column as C;
        settings::Entity::insert(settings::ActiveModel {
            key: Set(key.to_owned()),
            value: Set(value),
            updated_at: Set(now),
            updated_by: Set(by),
        })
        .on_conflict(
            OnConflict::column(C::Key)
                .update_columns([C::Value, C::UpdatedAt, C::UpdatedBy])
                .to_owned(),
        )
        .exec(&self.inner)
        .await?;
        Ok(())
    }

    /// Back to the file's value. Whether a row was there.
    pub async fn delete_setting(&self, key: &str) -> StoreResult<bool> {
        let done = settings::Entity::delete_by_id(key.to_owned())
            .exec(&self.inner)
            .await?;
        Ok(done.rows_affected > 0)
    }
}
