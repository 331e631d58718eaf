//! Staff accounts, sign-in and API tokens.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::{ServiceError, ServiceResult, Services};
use crate::crypto;
use crate::domain::{
    Actor, ApiToken, EmailAddress, FieldError, NewAuditEvent, OutboxId, Role, Scopes, Session,
    User, UserId,
};
use crate::render::emails::{AccountCreated, TestEmail};
use crate::store::{KeptKey, NewUser, StoreError};

/// The shortest password a staff account may have.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Random bytes in a session cookie and in an API token.
const TOKEN_BYTES: usize = 32;
/// API tokens start with this, so a leaked one is recognisable in a scan.
const API_TOKEN_PREFIX: &str = "fy_";

/// A staff account to create, as typed.
/// What an `Idempotency-Key` says about a request.
#[derive(Debug)]
pub enum Idempotency {
    /// First seen: run it.
    New,
    /// Answered before: send this again.
    Replay {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// Sent before with another request.
    Reused,
    /// Its first request is still running.
    InProgress,
}

#[derive(Debug)]
pub struct NewStaff<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password: SecretString,
}

/// A successful sign-in: the cookie value to set, once.
#[derive(Debug)]
pub struct SignedIn {
    pub cookie: SecretString,
    pub user: User,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong email or password, or a disabled account: the same words for all three.
    #[error("The email or password is not right.")]
    BadCredentials,
    #[error("Too many failed sign-ins; try again in {} minute(s).", .0.as_secs().div_ceil(60).max(1))]
    TooMany(Duration),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn check_password(field: &'static str, password: &SecretString) -> Result<(), FieldError> {
    let n = password.expose_secret().chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(FieldError::new(
            field,
            format!("use at least {MIN_PASSWORD_LEN} characters (this one has {n})"),
        ));
    }
    Ok(())
}

async fn hash(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || crypto::hash_password(&password)).await?
}

/// An argon2 hash of a random password, made once: what a sign-in for an unknown
/// account is verified against.
pub(super) async fn dummy_hash() -> anyhow::Result<String> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async { hash(crypto::random_password()?).await })
        .await
        .cloned()
}

async fn verify(hash: String, password: SecretString) -> anyhow::Result<bool> {
    Ok(tokio::task::spawn_blocking(move || crypto::verify_password(&hash, &password)).await?)
}

