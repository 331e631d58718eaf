//! The signed-in person's own account: change password.

use poem::web::Form;
use poem::web::cookie::CookieJar;
use poem::{Response, handler};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{Layout, Staff, internal_error, redirect_with_flash};
use crate::crypto;
use crate::render::FieldErrors;
use crate::service::ServiceError;

#[derive(Serialize)]
struct AccountPage {
    layout: Layout,
    errors: FieldErrors,
}

/// The password form's fields.
const FIELDS: &[&str] = &["current", "new"];

#[handler]
pub async fn page(staff: Staff) -> Response {
    staff.render(
        "console/account.html",
        &AccountPage {
            layout: staff.layout("/account"),
            errors: FieldErrors::new(FIELDS, []),
        },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    csrf: String,
}

#[handler]
pub async fn change_password(
    staff: Staff,
    jar: &CookieJar,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    let keep = crypto::token_digest(&staff.cookie);
    let result = staff
        .services
        .change_password(
            &staff.session.user,
            SecretString::from(form.current),
            SecretString::from(form.new),
            Some(&keep),
            staff.ip.clone(),
        )
        .await;
    match result {
        Ok(()) => redirect_with_flash(
            jar,
            "/account",
            true,
            "Password changed; your other sessions are signed out.",
        ),
        Err(ServiceError::Invalid(errors)) => {
            let mut resp = staff.render(
                "console/account.html",
                &AccountPage {
                    layout: staff.layout("/account"),
                    errors: FieldErrors::new(
                        FIELDS,
                        errors.into_iter().map(|e| (e.field.to_owned(), e.message)),
                    ),
                },
            );
            resp.set_status(poem::http::StatusCode::UNPROCESSABLE_ENTITY);
            resp
        }
        Err(err) => internal_error(&staff.services, &err),
    }
}
