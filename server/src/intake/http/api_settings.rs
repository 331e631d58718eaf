//! `/api/v1/settings`: the settings an admin changes in the console, read and changed
//! by a program (scope `settings:admin`), through the same service and checks.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::Value;

use super::api::{ApiError, TokenAuth, actor, services};
use super::console::client_ip;
use crate::config::EditKind;
use crate::domain::{FieldError, Scope};
use crate::service::{ServiceError, SettingView};

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct SettingBody {
    /// The key, as in docs/config.md (`capacity.max_concurrent`).
    pub key: String,
    pub group: String,
    pub label: String,
    /// host, port, security, lines, time, number, mailbox, optional_email or secret.
    pub kind: String,
    /// The value in force as text (lists one item per line); never a secret's.
    pub value: Option<String>,
    /// For a secret: whether one is in force.
    pub is_set: bool,
    /// Who changed it and when; absent: the value from `ferry.toml` or the environment.
    pub changed_by: Option<String>,
    pub changed_at: Option<DateTime<Utc>>,
    /// The file's value, beside a changed one (never a secret's).
    pub file_value: Option<String>,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct SettingsBody {
    pub settings: Vec<SettingBody>,
}

#[derive(ApiResponse)]
enum Reset {
    /// Back to the file's value.
    #[oai(status = 204)]
    Done,
}

fn body(view: Vec<SettingView>) -> SettingsBody {
    SettingsBody {
        settings: view
            .into_iter()
            .map(|v| SettingBody {
                key: v.spec.key.to_owned(),
                group: v.spec.group.to_owned(),
                label: v.spec.label.to_owned(),
                kind: serde_json::to_value(v.spec.kind)
                    .ok()
                    .and_then(|k| k.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                value: (v.spec.kind != EditKind::Secret).then_some(v.value),
                is_set: v.is_set,
                changed_by: v.changed_by,
                changed_at: v.changed_at,
                file_value: v.file_value,
            })
            .collect(),
    }
}

/// A JSON value as the text a form field would hold: strings as they are, numbers
/// written out, a list one item per line; `null` empties an optional value (and
/// removes the SMTP server).
fn as_text(key: &str, value: &Value) -> Result<(String, bool), String> {
    match value {
        Value::String(s) => Ok((s.clone(), false)),
        Value::Number(n) => Ok((n.to_string(), false)),
        Value::Null => Ok((
            String::new(),
            crate::config::editable(key).is_some_and(|e| e.kind == crate::config::EditKind::Secret),
        )),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "Give a list of strings.".to_owned())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| (v.join("\n"), false)),
        _ => Err("Give a string, a number or a list of strings.".into()),
    }
}

pub struct SettingsApi;

#[OpenApi]
impl SettingsApi {
    /// The settings an admin may change at run time, with the value in force, who
    /// changed it and the file's value. Needs `settings:admin`.
    #[oai(path = "/settings", method = "get")]
    async fn list(&self, req: &Request, auth: TokenAuth) -> Result<Json<SettingsBody>, ApiError> {
        auth.require(Scope::SettingsAdmin)?;
        Ok(Json(body(services(req)?.settings_view())))
    }

    /// Changes some settings, given as `{"key": value}`: all or none, in force at once.
    /// 422 `validation_failed` names each bad key with what to give. `null` removes a
    /// secret (`"smtp.url": null`: no SMTP server). Needs `settings:admin`.
    #[oai(path = "/settings", method = "patch")]
    async fn change(
        &self,
        req: &Request,
        auth: TokenAuth,
        changes: Json<HashMap<String, Value>>,
    ) -> Result<Json<SettingsBody>, ApiError> {
        auth.require(Scope::SettingsAdmin)?;
        let services = services(req)?;
        let mut form = HashMap::new();
        let mut errors = Vec::new();
        for (key, value) in &changes.0 {
            let Some(spec) = crate::config::editable(key) else {
                errors.push(FieldError::new(
                    "settings",
                    format!("{key} is not a setting that can be changed at run time (see GET /settings)."),
                ));
                continue;
            };
            match as_text(key, value) {
                Ok((text, clear)) => {
                    if clear {
                        form.insert(format!("{key}.clear"), String::new());
                    }
                    form.insert(key.clone(), text);
                }
                Err(message) => errors.push(FieldError::new(spec.key, message)),
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors).into());
        }
        services
            .change_settings(&actor(&auth), &form, client_ip(req))
            .await?;
        Ok(Json(body(services.settings_view())))
    }

    /// Puts the file's value of `key` back in force. 204; 404 for a key that cannot be
    /// changed at run time. Needs `settings:admin`.
    #[oai(path = "/settings/:key", method = "delete")]
    async fn reset(
        &self,
        req: &Request,
        auth: TokenAuth,
        key: Path<String>,
    ) -> Result<Reset, ApiError> {
        auth.require(Scope::SettingsAdmin)?;
        services(req)?
            .reset_setting(&actor(&auth), &key.0, client_ip(req))
            .await?;
        Ok(Reset::Done)
    }
}
