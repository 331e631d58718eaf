//! The console: server-rendered pages for staff, behind a session cookie, with a CSRF
//! token in every form.

mod account;
mod auth;
mod import;
mod items;
mod migration;
mod migration_list;
mod migrations;
mod outbox;
mod pages;
mod projects;
mod request;
mod schedule;
mod settings;
mod tickets;
mod track;
mod track_project;
mod users;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::http::StatusCode;
use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem::web::{Html, Multipart, Redirect};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response, Route, get, post};
use serde::Serialize;

use super::error_page;
use crate::domain::{Actor, Role, Session};
use crate::service::Services;

pub const SESSION_COOKIE: &str = "ferry_session";
pub const LOGIN_CSRF_COOKIE: &str = "ferry_login_csrf";
const FLASH_COOKIE: &str = "ferry_flash";
/// Set by every page's script: the viewer's IANA time zone.
const TZ_COOKIE: &str = "ferry_tz";

pub fn routes() -> Route {
    Route::new()
        .at("/", get(pages::dashboard))
        .at("/login", get(auth::login_form).post(auth::login_submit))
        .at("/logout", post(auth::logout))
        .at("/audit", get(pages::audit))
        .at("/users", get(users::list).post(users::add))
        .at("/users/:id/disable", post(users::disable))
        .at("/users/:id/enable", post(users::enable))
        .at("/account", get(account::page))
        .at("/account/password", post(account::change_password))
        .at("/migrations", get(migration_list::list))
        .at("/migrations.csv", get(migration_list::export))
        .at("/migrations/bulk", post(migration_list::bulk))
        .at(
            "/migrations/import",
            get(import::start).post(import::receive),
        )
        .at("/migrations/import/:id", get(import::preview))
        .at("/migrations/import/:id/create", post(import::create))
        .at(
            "/templates/migration-request.csv",
            get(import::template_csv),
        )
        .at(
            "/templates/migration-request-short.csv",
            get(import::template_short_csv),
        )
        .at(
            "/templates/migration-request.xlsx",
            get(import::template_xlsx),
        )
        .at("/schedule", get(schedule::schedule))
        .at(
            "/migrations/new",
            get(migrations::new_form).post(migrations::create),
        )
        .at(
            "/migrations/new-items",
            get(items::new_form).post(items::create),
        )
        .at("/uploads", post(items::upload))
        .at(
            "/tickets/:id/files/:file/import",
            post(items::import_ticket_file),
        )
        .at(
            "/migrations/test-connection",
            post(migrations::test_connection),
        )
        .at("/migrations/:id", get(migration::show))
        .at("/migrations/:id/live", get(migration::live_json))
        .at("/migrations/:id/:action", post(migration::action))
        .at("/settings", get(settings::page).post(settings::save))
        .at("/settings/reset", post(settings::reset))
        .at("/settings/test-email", post(settings::test_email))
        .at(
            "/track",
            get(track_project::sign_in_form).post(track_project::sign_in),
        )
        .at("/track/single", post(track_project::single))
        .at("/track/project", get(track_project::show))
        .at("/track/project/live", get(track_project::live_json))
        .at("/track/project/pause", post(track_project::pause))
        .at("/track/project/resume", post(track_project::resume))
        .at(
            "/track/project/mx-switched",
            post(track_project::mx_switched),
        )
        .at("/track/project/password", post(track_project::new_password))
        .at("/track/project/rows", post(track_project::add_rows))
        .at("/track/project/report.csv", get(track_project::report_csv))
        .at("/track/project/sign-out", post(track_project::sign_out))
        .at("/track/:token", get(track::show))
        .at("/track/:token/mx-switched", post(track::mx_switched))
        .at("/projects", get(projects::index))
        .at(
            "/projects/new",
            get(projects::new_form).post(projects::new_submit),
        )
        .at("/projects/:code", get(projects::show))
        .at("/projects/:code/live", get(projects::live_json))
        .at("/projects/:code/rows", post(projects::add_rows))
        .at("/projects/:code/:action", post(projects::action))
        .at("/request", get(request::show_form).post(request::submit))
        .at("/request/authenticate", post(request::authenticate))
        .at("/tickets", get(tickets::index))
        .at("/tickets/:id", get(tickets::show))
        .at("/tickets/:id/reply", post(tickets::reply))
        .at("/tickets/:id/update", post(tickets::update))
        .at("/tickets/:id/migrations", post(tickets::make))
        .at("/tickets/:id/files/:file", get(tickets::attached))
        .at("/tickets/:id/emails/:message", get(tickets::raw_email))
        .at("/outbox", get(outbox::list))
        .at("/outbox/:id", get(outbox::show))
        .at("/outbox/:id/resend", post(outbox::resend))
}

