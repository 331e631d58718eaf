//! Settings, for admins: the ones the console may change (as a form, each with where its
//! value comes from and a reset to the file's), the ones read at start, and a test
//! email through the outbox.

use std::collections::{BTreeMap, HashMap};

use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Form, Html};
use poem::{IntoResponse, Response, handler};
use serde::{Deserialize, Serialize};

use super::{CsrfForm, Layout, Staff, display_time, internal_error, redirect_with_flash};
use crate::config::{EDITABLE, EditKind};
use crate::service::ServiceError;
use crate::service::SettingView;

#[derive(Serialize)]
struct Field {
    #[serde(flatten)]
    setting: SettingView,
    /// What was typed before an error, in place of the value in force.
    typed: Option<String>,
    error: Option<String>,
    /// `changed_at` as the `when` filter takes it.
    changed_when: Option<String>,
}

#[derive(Serialize)]
struct Group {
    title: &'static str,
    fields: Vec<Field>,
}

#[derive(Serialize)]
struct SettingsPage {
    layout: Layout,
    groups: Vec<Group>,
    fixed: Vec<(&'static str, &'static str, String)>,
    has_errors: bool,
}

fn render_page(
    staff: &Staff,
    typed: Option<&HashMap<String, String>>,
    errors: &BTreeMap<&'static str, String>,
) -> Response {
    let services = &staff.services;
    let s = services.settings();
    let mut groups: Vec<Group> = Vec::new();
    for setting in services.settings_view() {
        let spec = setting.spec;
        let field = Field {
            typed: typed
                .filter(|_| spec.kind != EditKind::Secret)
                .and_then(|t| t.get(spec.key))
                .cloned(),
            error: errors.get(spec.key).cloned(),
            changed_when: setting.changed_at.map(display_time),
            setting,
        };
        match groups.last_mut() {
            Some(g) if g.title == spec.group => g.fields.push(field),
            _ => groups.push(Group {
                title: spec.group,
                fields: vec![field],
            }),
        }
    }
    let fixed = vec![
        ("base_url", "Console address", s.base_url()),
        (
            "database_url",
            "Database",
            services.store().backend_name().to_owned(),
        ),
        (
            "mx.nameserver",
            "DNS server for MX checks",
            s.mx.nameserver
                .clone()
                .unwrap_or_else(|| "the system's".into()),
        ),
        (
            "mx.check_seconds",
            "MX checked every",
            format!("{} s", s.mx.check_seconds),
        ),
        (
            "workers.connections",
            "Connections per side per migration",
            s.workers.connections.to_string(),
        ),
        (
            "smtp.max_attempts",
            "Delivery attempts",
            s.smtp.max_attempts.to_string(),
        ),
    ];
    let context = SettingsPage {
        layout: staff.layout("/settings"),
        groups,
        fixed,
        has_errors: !errors.is_empty(),
    };
    if errors.is_empty() {
        staff.render("console/settings.html", &context)
    } else {
        match services.renderer().page("console/settings.html", &context) {
            Ok(html) => (StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response(),
            Err(err) => internal_error(services, &err),
        }
    }
}

#[handler]
pub async fn page(staff: Staff) -> Response {
    if let Some(resp) = staff.reject_unless_admin() {
        return resp;
    }
    render_page(&staff, None, &BTreeMap::new())
}

#[handler]
pub async fn save(
    staff: Staff,
    jar: &CookieJar,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let csrf = form.get("csrf").map(String::as_str).unwrap_or_default();
    if let Some(resp) = staff.reject_unless_admin_form(csrf) {
        return resp;
    }
    match staff
        .services
        .change_settings(&staff.actor(), &form, staff.ip.clone())
        .await
    {
        Ok(changed) if changed.is_empty() => {
            redirect_with_flash(jar, "/settings", true, "Nothing changed.")
        }
        Ok(changed) => redirect_with_flash(
            jar,
            "/settings",
            true,
            &format!(
                "Saved and in force now: {}.",
                changed
                    .iter()
                    .map(|k| EDITABLE
                        .iter()
                        .find(|e| e.key == *k)
                        .map_or(*k, |e| e.label))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Err(ServiceError::Invalid(errors)) => {
            let errors = errors.into_iter().map(|e| (e.field, e.message)).collect();
            render_page(&staff, Some(&form), &errors)
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

#[handler]
pub async fn reset(staff: Staff, jar: &CookieJar, Form(form): Form<ResetForm>) -> Response {
    if let Some(resp) = staff.reject_unless_admin_form(&form.csrf) {
        return resp;
    }
    match staff
        .services
        .reset_setting(&staff.actor(), &form.key, staff.ip.clone())
        .await
    {
        Ok(()) => redirect_with_flash(
            jar,
            "/settings",
            true,
            &format!("{} is back to the value from ferry.toml.", form.key),
        ),
        Err(ServiceError::NotFound(_)) => redirect_with_flash(
            jar,
            "/settings",
            false,
            &format!("{} cannot be changed in the console.", form.key),
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[handler]
pub async fn test_email(staff: Staff, jar: &CookieJar, Form(form): Form<CsrfForm>) -> Response {
    if let Some(resp) = staff.reject_unless_admin_form(&form.csrf) {
        return resp;
    }
    let to = staff.session.user.email.clone();
    match staff
        .services
        .send_test_email(&staff.actor(), &to, staff.ip.clone())
        .await
    {
        Ok(()) => redirect_with_flash(
            jar,
            "/settings",
            true,
            &format!("A test email is on its way to {to}; the Outbox shows its delivery."),
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}
