//! The customer's side of a project, without a staff account: `/track` signs in with
//! the project's ID and password (the staff sign-in's limits; a sealed cookie of its
//! own that grants that project only, ended by sign-out or a new password), or finds
//! a single migration by its number and source address. The project's page shows
//! what staff see of it, minus staff notes, audit and other customers: each
//! mailbox's status and bar (polled), refused passwords to give again, the MX records
//! to set, pause and resume, more mailboxes, and the report as CSV.

use poem::http::StatusCode;
use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem::web::{Data, Form, Html, Json, Multipart, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::projects::{MailboxView, TotalsView, add_listed, live, mailboxes, message_of, totals};
use super::{FileForm, client_ip, internal_error};
use crate::domain::{Actor, MigrationId, MigrationStatus};
use crate::service::{
    ProjectAction, ProjectSignInError, ProjectView, ServiceError, Services, project_status_words,
};

/// The customer's project session.
const PROJECT_COOKIE: &str = "ferry_project";

/// What every customer page shows of the provider (`/track`, `/request`).
#[derive(Serialize)]
pub(super) struct Brand {
    provider_name: String,
    support_contact: String,
    colour: String,
}

pub(super) fn brand(services: &Services) -> Brand {
    let p = &services.settings().provider;
    Brand {
        provider_name: p.name.clone(),
        support_contact: p.support_contact.clone(),
        colour: p.colour.clone(),
    }
}

/// A customer page (no staff layout).
pub(super) fn render<C: Serialize>(services: &Services, template: &str, context: &C) -> Response {
    match services.renderer().page(template, context) {
        Ok(html) => Html(html).into_response(),
        Err(err) => internal_error(services, &format!("{err:#}")),
    }
}

#[derive(Serialize, Default)]
struct SignInPage {
    brand: Option<Brand>,
    project_error: Option<String>,
    single_error: Option<String>,
    project_id: String,
    migration_id: String,
    source_email: String,
    signed_out: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInQuery {
    signed_out: Option<String>,
    project_id: String,
}

#[handler]
pub async fn sign_in_form(
    services: Data<&Services>,
    poem::web::Query(query): poem::web::Query<SignInQuery>,
) -> Response {
    render(
        &services,
        "customer/track_sign_in.html",
        &SignInPage {
            brand: Some(brand(&services)),
            signed_out: query.signed_out.is_some(),
            project_id: query.project_id,
            ..Default::default()
        },
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    project_id: String,
    password: String,
}

/// Signs in with `project_id` and `password`.
#[handler]
pub async fn sign_in(
    req: &Request,
    jar: &CookieJar,
    services: Data<&Services>,
    Form(form): Form<SignInForm>,
) -> Response {
    let ip = client_ip(req);
    match services
        .project_sign_in(&form.project_id, SecretString::from(form.password), ip)
        .await
    {
        Ok((_, cookie)) => {
            let mut c = Cookie::new_with_str(PROJECT_COOKIE, cookie);
            c.set_path("/track");
            c.set_http_only(true);
            c.set_same_site(SameSite::Strict);
            c.set_secure(services.settings().base_url().starts_with("https://"));
            jar.add(c);
            Redirect::see_other("/track/project").into_response()
        }
        Err(err @ (ProjectSignInError::BadCredentials | ProjectSignInError::TooMany(_))) => {
            let status = match err {
                ProjectSignInError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let mut resp = render(
                &services,
                "customer/track_sign_in.html",
                &SignInPage {
                    brand: Some(brand(&services)),
                    project_error: Some(err.to_string()),
                    project_id: form.project_id,
                    ..Default::default()
                },
            );
            resp.set_status(status);
            resp
        }
        Err(ProjectSignInError::Internal(err)) => internal_error(&services, &err),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SingleForm {
    migration_id: String,
    source_email: String,
}

/// A single migration by its number and source address: its page.
#[handler]
pub async fn single(
    req: &Request,
    services: Data<&Services>,
    Form(form): Form<SingleForm>,
) -> Response {
    match services
        .track_single(&form.migration_id, &form.source_email, client_ip(req))
        .await
    {
        Ok(url) => Redirect::see_other(url).into_response(),
        Err(ProjectSignInError::Internal(err)) => internal_error(&services, &err),
        Err(err) => {
            let mut resp = render(
                &services,
                "customer/track_sign_in.html",
                &SignInPage {
                    brand: Some(brand(&services)),
                    single_error: Some(match err {
                        ProjectSignInError::BadCredentials => {
                            "No migration has that number and source address.".into()
                        }
                        other => other.to_string(),
                    }),
                    migration_id: form.migration_id,
                    source_email: form.source_email,
                    ..Default::default()
                },
            );
            resp.set_status(StatusCode::UNAUTHORIZED);
            resp
        }
    }
}

/// The project the request's cookie grants, with the cookie (for the forms' token).
async fn session(services: &Services, jar: &CookieJar) -> Result<(ProjectView, String), Response> {
    let signed_out = || Redirect::see_other("/track").into_response();
    let Some(cookie) = jar.get(PROJECT_COOKIE) else {
        return Err(signed_out());
    };
    let cookie = cookie.value_str().to_owned();
    match services.project_session(&cookie).await {
        Ok(Some(session)) => match services.project_view(session.project).await {
            Ok(view) => Ok((view, cookie)),
            Err(ServiceError::NotFound(_)) => Err(signed_out()),
            Err(err) => Err(internal_error(services, &err)),
        },
        Ok(None) => Err(signed_out()),
        Err(err) => Err(internal_error(services, &err)),
    }
}

/// The forms' token: tied to the session's cookie, so another site cannot post them.
fn form_token(cookie: &str) -> String {
    crate::crypto::token_digest(&format!("project-form:{cookie}"))
}

fn check_token(cookie: &str, submitted: &str) -> bool {
    form_token(cookie) == submitted
}

#[derive(Serialize)]
struct ProjectPage {
    brand: Brand,
    token: String,
    code: String,
    name: String,
    status: &'static str,
    status_words: &'static str,
    paused: bool,
    awaiting_approval: bool,
    window: Option<String>,
    time_zone: String,
    mailboxes: Vec<MailboxView>,
    totals: TotalsView,
    mx_domains: Vec<String>,
    mx_records: Vec<(String, String)>,
    flash: Option<Flash>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Flash {
    ok: bool,
    message: String,
}

const FLASH_COOKIE: &str = "ferry_project_flash";

fn back_with(jar: &CookieJar, ok: bool, message: &str) -> Response {
    if let Ok(json) = serde_json::to_string(&Flash {
        ok,
        message: message.to_owned(),
    }) {
        use base64::Engine;
        let mut c = Cookie::new_with_str(
            FLASH_COOKIE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json),
        );
        c.set_path("/track");
        c.set_http_only(true);
        c.set_same_site(SameSite::Strict);
        jar.add(c);
    }
    Redirect::see_other("/track/project").into_response()
}

/// Ends a cookie of the customer's pages (same name and path, expired).
fn expire(jar: &CookieJar, name: &str) {
    let mut gone = Cookie::new_with_str(name, "");
    gone.set_path("/track");
    gone.set_max_age(std::time::Duration::ZERO);
    jar.add(gone);
}

fn take_flash(jar: &CookieJar) -> Option<Flash> {
    use base64::Engine;
    let raw = jar.get(FLASH_COOKIE)?;
    expire(jar, FLASH_COOKIE);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.value_str())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[handler]
pub async fn show(services: Data<&Services>, jar: &CookieJar) -> Response {
    let (view, cookie) = match session(&services, jar).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let p = &view.project;
    let tz: chrono_tz::Tz = p.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let mut mx_domains: Vec<String> = view
        .migrations
        .iter()
        .filter(|(m, _)| m.status == MigrationStatus::WaitingForMx && m.mx_switched_at.is_none())
        .map(|(m, _)| m.mx_domain.clone())
        .collect();
    mx_domains.sort();
    mx_domains.dedup();
    let settings = services.settings();
    render(
        &services,
        "customer/project.html",
        &ProjectPage {
            brand: brand(&services),
            token: form_token(&cookie),
            code: p.code.to_string(),
            name: p.name.clone(),
            status: view.status.as_str(),
            status_words: view.status.words(),
            paused: p.paused_at.is_some(),
            awaiting_approval: p.approved_at.is_none(),
            window: p.window_start.map(|w| {
                w.with_timezone(&tz)
                    .format("%A %-d %B %Y, %H:%M")
                    .to_string()
            }),
            time_zone: p.time_zone.clone(),
            mailboxes: mailboxes(&view, true),
            totals: totals(&view),
            mx_domains,
            mx_records: settings
                .provider
                .mx_hosts
                .iter()
                .map(|mx| match mx.split_once(' ') {
                    Some((priority, host)) => (priority.to_owned(), host.trim().to_owned()),
                    None => ("10".to_owned(), mx.clone()),
                })
                .collect(),
            flash: take_flash(jar),
        },
    )
}

#[handler]
pub async fn live_json(services: Data<&Services>, jar: &CookieJar) -> Response {
    match session(&services, jar).await {
        Ok((view, _)) => Json(live(&view, true)).into_response(),
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenForm {
    token: String,
}

/// Pause or resume the whole project.
async fn act(
    services: &Services,
    jar: &CookieJar,
    token: &str,
    action: ProjectAction,
    done: &str,
) -> Response {
    let (view, cookie) = match session(services, jar).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    if !check_token(&cookie, token) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if view.project.approved_at.is_none() {
        return back_with(
            jar,
            false,
            "The project waits for our staff's approval; it starts once approved.",
        );
    }
    match services
        .project_action(&Actor::Customer, view.project.id, action)
        .await
    {
        Ok(_) => back_with(jar, true, done),
        Err(err @ (ServiceError::Invalid(_) | ServiceError::Conflict { .. })) => {
            back_with(jar, false, &message_of(&err))
        }
        Err(err) => internal_error(services, &err),
    }
}

#[handler]
pub async fn pause(
    services: Data<&Services>,
    jar: &CookieJar,
    Form(form): Form<TokenForm>,
) -> Response {
    act(
        &services,
        jar,
        &form.token,
        ProjectAction::Pause,
        "Paused: nothing more is copied until you resume. Nothing copied is lost.",
    )
    .await
}

#[handler]
pub async fn resume(
    services: Data<&Services>,
    jar: &CookieJar,
    Form(form): Form<TokenForm>,
) -> Response {
    act(
        &services,
        jar,
        &form.token,
        ProjectAction::Resume,
        "Resumed: each mailbox goes on from where it stopped.",
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MxForm {
    token: String,
    domain: String,
}

/// "I have changed the MX records of this domain".
#[handler]
pub async fn mx_switched(
    services: Data<&Services>,
    jar: &CookieJar,
    Form(form): Form<MxForm>,
) -> Response {
    act(
        &services,
        jar,
        &form.token,
        ProjectAction::MxSwitched(form.domain.clone()),
        "Thank you: noted. The final copy of each of its mailboxes follows after the grace period.",
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    token: String,
    migration: i64,
    source_password: String,
    destination_password: String,
}

/// A new password for a mailbox whose password was refused: stored and retried.
#[handler]
pub async fn new_password(
    services: Data<&Services>,
    jar: &CookieJar,
    Form(form): Form<PasswordForm>,
) -> Response {
    let (view, cookie) = match session(&services, jar).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    if !check_token(&cookie, &form.token) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let id = MigrationId(form.migration);
    // Only a mailbox of this project.
    if !view.migrations.iter().any(|(m, _)| m.id == id) {
        return back_with(jar, false, "That mailbox is not in this project.");
    }
    let given = |p: String| Some(p).filter(|p| !p.is_empty()).map(SecretString::from);
    match services
        .store_and_retry(
            &Actor::Customer,
            id,
            given(form.source_password),
            given(form.destination_password),
            true,
        )
        .await
    {
        Ok(m) => back_with(
            jar,
            true,
            &format!(
                "Thank you: {} starts again with the new password, from where it stopped.",
                m.source.username()
            ),
        ),
        Err(err @ (ServiceError::Invalid(_) | ServiceError::Conflict { .. })) => {
            back_with(jar, false, &message_of(&err))
        }
        Err(err) => internal_error(&services, &err),
    }
}

/// More mailboxes: a file or typed rows, each row checked; rows with a problem are
/// listed in the answer and not started.
#[handler]
pub async fn add_rows(
    services: Data<&Services>,
    jar: &CookieJar,
    multipart: Multipart,
) -> Response {
    let (view, cookie) = match session(&services, jar).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let form = match FileForm::read(multipart, "list").await {
        Ok(form) => form,
        Err(message) => return back_with(jar, false, &message),
    };
    if !check_token(&cookie, &form.text("token")) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match add_listed(&services, &Actor::Customer, &view.project, &form, false).await {
        Ok(text) => back_with(jar, true, &text),
        Err(text) => back_with(jar, false, &text),
    }
}

/// The report of every mailbox, as CSV.
#[handler]
pub async fn report_csv(services: Data<&Services>, jar: &CookieJar) -> Response {
    let (view, _) = match session(&services, jar).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "mailbox",
        "destination",
        "status",
        "percent",
        "messages copied",
        "messages refused",
        "problem",
        "what",
    ];
    let mut rows = vec![header.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()];
    for (m, p) in &view.migrations {
        rows.push(vec![
            m.source.username().to_owned(),
            m.dest.username().to_owned(),
            project_status_words(m.status).to_owned(),
            p.percent.map(|p| p.to_string()).unwrap_or_default(),
            p.copied.to_string(),
            p.failed.to_string(),
            m.error_message.clone().unwrap_or_default(),
            m.kind.as_str().to_owned(),
        ]);
    }
    for row in rows {
        if let Err(err) = out.write_record(&row) {
            return internal_error(&services, &err);
        }
    }
    let body = match out.into_inner() {
        Ok(body) => body,
        Err(err) => return internal_error(&services, &err),
    };
    Response::builder()
        .content_type("text/csv; charset=utf-8")
        .header(
            "Content-Disposition",
            format!("attachment; filename=\"{}-report.csv\"", view.project.code),
        )
        .body(body)
}

#[handler]
pub async fn sign_out(jar: &CookieJar) -> Response {
    expire(jar, PROJECT_COOKIE);
    Redirect::see_other("/track?signed_out=1").into_response()
}
