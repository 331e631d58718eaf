//! The API's idempotency keys: claimed before the request runs (unique per token and
//! key), given the answer after, forgotten after 24 hours.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::entities::idempotency_keys::{self, Column as C};
use super::{Store, StoreError, StoreResult, duplicate_or};

/// A key as it stands: its request's fingerprint, and its answer once there is one
/// (status, content type, sealed body).
#[derive(Debug, Clone)]
pub struct KeptKey {
    pub fingerprint: String,
    pub answer: Option<(u16, Option<String>, Vec<u8>)>,
}

impl Store {
    /// Claims `key` for a request; `Some` with what is kept when it was claimed before.
    pub async fn claim_idempotency_key(
        &self,
        token: &str,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<KeptKey>> {
        let claimed = idempotency_keys::ActiveModel {
            token_digest: Set(token.to_owned()),
            idem_key: Set(key.to_owned()),
            fingerprint: Set(fingerprint.to_owned()),
            created_at: Set(now),
            status: Set(None),
            content_type: Set(None),
            body: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .map_err(|e| duplicate_or(e, "idempotency key"));
        match claimed {
            Ok(_) => Ok(None),
            Err(StoreError::Duplicate(_)) => {
                let row = idempotency_keys::Entity::find()
                    .filter(C::TokenDigest.eq(token))
                    .filter(C::IdemKey.eq(key))
                    .one(&self.db)
                    .await?
                    .ok_or(StoreError::NotFound("idempotency key"))?;
                Ok(Some(KeptKey {
                    fingerprint: row.fingerprint,
                    answer: match (row.status, row.body) {
                        (Some(status), Some(body)) => {
                            Some((u16::try_from(status).unwrap_or(200), row.content_type, body))
                        }
                        _ => None,
                    },
                }))
            }
            Err(err) => Err(err),
        }
    }

    pub async fn finish_idempotency_key(
        &self,
        token: &str,
        key: &str,
        status: u16,
        content_type: Option<String>,
        sealed: Vec<u8>,
    ) -> StoreResult<()> {
        idempotency_keys::Entity::update_many()
            .col_expr(C::Status, Expr::value(i32::from(status)))
            .col_expr(C::ContentType, Expr::value(content_type))
            .col_expr(C::Body, Expr::value(Some(sealed)))
            .filter(C::TokenDigest.eq(token))
            .filter(C::IdemKey.eq(key))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets a key (its request failed inside Ferry: the retry runs), or every key
    /// made before `before` when `key` is `None`.
    pub async fn forget_idempotency_keys(
        &self,
        token_key: Option<(&str, &str)>,
        before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut delete = idempotency_keys::Entity::delete_many();
        delete = match token_key {
            Some((token, key)) => delete
                .filter(C::TokenDigest.eq(token))
                .filter(C::IdemKey.eq(key)),
            None => delete.filter(C::CreatedAt.lt(before)),
        };
        Ok(delete.exec(&self.db).await?.rows_affected)
    }
}
