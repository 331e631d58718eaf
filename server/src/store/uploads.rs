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
        kind: row.kind.as_deref().and_then(crate::domain::FileKind::parse),
        stored: row.stored,
    };
    (upload, row.data)
}

/// An upload's row with what every upload has; the rest empty.
fn new_row(
    created_by: String,
    file_name: String,
    size: u64,
    sha256: String,
    now: DateTime<Utc>,
) -> uploads::ActiveModel {
    uploads::ActiveModel {
        created_at: Set(now),
        created_by: Set(created_by),
        file_name: Set(file_name),
        size: Set(i64::try_from(size).unwrap_or(i64::MAX)),
        sha256: Set(sha256),
        data: Set(None),
        requester_email: Set(None),
        time_zone: Set(None),
        used_at: Set(None),
        purged_at: Set(None),
        kind: Set(None),
        stored: Set(None),
        ..Default::default()
    }
}

impl Tx {
    pub async fn insert_upload(&self, new: NewUpload, now: DateTime<Utc>) -> StoreResult<Upload> {
        let row = uploads::ActiveModel {
            data: Set(Some(new.sealed)),
            requester_email: Set(new.requester_email),
            time_zone: Set(new.time_zone),
            ..new_row(new.created_by, new.file_name, new.size, new.sha256, now)
        }
        .insert(&self.inner)
        .await?;
        Ok(upload_from(row).0)
    }
}

/// A file to import, already written (sealed) under `uploads/` as `stored`.
#[derive(Debug)]
pub struct NewFileUpload {
    pub created_by: String,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub kind: crate::domain::FileKind,
    pub stored: String,
}

impl Store {
    pub async fn insert_file_upload(
        &self,
        new: NewFileUpload,
        now: DateTime<Utc>,
    ) -> StoreResult<Upload> {
        let row = uploads::ActiveModel {
            kind: Set(Some(new.kind.as_str().to_owned())),
            stored: Set(Some(new.stored)),
            ..new_row(new.created_by, new.file_name, new.size, new.sha256, now)
        }
        .insert(&self.db)
        .await?;
        Ok(upload_from(row).0)
    }

    /// Files on disk whose uploads were made before `before` and are not erased yet:
    /// (id, stored name). The caller deletes each file, then [`Store::erased_upload`].
    pub async fn stored_uploads_before(
        &self,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<(UploadId, String)>> {
        Ok(uploads::Entity::find()
            .filter(C::CreatedAt.lt(before))
            .filter(C::Stored.is_not_null())
            .filter(C::PurgedAt.is_null())
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|r| r.stored.map(|s| (UploadId(r.id), s)))
            .collect())
    }

    /// Records that an upload's file was deleted.
    pub async fn erased_upload(&self, id: UploadId, now: DateTime<Utc>) -> StoreResult<()> {
        uploads::Entity::update_many()
            .col_expr(C::PurgedAt, Expr::value(now))
            .filter(C::Id.eq(id.0))
            .filter(C::PurgedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

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
