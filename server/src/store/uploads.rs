//! Uploaded files: their bytes sealed by the caller (the service encrypts), kept until
//! used or until the credential retention ends, then erased; the metadata stays.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entities::uploads::{self, Column as C};
use super::{Store, StoreResult, Tx};
use crate::domain::{Upload, UploadId};

/// A file to keep, its bytes already sealed.
#[derive(Debug)]
pub struct NewUpload {
    pub created_by: String,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub sealed: Vec<u8>,
    pub requester_email: Option<String>,
    pub time_zone: Option<String>,
}

fn upload_from(row: uploads::Model) -> (Upload, Option<Vec<u8>>) {
    let upload = Upload {
        id: UploadId(row.id),
        created_at: row.created_at,
        created_by: row.created_by,
        file_name: row.file_name,
        size: u64::try_from(row.size).unwrap_or(0),
        sha256: row.sha256,
        requester_email: row.requester_email,
        time_zone: row.time_zone,
        used_at: row.used_at,
        purged_at: row.purged_at,
    };
    (upload, row.data)
}

impl Tx {
    pub async fn insert_upload(&self, new: NewUpload, now: DateTime<Utc>) -> StoreResult<Upload> {
        let row = uploads::ActiveModel {
            created_at: Set(now),
            created_by: Set(new.created_by),
            file_name: Set(new.file_name),
            size: Set(i64::try_from(new.size).unwrap_or(i64::MAX)),
            sha256: Set(new.sha256),
            data: Set(Some(new.sealed)),
            requester_email: Set(new.requester_email),
            time_zone: Set(new.time_zone),
            used_at: Set(None),
            purged_at: Set(None),
            ..Default::default()
        }
        .insert(&self.inner)
        .await?;
        Ok(upload_from(row).0)
    }
}

impl Store {
    /// The upload and its sealed bytes (`None` once erased).
    pub async fn get_upload(&self, id: UploadId) -> StoreResult<Option<(Upload, Option<Vec<u8>>)>> {
        Ok(uploads::Entity::find_by_id(id.0)
            .one(&self.db)
            .await?
            .map(upload_from))
    }

    /// Marks the upload used and erases its bytes, once; false when it was used
    /// already (another click got there first).
    pub async fn use_upload(&self, id: UploadId, now: DateTime<Utc>) -> StoreResult<bool> {
        let res = uploads::Entity::update_many()
            .col_expr(C::UsedAt, Expr::value(now))
            .col_expr(C::PurgedAt, Expr::value(now))
            .col_expr(C::Data, Expr::value(Option::<Vec<u8>>::None))
            .filter(C::Id.eq(id.0))
            .filter(C::UsedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Erases the bytes of uploads made before `before`; how many.
    pub async fn purge_uploads(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let res = uploads::Entity::update_many()
            .col_expr(C::PurgedAt, Expr::value(now))
            .col_expr(C::Data, Expr::value(Option::<Vec<u8>>::None))
            .filter(C::CreatedAt.lt(before))
            .filter(C::Data.is_not_null())
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }
}
