//! Settings an admin changes in the console. The file and the environment give the base
//! (read once at start); a stored row overrides one key of it. Every reader asks for
//! [`Services::settings`] when it acts, so a change is in force at the next request,
//! claim, MX check or email, with no restart. Other processes on the same database pick
//! a change up within [`RELOAD_EVERY`].

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;

use super::{ServiceError, ServiceResult, Services};
use crate::config::{EDITABLE, EditKind, Editable, Settings, editable};
use crate::domain::{Actor, FieldError, NewAuditEvent, StoredSetting};
use crate::notify::SmtpMailer;

/// How often a process reloads the stored settings, for changes made by another one.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);

/// The settings in force: the base from the file with the stored overrides on top.
#[derive(Debug)]
pub struct LiveSettings {
    base: Settings,
    state: RwLock<(Arc<Settings>, Vec<StoredSetting>)>,
}

impl LiveSettings {
    pub fn new(base: Settings) -> Self {
        let current = Arc::new(base.clone());
        Self {
            base,
            state: RwLock::new((current, Vec::new())),
        }
    }

    pub fn get(&self) -> Arc<Settings> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// What `ferry.toml` and the environment say.
    pub fn base(&self) -> &Settings {
        &self.base
    }

    /// The overrides in force, by key.
    pub fn stored(&self) -> Vec<StoredSetting> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }
}

/// An editable setting as people see it; never a secret's value.
#[derive(Debug, Clone, Serialize)]
pub struct SettingView {
    pub spec: &'static Editable,
    /// The value in force, as a form shows it; empty for a secret.
    pub value: String,
    /// Whether it has a value (for a secret: whether one is in force).
    pub is_set: bool,
    /// Who changed it in the console or the API, and when; none: the file's value.
    pub changed_by: Option<String>,
    pub changed_at: Option<DateTime<Utc>>,
    /// The file's value beside a changed one (never for a secret).
    pub file_value: Option<String>,
}

