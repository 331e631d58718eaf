//! The customer's way in without a staff account: a project signed in to with its
//! code and password (the staff sign-in's limits, through `sign_in_gate`), its session
//! a cookie sealed with the data directory's key that names the project and its
//! password's hash (so a new password ends it); and a single migration found by its
//! number and its source address.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::{ServiceResult, Services};
use crate::crypto;
use crate::domain::{Actor, MigrationId, NewAuditEvent, Project, ProjectCode, ProjectId};

/// How long a customer's project session lasts.
const PROJECT_SESSION_HOURS: i64 = 8;

/// A project's customer session: which project, until when.
#[derive(Debug, Clone)]
pub struct ProjectSession {
    pub project: ProjectId,
    pub expires: DateTime<Utc>,
}

/// Why a customer's sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProjectSignInError {
    #[error("That project ID and password do not match.")]
    BadCredentials,
    #[error("Too many failed attempts; try again in {} minutes.", .0.as_secs().div_ceil(60))]
    TooMany(Duration),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Services {
    /// A single migration's page found by its number and its source address (as the
    /// seeds' tracking does), under the sign-in limits: its customer link.
    pub async fn track_single(
        &self,
        id: &str,
        source_email: &str,
        ip: Option<String>,
    ) -> Result<String, ProjectSignInError> {
        let number = id.trim().trim_start_matches('#').parse::<i64>().ok();
        let account_key = format!("migration:{}", number.unwrap_or(-1));
        let keys = self
            .sign_in_gate(&account_key, ip.as_deref())
            .await?
            .map_err(ProjectSignInError::TooMany)?;
        let found = match number {
            Some(n) => self
                .store
                .get_migration(MigrationId(n))
                .await
                .map_err(anyhow::Error::from)?,
            None => None,
        };
        let url = found
            .filter(|m| {
                m.source
                    .username()
                    .eq_ignore_ascii_case(source_email.trim())
            })
            .and_then(|m| self.customer_url(&m));
        match url {
            Some(url) => {
                self.store
                    .clear_login_failures(&keys)
                    .await
                    .map_err(anyhow::Error::from)?;
                Ok(url)
            }
            None => {
                self.sign_in_failed(&keys, &account_key, ip).await?;
                Err(ProjectSignInError::BadCredentials)
            }
        }
    }

    async fn sign_in_failed(
        &self,
        keys: &[String],
        account_key: &str,
        ip: Option<String>,
    ) -> anyhow::Result<()> {
        let window = Duration::from_secs(self.settings().console.login_window_seconds);
        let window_start =
            self.now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::zero());
        self.store
            .record_login_failure(keys, self.now(), window_start)
            .await?;
        let tx = self.store.begin().await?;
        tx.audit(
            NewAuditEvent::new(&Actor::System, "customer.sign_in_failed")
                .detail(serde_json::json!({ "on": account_key }))
                .ip(ip),
            self.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A customer signs in to a project with its code and password, under the same
    /// limits as staff sign-in (an address refused after repeated failures, a much
    /// guessed project slowed). Answers the session's cookie value.
    pub async fn project_sign_in(
        &self,
        code: &str,
        password: SecretString,
        ip: Option<String>,
    ) -> Result<(Project, String), ProjectSignInError> {
        let parsed = ProjectCode::parse("project_id", code).ok();
        let account_key = format!(
            "project:{}",
            parsed
                .as_ref()
                .map_or_else(|| code.trim().to_uppercase(), |c| c.to_string())
        );
        let keys = self
            .sign_in_gate(&account_key, ip.as_deref())
            .await?
            .map_err(ProjectSignInError::TooMany)?;
        let found = match &parsed {
            Some(code) => self
                .store
                .project_by_code(code)
                .await
                .map_err(anyhow::Error::from)?,
            None => None,
        };
        let hash = match &found {
            Some(p) => self
                .store
                .project_password_hash(p.id)
                .await
                .map_err(anyhow::Error::from)?,
            None => None,
        };
        // The same argon2 work whether the project exists or not.
        let hash = match hash {
            Some(hash) => hash,
            None => super::accounts::dummy_hash().await?,
        };
        let checked = hash.clone();
        let matches =
            tokio::task::spawn_blocking(move || crypto::verify_password(&checked, &password))
                .await
                .map_err(anyhow::Error::from)?;
        let Some(project) = found.filter(|_| matches) else {
            self.sign_in_failed(&keys, &account_key, ip).await?;
            return Err(ProjectSignInError::BadCredentials);
        };
        self.store
            .clear_login_failures(&keys)
            .await
            .map_err(anyhow::Error::from)?;
        let expires = self.now() + chrono::Duration::hours(PROJECT_SESSION_HOURS);
        // The cookie is sealed (authenticated encryption with the data directory's
        // key) and names the password's hash: a new password ends every session.
        let plain = format!(
            "{}|{}|{}",
            project.id.0,
            expires.timestamp(),
            crypto::token_digest(&hash)
        );
        let cookie = self.cipher.encrypt(&SecretString::from(plain))?;
        let tx = self.store.begin().await.map_err(anyhow::Error::from)?;
        tx.audit(
            NewAuditEvent::new(&Actor::Customer, "project.sign_in")
                .subject("project", project.code.as_str())
                .ip(ip),
            self.now(),
        )
        .await
        .map_err(anyhow::Error::from)?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        Ok((project, cookie))
    }

    /// The project a customer's session cookie grants, while it is live and the
    /// project's password has not changed since.
    pub async fn project_session(&self, cookie: &str) -> ServiceResult<Option<ProjectSession>> {
        let Ok(plain) = self.cipher.decrypt(cookie) else {
            return Ok(None);
        };
        let mut parts = plain.expose_secret().split('|');
        let (Some(id), Some(expires), Some(digest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let (Ok(id), Some(expires)) = (
            id.parse::<i64>(),
            expires
                .parse::<i64>()
                .ok()
                .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0)),
        ) else {
            return Ok(None);
        };
        if expires <= self.now() {
            return Ok(None);
        }
        let id = ProjectId(id);
        match self.store.project_password_hash(id).await? {
            Some(hash) if crypto::token_digest(&hash) == digest => Ok(Some(ProjectSession {
                project: id,
                expires,
            })),
            _ => Ok(None),
        }
    }
}
