//! Staff accounts, console sessions and API tokens.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

use super::entities::{api_tokens, sessions, users};
use super::{Store, StoreError, StoreResult, Tx, duplicate_or};
use crate::domain::{ApiToken, EmailAddress, Role, Scopes, Session, TokenId, User, UserId};

fn user_from(row: users::Model) -> StoreResult<User> {
    let email = EmailAddress::parse("email", &row.email)
        .map_err(|e| StoreError::Corrupt(format!("user {}: {e}", row.id)))?;
    let role: Role = row
        .role
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("user {}: {e}", row.id)))?;
    Ok(User {
        id: UserId(row.id),
        email,
        name: row.name,
        role,
        disabled: row.disabled,
        created_at: row.created_at,
        last_login_at: row.last_login_at,
    })
}

fn token_from(row: api_tokens::Model) -> StoreResult<ApiToken> {
    let scopes = Scopes::parse_list(&row.scopes)
        .map_err(|e| StoreError::Corrupt(format!("token {}: {e}", row.id)))?;
    Ok(ApiToken {
        id: TokenId(row.id),
        name: row.name,
        prefix: row.prefix,
        scopes,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked: row.revoked_at.is_some(),
    })
}

impl Store {
    pub async fn count_users(&self) -> StoreResult<u64> {
        Ok(users::Entity::find().count(&self.db).await?)
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        users::Entity::find()
            .order_by_asc(users::Column::Email)
            .all(&self.db)
            .await?
            .into_iter()
            .map(user_from)
            .collect()
    }

    pub async fn find_user(&self, id: UserId) -> StoreResult<Option<User>> {
        users::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(user_from)
            .transpose()
    }

    /// The account and its password hash, for signing in.
    pub async fn find_user_for_login(
        &self,
        email: &EmailAddress,
    ) -> StoreResult<Option<(User, String)>> {
        let Some(row) = users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let hash = row.password_hash.clone();
        Ok(Some((user_from(row)?, hash)))
    }

    pub async fn password_hash(&self, user_id: UserId) -> StoreResult<String> {
        users::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .map(|row| row.password_hash)
            .ok_or(StoreError::NotFound("user"))
    }

    /// The live session whose cookie digests to `digest`, with its (enabled) account.
    pub async fn find_session(
        &self,
        digest: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Session>> {
        let Some(row) = sessions::Entity::find_by_id(digest.to_owned())
            .filter(sessions::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let user = match self.find_user(UserId(row.user_id)).await? {
            Some(user) if !user.disabled => user,
            _ => return Ok(None),
        };
        Ok(Some(Session {
            user,
            csrf_token: row.csrf_token,
            expires_at: row.expires_at,
        }))
    }

    pub async fn delete_session(&self, digest: &str) -> StoreResult<()> {
        sessions::Entity::delete_by_id(digest.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let res = sessions::Entity::delete_many()
            .filter(sessions::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }

    /// The token whose secret digests to `digest`, revoked or not.
    pub async fn find_token(&self, digest: &str) -> StoreResult<Option<ApiToken>> {
        api_tokens::Entity::find()
            .filter(api_tokens::Column::TokenHash.eq(digest))
            .one(&self.db)
            .await?
            .map(token_from)
            .transpose()
    }

    pub async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        api_tokens::Entity::find()
            .order_by_asc(api_tokens::Column::Name)
            .all(&self.db)
            .await?
            .into_iter()
            .map(token_from)
            .collect()
    }

    /// Notes when a token was last used; bookkeeping, so outside any transaction.
    pub async fn touch_token(&self, id: TokenId, now: DateTime<Utc>) -> StoreResult<()> {
        api_tokens::Entity::update_many()
            .col_expr(api_tokens::Column::LastUsedAt, Expr::value(now))
            .filter(api_tokens::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// A new account, its password already hashed.
pub struct NewUser<'a> {
    pub email: &'a EmailAddress,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: String,
    pub now: DateTime<Utc>,
}

impl Tx {
    pub async fn insert_user(&self, new: NewUser<'_>) -> StoreResult<User> {
        let row = users::ActiveModel {
            email: Set(new.email.as_str().to_owned()),
            name: Set(new.name.to_owned()),
            role: Set(new.role.as_str().to_owned()),
            password_hash: Set(new.password_hash),
            disabled: Set(false),
            created_at: Set(new.now),
            last_login_at: Set(None),
            ..Default::default()
        }
        .insert(&self.inner)
        .await
        .map_err(|e| duplicate_or(e, "an account with this email"))?;
        user_from(row)
    }

    pub async fn set_user_disabled(&self, user_id: UserId, disabled: bool) -> StoreResult<()> {
        let res = users::Entity::update_many()
            .col_expr(users::Column::Disabled, Expr::value(disabled))
            .filter(users::Column::Id.eq(user_id))
            .exec(&self.inner)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound("user"));
        }
        if disabled {
            sessions::Entity::delete_many()
                .filter(sessions::Column::UserId.eq(user_id))
                .exec(&self.inner)
                .await?;
        }
        Ok(())
    }

    pub async fn set_password_hash(&self, user_id: UserId, hash: String) -> StoreResult<()> {
        let res = users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(hash))
            .filter(users::Column::Id.eq(user_id))
            .exec(&self.inner)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound("user"));
        }
        Ok(())
    }

    /// Signs in: a session row keyed by the cookie's digest, and the login time.
    pub async fn insert_session(
        &self,
        digest: &str,
        user_id: UserId,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sessions::ActiveModel {
            id: Set(digest.to_owned()),
            user_id: Set(user_id.0),
            csrf_token: Set(csrf_token.to_owned()),
            created_at: Set(now),
            expires_at: Set(expires_at),
        }
        .insert(&self.inner)
        .await?;
        users::Entity::update_many()
            .col_expr(users::Column::LastLoginAt, Expr::value(now))
            .filter(users::Column::Id.eq(user_id))
            .exec(&self.inner)
            .await?;
        Ok(())
    }

    /// Ends every session of an account but `keep` (after a password change).
    pub async fn delete_sessions_of(&self, user_id: UserId, keep: Option<&str>) -> StoreResult<()> {
        let mut query =
            sessions::Entity::delete_many().filter(sessions::Column::UserId.eq(user_id));
        if let Some(keep) = keep {
            query = query.filter(sessions::Column::Id.ne(keep));
        }
        query.exec(&self.inner).await?;
        Ok(())
    }

    pub async fn insert_token(
        &self,
        name: &str,
        digest: &str,
        prefix: &str,
        scopes: &Scopes,
        now: DateTime<Utc>,
    ) -> StoreResult<ApiToken> {
        let row = api_tokens::ActiveModel {
            name: Set(name.to_owned()),
            token_hash: Set(digest.to_owned()),
            prefix: Set(prefix.to_owned()),
            scopes: Set(scopes.to_string()),
            created_at: Set(now),
            last_used_at: Set(None),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&self.inner)
        .await
        .map_err(|e| duplicate_or(e, "this token"))?;
        token_from(row)
    }

    pub async fn revoke_token(&self, id: TokenId, now: DateTime<Utc>) -> StoreResult<()> {
        let res = api_tokens::Entity::update_many()
            .col_expr(api_tokens::Column::RevokedAt, Expr::value(now))
            .filter(api_tokens::Column::Id.eq(id))
            .filter(api_tokens::Column::RevokedAt.is_null())
            .exec(&self.inner)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound("active token"));
        }
        Ok(())
    }
}