impl Services {
    /// Every editable setting, in the settings page's order.
    pub fn settings_view(&self) -> Vec<SettingView> {
        let s = self.settings();
        let base = self.live_settings.base();
        let stored = self.live_settings.stored();
        EDITABLE
            .iter()
            .map(|spec| {
                let secret = spec.kind == EditKind::Secret;
                let in_force = s.editable_text(spec.key);
                let row = stored.iter().find(|r| r.key == spec.key);
                SettingView {
                    spec,
                    value: if secret {
                        String::new()
                    } else {
                        in_force.clone()
                    },
                    is_set: !in_force.is_empty(),
                    changed_by: row.map(|r| r.updated_by.clone()),
                    changed_at: row.map(|r| r.updated_at),
                    file_value: (row.is_some() && !secret).then(|| base.editable_text(spec.key)),
                }
            })
            .collect()
    }

    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        self.live_settings.get()
    }

    /// What a connection to a customer-named server may reach and how long it may
    /// wait, from the settings in force.
    pub(crate) fn reach(&self) -> crate::connectors::net::Reach {
        let s = self.settings();
        crate::connectors::net::Reach {
            allow_private: s.allow_private_targets,
            nameserver: s.mx_nameserver(),
            dns_timeout: std::time::Duration::from_secs(s.timeouts.dns_seconds),
            connect_timeout: std::time::Duration::from_secs(s.timeouts.connect_seconds),
            io_timeout: std::time::Duration::from_secs(s.timeouts.io_seconds),
            pulse: None,
        }
    }

    /// Puts the stored settings in force when they changed since the last look: at
    /// start, after a change here, and every [`RELOAD_EVERY`].
    pub async fn reload_settings(&self) -> anyhow::Result<()> {
        let rows = self.store.list_settings().await?;
        if rows == self.live_settings.stored() {
            return Ok(());
        }
        let mut next = self.live_settings.base().clone();
        for row in &rows {
            let text = if editable(&row.key).is_some_and(|e| e.kind == EditKind::Secret) {
                match self.cipher.decrypt(&row.value) {
                    Ok(secret) => secret.expose_secret().to_owned(),
                    Err(_) => {
                        tracing::warn!(key = %row.key, "A stored secret setting cannot be decrypted (was the key file replaced?); the file's value stays in force");
                        continue;
                    }
                }
            } else {
                row.value.clone()
            };
            // Only the key is logged: the value may be a secret.
            if let Err(err) = next.set_editable(&row.key, &text) {
                tracing::warn!(key = %row.key, reason = %err, "A stored setting is not valid; the file's value stays in force");
            }
        }
        let previous = self.settings();
        if previous.editable_text("smtp.url") != next.editable_text("smtp.url")
            || previous.smtp.from != next.smtp.from
        {
            match SmtpMailer::from_settings(&next.smtp, &next.timeouts) {
                Ok(mailer) => self.dispatcher.set_mailer(mailer),
                Err(err) => tracing::warn!(error = %err, "The SMTP settings are not usable"),
            }
        }
        *self
            .live_settings
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner) = (Arc::new(next), rows);
        // More passes may fit now, or an earlier MX grace may have run out.
        self.wake_workers();
        Ok(())
    }

    /// Changes the settings named in `form` (a key and the text typed for it). A secret
    /// left empty keeps its value; `KEY.clear` removes it (`smtp.url.clear`: no SMTP server). Either all
    /// the changes are stored, or none and every bad field is named. Returns the keys
    /// that changed.
    pub async fn change_settings(
        &self,
        actor: &Actor,
        form: &HashMap<String, String>,
        ip: Option<String>,
    ) -> ServiceResult<Vec<&'static str>> {
        let current = self.settings();
        let mut next = (*current).clone();
        let mut errors = Vec::new();
        for spec in EDITABLE {
            let Some(text) = form.get(spec.key) else {
                continue;
            };
            if spec.kind == EditKind::Secret && text.trim().is_empty() {
                continue;
            }
            if let Err(message) = next.set_editable(spec.key, text) {
                errors.push(FieldError::new(spec.key, message));
            }
        }
        for spec in EDITABLE.iter().filter(|s| s.kind == EditKind::Secret) {
            if form.contains_key(&format!("{}.clear", spec.key))
                && let Err(message) = next.set_editable(spec.key, "")
            {
                errors.push(FieldError::new(spec.key, message));
            }
        }
        for (key, message) in next.check_editable() {
            errors.push(FieldError::new(key, message));
        }
        if let Some(url) = &next.smtp.url
            && SmtpMailer::new(url, &next.smtp.from, &next.timeouts).is_err()
        {
            errors.push(FieldError::new(
                "smtp.url",
                "Give an address such as smtp://user:password@mail.provider.example:587?tls=required.",
            ));
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }

        let now = self.now();
        let by = match actor {
            Actor::User { email, .. } => email.clone(),
            other => other.to_string(),
        };
        let base = self.live_settings.base();
        let tx = self.store.begin().await?;
        let mut changed = Vec::new();
        let mut detail = serde_json::Map::new();
        for spec in EDITABLE {
            let old = current.editable_text(spec.key);
            let new = next.editable_text(spec.key);
            if old == new {
                continue;
            }
            let secret = spec.kind == EditKind::Secret;
            if new == base.editable_text(spec.key) {
                tx.delete_setting(spec.key).await?;
            } else {
                let value = if secret {
                    self.cipher.encrypt(&SecretString::from(new.clone()))?
                } else {
                    new.clone()
                };
                tx.put_setting(spec.key, value, by.clone(), now).await?;
            }
            detail.insert(
                spec.key.to_owned(),
                if secret {
                    json!({ "changed": true, "set": !new.is_empty() })
                } else {
                    json!({ "from": old, "to": new })
                },
            );
            changed.push(spec.key);
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        tx.audit(
            NewAuditEvent::new(actor, "settings.changed")
                .detail(serde_json::Value::Object(detail))
                .ip(ip),
            now,
        )
        .await?;
        tx.commit().await?;
        self.reload_settings().await?;
        Ok(changed)
    }

    /// Puts the file's value of `key` back in force.
    pub async fn reset_setting(
        &self,
        actor: &Actor,
        key: &str,
        ip: Option<String>,
    ) -> ServiceResult<()> {
        let Some(spec) = editable(key) else {
            return Err(ServiceError::NotFound("setting"));
        };
        let now = self.now();
        let tx = self.store.begin().await?;
        if !tx.delete_setting(spec.key).await? {
            return Ok(());
        }
        let to = if spec.kind == EditKind::Secret {
            json!("the file's value")
        } else {
            json!(self.live_settings.base().editable_text(spec.key))
        };
        tx.audit(
            NewAuditEvent::new(actor, "settings.reset")
                .detail(json!({ "key": spec.key, "to": to }))
                .ip(ip),
            now,
        )
        .await?;
        tx.commit().await?;
        self.reload_settings().await?;
        Ok(())
    }
}
