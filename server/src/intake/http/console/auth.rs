//! Sign in and out.

use poem::http::StatusCode;
use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem::web::{Form, Html, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    CsrfForm, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Staff, client_ip, constant_time_eq, internal_error,
};
use crate::crypto;
use crate::service::{LoginError, Services};

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// The sign-in page's context.
#[derive(serde::Serialize)]
struct LoginPage<'a> {
    csrf: String,
    email: &'a str,
    error: Option<&'a str>,
}

fn login_page(
    services: &Services,
    jar: &CookieJar,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    // Before there is a session, the form's CSRF token is a cookie it must match.
    let token = match jar.get(LOGIN_CSRF_COOKIE) {
        Some(c) => c.value_str().to_owned(),
        None => match crypto::random_token(24) {
            Ok(t) => {
                let mut cookie = Cookie::new_with_str(LOGIN_CSRF_COOKIE, &t);
                cookie.set_path("/login");
                cookie.set_http_only(true);
                cookie.set_secure(services.settings().secure_cookies());
                cookie.set_same_site(SameSite::Strict);
                jar.add(cookie);
                t
            }
            Err(err) => return internal_error(services, &err),
        },
    };
    let context = LoginPage {
        csrf: token,
        email,
        error,
    };
    match services.renderer().page("console/login.html", &context) {
        Ok(html) => Html(html).with_status(status).into_response(),
        Err(err) => internal_error(services, &err),
    }
}

#[handler]
pub async fn login_form(req: &Request, jar: &CookieJar) -> Response {
    let Some(services) = req.data::<Services>() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(cookie) = jar.get(SESSION_COOKIE)
        && let Ok(Some(_)) = services.session(cookie.value_str()).await
    {
        return Redirect::see_other("/").into_response();
    }
    login_page(services, jar, "", None, StatusCode::OK)
}

#[handler]
pub async fn login_submit(req: &Request, jar: &CookieJar, Form(form): Form<LoginForm>) -> Response {
    let Some(services) = req.data::<Services>() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let expected = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value_str().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return login_page(
            services,
            jar,
            &form.email,
            Some("This sign-in form had expired; please sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let password = SecretString::from(form.password);
    match services.login(&form.email, password, client_ip(req)).await {
        Ok(signed_in) => {
            let mut cookie = Cookie::new_with_str(SESSION_COOKIE, signed_in.cookie.expose_secret());
            cookie.set_path("/");
            cookie.set_http_only(true);
            cookie.set_secure(services.settings().secure_cookies());
            cookie.set_same_site(SameSite::Lax);
            cookie.set_max_age(std::time::Duration::from_secs(
                u64::try_from(services.settings().console.session_hours).unwrap_or(12) * 3600,
            ));
            jar.add(cookie);
            Redirect::see_other("/").into_response()
        }
        Err(err @ LoginError::BadCredentials) => login_page(
            services,
            jar,
            &form.email,
            Some(&err.to_string()),
            StatusCode::UNAUTHORIZED,
        ),
        Err(err @ LoginError::TooMany(_)) => login_page(
            services,
            jar,
            &form.email,
            Some(&err.to_string()),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(LoginError::Internal(err)) => internal_error(services, &format!("{err:#}")),
    }
}

#[handler]
pub async fn logout(staff: Staff, jar: &CookieJar, Form(form): Form<CsrfForm>) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    if let Err(err) = staff
        .services
        .logout(&staff.cookie, &staff.session.user, staff.ip.clone())
        .await
    {
        return internal_error(&staff.services, &err);
    }
    jar.remove(SESSION_COOKIE);
    Redirect::see_other("/login").into_response()
}
