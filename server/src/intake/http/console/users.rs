//! Staff accounts: list, add, disable, enable (admins only).

use poem::web::cookie::CookieJar;
use poem::web::{Form, Path};
use poem::{Response, handler};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{CsrfForm, Layout, Staff, display_time, internal_error, redirect_with_flash};
use crate::domain::{Role, UserId};
use crate::render::FieldErrors;
use crate::service::{NewStaff, ServiceError};

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default, skip_serializing)]
    password: String,
    #[serde(default, skip_serializing)]
    csrf: String,
}

#[derive(Serialize)]
struct UserRow {
    id: UserId,
    name: String,
    email: String,
    role: &'static str,
    disabled: bool,
    last_login: Option<String>,
    is_self: bool,
}

#[derive(Serialize)]
struct UsersPage<'a> {
    layout: Layout,
    users: Vec<UserRow>,
    form: &'a AddForm,
    errors: FieldErrors,
}

/// The add-staff form's fields.
const FIELDS: &[&str] = &["email", "name", "password", "role"];

async fn render(staff: &Staff, form: &AddForm, errors: FieldErrors) -> Response {
    match staff.services.store().list_users().await {
        Ok(users) => {
            let users = users
                .into_iter()
                .map(|u| UserRow {
                    is_self: u.id == staff.session.user.id,
                    id: u.id,
                    name: u.name,
                    email: u.email.to_string(),
                    role: u.role.as_str(),
                    disabled: u.disabled,
                    last_login: u.last_login_at.map(display_time),
                })
                .collect();
            let mut resp = staff.render(
                "console/users.html",
                &UsersPage {
                    layout: staff.layout("/users"),
                    users,
                    form,
                    errors: errors.clone(),
                },
            );
            if !errors.is_empty() {
                resp.set_status(poem::http::StatusCode::UNPROCESSABLE_ENTITY);
            }
            resp
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[handler]
pub async fn list(staff: Staff) -> Response {
    if let Some(resp) = staff.reject_unless_admin() {
        return resp;
    }
    render(&staff, &AddForm::default(), FieldErrors::new(FIELDS, [])).await
}

#[handler]
pub async fn add(staff: Staff, jar: &CookieJar, Form(form): Form<AddForm>) -> Response {
    if let Some(resp) = staff.reject_unless_admin_form(&form.csrf) {
        return resp;
    }
    let role = if form.role == "admin" {
        Role::Admin
    } else {
        Role::Staff
    };
    let new = NewStaff {
        email: &form.email,
        name: &form.name,
        role,
        password: SecretString::from(form.password.clone()),
    };
    match staff
        .services
        .create_user(&staff.actor(), new, staff.ip.clone())
        .await
    {
        Ok(user) => redirect_with_flash(
            jar,
            "/users",
            true,
            &format!(
                "Added {}. A welcome email is on its way (without the password).",
                user.email
            ),
        ),
        Err(ServiceError::Invalid(errors)) => {
            let errors = errors.into_iter().map(|e| (e.field.to_owned(), e.message));
            render(&staff, &form, FieldErrors::new(FIELDS, errors)).await
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}

async fn set_disabled(
    staff: Staff,
    jar: &CookieJar,
    id: UserId,
    csrf: &str,
    disabled: bool,
) -> Response {
    if let Some(resp) = staff.reject_unless_admin_form(csrf) {
        return resp;
    }
    match staff
        .services
        .set_user_disabled(&staff.actor(), id, disabled, staff.ip.clone())
        .await
    {
        Ok(()) => redirect_with_flash(
            jar,
            "/users",
            true,
            if disabled {
                "Account disabled and signed out."
            } else {
                "Account enabled."
            },
        ),
        Err(ServiceError::Forbidden(why)) => redirect_with_flash(jar, "/users", false, &why),
        Err(ServiceError::NotFound(_)) => {
            redirect_with_flash(jar, "/users", false, "No such account.")
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}

#[handler]
pub async fn disable(
    staff: Staff,
    jar: &CookieJar,
    Path(id): Path<UserId>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_disabled(staff, jar, id, &form.csrf, true).await
}

#[handler]
pub async fn enable(
    staff: Staff,
    jar: &CookieJar,
    Path(id): Path<UserId>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_disabled(staff, jar, id, &form.csrf, false).await
}