/// A signed-in staff member. Extracting it from a request without a live session
/// redirects to the sign-in page.
pub struct Staff {
    pub session: Session,
    pub cookie: String,
    pub services: Services,
    pub ip: Option<String>,
    /// The viewer's time zone, as their browser said (UTC until it has).
    pub tz: chrono_tz::Tz,
    flash: Option<Flash>,
}

impl<'a> FromRequest<'a> for Staff {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let to_login = || poem::Error::from_response(Redirect::see_other("/login").into_response());
        let services = req.data::<Services>().cloned().ok_or_else(to_login)?;
        let jar = req.cookie();
        let cookie = jar
            .get(SESSION_COOKIE)
            .map(|c| c.value_str().to_owned())
            .ok_or_else(to_login)?;
        let session = match services.session(&cookie).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(to_login()),
            Err(err) => {
                tracing::error!(error = %err, "Session lookup failed");
                return Err(poem::Error::from_response(error_page(
                    &services,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Ferry is unavailable",
                    "The database did not answer; try again in a moment.",
                )));
            }
        };
        let tz = jar
            .get(TZ_COOKIE)
            .and_then(|c| c.value_str().parse::<chrono_tz::Tz>().ok())
            .unwrap_or(chrono_tz::UTC);
        let flash = jar
            .get(FLASH_COOKIE)
            .and_then(|c| Flash::decode(c.value_str()));
        if flash.is_some() {
            // Removed at the path it was set on: a removal without one applies to the
            // page's folder only, and the message came back on the next pages.
            let mut gone = Cookie::new_with_str(FLASH_COOKIE, "");
            gone.set_path("/");
            gone.make_removal();
            jar.add(gone);
        }
        Ok(Staff {
            session,
            cookie,
            services,
            ip: client_ip(req),
            tz,
            flash,
        })
    }
}

impl Staff {
    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.session.user.id,
            email: self.session.user.email.to_string(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.session.user.role == Role::Admin
    }

    /// The page to answer instead when a form's CSRF token is not this session's.
    pub fn reject_bad_csrf(&self, submitted: &str) -> Option<Response> {
        if constant_time_eq(submitted.as_bytes(), self.session.csrf_token.as_bytes()) {
            None
        } else {
            Some(error_page(
                &self.services,
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Go back, reload the page and submit it again.",
            ))
        }
    }

    /// The page to answer instead of an admin's form: not an admin, or a bad token.
    pub fn reject_unless_admin_form(&self, submitted_csrf: &str) -> Option<Response> {
        self.reject_unless_admin()
            .or_else(|| self.reject_bad_csrf(submitted_csrf))
    }

    /// The page to answer instead when the person is not an admin.
    pub fn reject_unless_admin(&self) -> Option<Response> {
        if self.is_admin() {
            None
        } else {
            Some(error_page(
                &self.services,
                StatusCode::FORBIDDEN,
                "Admins only",
                "Only an admin can manage staff accounts and settings; ask one.",
            ))
        }
    }

    /// The parts of every page: navigation, who is signed in, the CSRF token, a flash.
    pub fn layout(&self, active: &str) -> Layout {
        let mut nav = vec![
            ("Dashboard", "/"),
            ("Tickets", "/tickets"),
            ("Projects", "/projects"),
            ("Migrations", "/migrations"),
            ("New migration", "/migrations/new"),
            ("Schedule", "/schedule"),
            ("Outbox", "/outbox"),
            ("Audit log", "/audit"),
        ];
        if self.is_admin() {
            nav.push(("Staff", "/users"));
            nav.push(("Settings", "/settings"));
        }
        nav.push(("Your account", "/account"));
        Layout {
            nav: nav
                .into_iter()
                .map(|(label, href)| NavItem {
                    label,
                    href,
                    active: href == active,
                })
                .collect(),
            user: LayoutUser {
                name: self.session.user.name.clone(),
                email: self.session.user.email.to_string(),
                role: self.session.user.role.as_str(),
            },
            csrf: self.session.csrf_token.clone(),
            flash: self.flash.clone(),
        }
    }