impl Services {
    /// Creates a staff account, records it, and emails the person a welcome (without
    /// the password).
    pub async fn create_user(
        &self,
        actor: &Actor,
        new: NewStaff<'_>,
        ip: Option<String>,
    ) -> ServiceResult<User> {
        let mut errors = Vec::new();
        let email = EmailAddress::parse("email", new.email)
            .map_err(|e| errors.push(e))
            .ok();
        let name = new.name.trim();
        if name.is_empty() {
            errors.push(FieldError::new("name", "a name is required"));
        }
        if let Err(e) = check_password("password", &new.password) {
            errors.push(e);
        }
        let Some(email) = email.filter(|_| errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        let password_hash = hash(new.password).await?;
        let now = self.now();
        let created_by = match actor {
            Actor::User { email, .. } => email.clone(),
            _ => "An administrator".to_owned(),
        };
        let welcome = self.renderer.email(
            vec![email.clone()],
            &AccountCreated {
                name: name.to_owned(),
                email: email.as_str().to_owned(),
                role: new.role.as_str().to_owned(),
                created_by,
                login_url: format!("{}/login", self.settings().base_url()),
            },
            None,
        )?;
        let tx = self.store.begin().await?;
        let user = tx
            .insert_user(NewUser {
                email: &email,
                name,
                role: new.role,
                password_hash,
                now,
            })
            .await
            .map_err(|e| match e {
                StoreError::Duplicate(_) => {
                    ServiceError::field("email", format!("an account with {email} already exists"))
                }
                other => other.into(),
            })?;
        tx.audit(
            NewAuditEvent::new(actor, "user.created")
                .subject("user", user.id)
                .detail(serde_json::json!({"email": email.as_str(), "role": new.role.as_str()}))
                .ip(ip),
            now,
        )
        .await?;
        tx.enqueue_email(
            crate::domain::NewEmail {
                about: Some(("user", user.id.to_string())),
                ..welcome
            },
            now,
        )
        .await?;
        tx.commit().await?;
        self.dispatcher.wake();
        tracing::info!(user_id = %user.id, role = %user.role, "Staff account created");
        Ok(user)
    }

    /// Claims an `Idempotency-Key` for a request of `token` (its digest) whose
    /// fingerprint is `fingerprint`: new, the kept answer to replay, the key reused for
    /// another request, or its first request still running.
    pub async fn claim_idempotency(
        &self,
        token: &str,
        key: &str,
        fingerprint: &str,
    ) -> ServiceResult<Idempotency> {
        let kept = self
            .store
            .claim_idempotency_key(token, key, fingerprint, self.now())
            .await?;
        Ok(match kept {
            None => Idempotency::New,
            Some(kept) if kept.fingerprint != fingerprint => Idempotency::Reused,
            Some(KeptKey {
                answer: Some((status, content_type, sealed)),
                ..
            }) => Idempotency::Replay {
                status,
                content_type,
                body: self.cipher.decrypt_bytes(&sealed)?,
            },
            Some(_) => Idempotency::InProgress,
        })
    }

    /// Keeps the answer of a claimed key (sealed: it may hold a customer's link).
    pub async fn finish_idempotency(
        &self,
        token: &str,
        key: &str,
        status: u16,
        content_type: Option<String>,
        body: &[u8],
    ) -> ServiceResult<()> {
        let sealed = self.cipher.encrypt_bytes(body)?;
        self.store
            .finish_idempotency_key(token, key, status, content_type, sealed)
            .await?;
        Ok(())
    }

    /// Forgets a claimed key whose request failed inside Ferry: a retry runs.
    pub async fn release_idempotency(&self, token: &str, key: &str) -> ServiceResult<()> {
        self.store
            .forget_idempotency_keys(Some((token, key)), self.now())
            .await?;
        Ok(())
    }

    /// Forgets the keys older than a day.
    pub async fn forget_old_idempotency_keys(&self) -> ServiceResult<u64> {
        let before = self.now() - chrono::Duration::hours(24);
        Ok(self.store.forget_idempotency_keys(None, before).await?)
    }

    /// At first start, when no account exists: creates the admin from settings, with a
    /// generated password when none is set. Returns the password to print once.
    pub async fn ensure_first_admin(
        &self,
    ) -> ServiceResult<Option<(EmailAddress, Option<SecretString>)>> {
        if self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let settings = self.settings();
        let admin = &settings.admin;
        // A password the operator set is theirs already: only a generated one is shown.
        let (password, generated) = match &admin.password {
            Some(p) => (p.clone(), None),
            None => {
                let p = crypto::random_password()?;
                (p.clone(), Some(p))
            }
        };
        let user = self
            .create_user(
                &Actor::System,
                NewStaff {
                    email: &admin.email,
                    name: "Administrator",
                    role: Role::Admin,
                    password: password.clone(),
                },
                None,
            )
            .await
            .map_err(|e| match e {
                ServiceError::Invalid(errors) => ServiceError::Invalid(
                    errors
                        .into_iter()
                        .map(|e| {
                            FieldError::new(
                                if e.field == "password" {
                                    "admin.password (FERRY_ADMIN_PASSWORD)"
                                } else {
                                    "admin.email (FERRY_ADMIN_EMAIL)"
                                },
                                e.message,
                            )
                        })
                        .collect(),
                ),
                other => other,
            })?;
        Ok(Some((user.email, generated)))
    }

    pub async fn set_user_disabled(
        &self,
        actor: &Actor,
        user_id: UserId,
        disabled: bool,
        ip: Option<String>,
    ) -> ServiceResult<()> {
        if matches!(actor, Actor::User { id, .. } if *id == user_id) {
            return Err(ServiceError::Forbidden(
                "You cannot disable your own account; ask another admin.".into(),
            ));
        }
        let user = self
            .store
            .find_user(user_id)
            .await?
            .ok_or(ServiceError::NotFound("account"))?;
        let now = self.now();
        let tx = self.store.begin().await?;
        tx.set_user_disabled(user_id, disabled).await?;
        tx.audit(
            NewAuditEvent::new(
                actor,
                if disabled {
                    "user.disabled"
                } else {
                    "user.enabled"
                },
            )
            .subject("user", user_id)
            .detail(serde_json::json!({"email": user.email.as_str()}))
            .ip(ip),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes a password after checking the current one; signs out the account's other
    /// sessions.
    pub async fn change_password(
        &self,
        user: &User,
        current: SecretString,
        new: SecretString,
        keep_session: Option<&str>,
        ip: Option<String>,
    ) -> ServiceResult<()> {
        let stored = self.store.password_hash(user.id).await?;
        if !verify(stored, current).await? {
            return Err(ServiceError::field(
                "current",
                "this is not your current password",
            ));
        }
        check_password("new", &new).map_err(|e| ServiceError::Invalid(vec![e]))?;
        let new_hash = hash(new).await?;
        let now = self.now();
        let actor = Actor::User {
            id: user.id,
            email: user.email.to_string(),
        };
        let tx = self.store.begin().await?;
        tx.set_password_hash(user.id, new_hash).await?;
        tx.delete_sessions_of(user.id, keep_session).await?;
        tx.audit(
            NewAuditEvent::new(&actor, "user.password_changed")
                .subject("user", user.id)
                .ip(ip),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Signs in with email and password, subject to the failure limits.
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        ip: Option<String>,
    ) -> Result<SignedIn, LoginError> {
        let normalized = email.trim().to_lowercase();
        let account_key = format!("account:{normalized}");
        let keys = self
            .sign_in_gate(&account_key, ip.as_deref())
            .await?
            .map_err(LoginError::TooMany)?;
        let window = Duration::from_secs(self.settings().console.login_window_seconds);
        let window_start =
            self.now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::zero());
        let found = match EmailAddress::parse("email", email) {
            Ok(address) => self
                .store
                .find_user_for_login(&address)
                .await
                .map_err(anyhow::Error::from)?,
            Err(_) => None,
        };
        // The same argon2 work whether the account exists or not, so the answer's
        // timing does not tell which emails have accounts.
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, dummy_hash().await?),
        };
        let matches = verify(hash, password).await?;
        let verified = user.filter(|u| matches && !u.disabled);
        let Some(user) = verified else {
            self.login_failed(&keys, &normalized, ip, window_start)
                .await?;
            return Err(LoginError::BadCredentials);
        };
        self.store
            .clear_login_failures(&keys)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(self.open_session(user, ip).await?)
    }

    /// A failed sign-in: counted against its keys (account, address) and audited.
    async fn login_failed(
        &self,
        keys: &[String],
        email: &str,
        ip: Option<String>,
        window_start: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.store
            .record_login_failure(keys, self.now(), window_start)
            .await?;
        let tx = self.store.begin().await?;
        tx.audit(
            NewAuditEvent::new(&Actor::System, "auth.login_failed")
                .detail(serde_json::json!({"email": email}))
                .ip(ip),
            self.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new console session for `user`, audited; the cookie is returned once.
    async fn open_session(&self, user: User, ip: Option<String>) -> anyhow::Result<SignedIn> {
        let cookie = crypto::random_token(TOKEN_BYTES)?;
        let csrf = crypto::random_token(TOKEN_BYTES)?;
        let now = self.now();
        let expires = now + chrono::Duration::hours(self.settings().console.session_hours);
        let actor = Actor::User {
            id: user.id,
            email: user.email.to_string(),
        };
        let tx = self.store.begin().await?;
        tx.insert_session(&crypto::token_digest(&cookie), user.id, &csrf, now, expires)
            .await?;
        tx.audit(
            NewAuditEvent::new(&actor, "auth.login")
                .subject("user", user.id)
                .ip(ip),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(SignedIn {
            cookie: SecretString::from(cookie),
            user,
        })
    }

    /// The session a cookie belongs to, when it is live.
    pub async fn session(&self, cookie: &str) -> ServiceResult<Option<Session>> {
        Ok(self
            .store
            .find_session(&crypto::token_digest(cookie), self.now())
            .await?)
    }

    pub async fn logout(&self, cookie: &str, user: &User, ip: Option<String>) -> ServiceResult<()> {
        self.store
            .delete_session(&crypto::token_digest(cookie))
            .await?;
        let actor = Actor::User {
            id: user.id,
            email: user.email.to_string(),
        };
        let tx = self.store.begin().await?;
        tx.audit(
            NewAuditEvent::new(&actor, "auth.logout")
                .subject("user", user.id)
                .ip(ip),
            self.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates an API token. The secret is returned here once and stored only as a digest.
    pub async fn create_token(
        &self,
        actor: &Actor,
        name: &str,
        scopes: Scopes,
    ) -> ServiceResult<(ApiToken, SecretString)> {
        let name = name.trim();
        let mut errors = Vec::new();
        if name.is_empty() {
            errors.push(FieldError::new("name", "a token needs a name"));
        }
        if scopes.is_empty() {
            errors.push(FieldError::new(
                "scope",
                "give the token at least one scope",
            ));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        let secret = format!("{API_TOKEN_PREFIX}{}", crypto::random_token(TOKEN_BYTES)?);
        let prefix: String = secret.chars().take(API_TOKEN_PREFIX.len() + 6).collect();
        let now = self.now();
        let tx = self.store.begin().await?;
        let token = tx
            .insert_token(name, &crypto::token_digest(&secret), &prefix, &scopes, now)
            .await?;
        tx.audit(
            NewAuditEvent::new(actor, "token.created")
                .subject("token", token.id)
                .detail(serde_json::json!({"name": name, "scopes": scopes.to_string()})),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok((token, SecretString::from(secret)))
    }

    /// The live token a bearer secret belongs to; notes its use.
    pub async fn authenticate_token(&self, secret: &str) -> ServiceResult<Option<ApiToken>> {
        let Some(token) = self.store.find_token(&crypto::token_digest(secret)).await? else {
            return Ok(None);
        };
        if token.revoked {
            return Ok(None);
        }
        self.store.touch_token(token.id, self.now()).await?;
        Ok(Some(token))
    }

    /// Puts a notification back in the queue and delivers it now.
    pub async fn resend_notification(
        &self,
        actor: &Actor,
        outbox_id: OutboxId,
        ip: Option<String>,
    ) -> ServiceResult<()> {
        let now = self.now();
        let tx = self.store.begin().await?;
        tx.requeue_outbox(outbox_id, now).await?;
        tx.audit(
            NewAuditEvent::new(actor, "notification.resent")
                .subject("notification", outbox_id)
                .ip(ip),
            now,
        )
        .await?;
        tx.commit().await?;
        self.dispatcher.wake();
        Ok(())
    }

    /// Queues a test email to `to`, to check the SMTP settings end to end.
    pub async fn send_test_email(
        &self,
        actor: &Actor,
        to: &EmailAddress,
        ip: Option<String>,
    ) -> ServiceResult<()> {
        let now = self.now();
        let email = self.renderer.email(
            vec![to.clone()],
            &TestEmail {
                to: to.as_str().to_owned(),
                by: actor.to_string(),
            },
            None,
        )?;
        let tx = self.store.begin().await?;
        tx.enqueue_email(email, now).await?;
        tx.audit(
            NewAuditEvent::new(actor, "settings.test_email")
                .subject("email", to.as_str())
                .ip(ip),
            now,
        )
        .await?;
        tx.commit().await?;
        self.dispatcher.wake();
        Ok(())
    }
}