    /// Renders a page, or an error page when the template fails.
    pub fn render<C: Serialize>(&self, template: &str, context: &C) -> Response {
        match self.services.renderer().page(template, context) {
            Ok(html) => Html(html).into_response(),
            // The whole chain: the template, and what in it failed.
            Err(err) => internal_error(&self.services, &format!("{err:#}")),
        }
    }
}

pub fn internal_error(services: &Services, err: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %err, "Console request failed");
    error_page(
        services,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Ferry could not complete this; the error is in its log.",
    )
}

#[derive(Debug, Serialize)]
pub struct Layout {
    nav: Vec<NavItem>,
    user: LayoutUser,
    csrf: String,
    flash: Option<Flash>,
}

#[derive(Debug, Serialize)]
struct NavItem {
    label: &'static str,
    href: &'static str,
    active: bool,
}

#[derive(Debug, Serialize)]
struct LayoutUser {
    name: String,
    email: String,
    role: &'static str,
}

/// A form whose only field is the CSRF token (buttons that post an action).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// A multipart form read whole: its text fields, and the file of its `file` field.
#[derive(Debug, Default)]
pub struct FileForm {
    text: HashMap<String, String>,
    pub file: Option<(String, Vec<u8>)>,
}

impl FileForm {
    /// A text field's value; empty when the form did not send it.
    pub fn text(&self, name: &str) -> String {
        self.text.get(name).cloned().unwrap_or_default()
    }

    /// Reads the form; a file without a name is called `default_name`.
    pub async fn read(mut multipart: Multipart, default_name: &str) -> Result<Self, String> {
        let mut form = Self::default();
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => return Ok(form),
                Err(err) => {
                    return Err(format!(
                        "the form did not arrive whole ({err}); send it again"
                    ));
                }
            };
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                let file_name = field.file_name().unwrap_or(default_name).to_owned();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| format!("the file did not arrive whole ({e}); send it again"))?;
                form.file = Some((file_name, bytes));
                continue;
            }
            let text = field.text().await.unwrap_or_default();
            form.text.insert(name, text);
        }
    }
}

/// A one-time message shown on the page a form redirects to.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Flash {
    kind: String,
    message: String,
}

impl Flash {
    fn decode(raw: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Redirects after a successful form, with a message for the next page.
pub fn redirect_with_flash(jar: &CookieJar, to: &str, ok: bool, message: &str) -> Response {
    let flash = Flash {
        kind: if ok { "ok" } else { "error" }.into(),
        message: message.into(),
    };
    if let Ok(json) = serde_json::to_vec(&flash) {
        let mut cookie = Cookie::new_with_str(FLASH_COOKIE, URL_SAFE_NO_PAD.encode(json));
        cookie.set_path("/");
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        jar.add(cookie);
    }
    Redirect::see_other(to).into_response()
}

/// The client's address: the peer's, or, when the peer is a trusted proxy
/// (`console.trusted_proxies`), the rightmost address in `console.client_ip_header`
/// that is not itself a trusted proxy. A header from anyone else is ignored, so a
/// client cannot choose the address its failed sign-ins count against.
pub fn client_ip(req: &Request) -> Option<String> {
    let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip())?;
    let Some(services) = req.data::<Services>() else {
        return Some(peer.to_string());
    };
    let console = &services.settings().console;
    if !console.trusted_proxies.contains(&peer) {
        return Some(peer.to_string());
    }
    let forwarded = req
        .headers()
        .get_all(console.client_ip_header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let client = forwarded
        .iter()
        .rev()
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .find(|ip| !console.trusted_proxies.contains(ip));
    Some(client.unwrap_or(peer).to_string())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Formats a time for the console, in UTC (later: the viewer's time zone).
pub fn display_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}
