//! The HTTP server: the console (server-rendered pages), the REST API under `/api/v1`
//! with its OpenAPI document, `/healthz` and `/metrics`.

mod api;
mod api_bodies;
mod api_migrations;
mod api_projects;
mod api_guard;
mod api_settings;
mod api_tickets;
mod api_uploads;
#[macro_use]
mod strict;
mod choice;
mod console;

use poem::endpoint::make_sync;
use poem::middleware::{CatchPanic, CookieJarManager, SetHeader};
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};

use crate::domain::ErrorCode;
use crate::metrics::Metrics;
use crate::service::Services;

/// The console's Content-Security-Policy: everything from Ferry itself, nothing
/// fetched, posted or framed elsewhere. Inline scripts and handlers are still allowed
/// (the pages' small scripts are inline; moving them to files would let this drop
/// `'unsafe-inline'`); what pages show is escaped by minijinja.
const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Every route of the server.
pub fn routes(services: Services, metrics: Metrics) -> impl Endpoint {
    let api = api::service(&services.settings().base_url());
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let routes = Route::new()
        .nest("/api/v1/openapi.json", spec)
        .nest("/api/v1/docs", docs)
        .nest(
            "/api/v1",
            api::with_error_bodies(api)
                .with(SetHeader::new().overriding("Cache-Control", "no-store")),
        )
        .at("/healthz", get(healthz))
        .at("/metrics", get(metrics_endpoint))
        .at(
            "/static/ferry.css",
            get(make_sync(|_| {
                Response::builder()
                    .content_type("text/css; charset=utf-8")
                    .header("Cache-Control", "public, max-age=3600")
                    .body(crate::render::STYLESHEET)
            })),
        )
        .nest(
            "/",
            console::routes().with(
                SetHeader::new()
                    .overriding("Content-Security-Policy", CONSOLE_CSP)
                    .overriding("Cache-Control", "no-store"),
            ),
        );
    guarded(routes, services, metrics)
}

/// The layers every route has: cookies, security headers, a panic answered as a 500
/// with a JSON code, the body limit, request metrics, a span with the request's ID,
/// and the services.
pub fn guarded(
    routes: impl Endpoint + 'static,
    services: Services,
    metrics: Metrics,
) -> impl Endpoint {
    routes
        .with(CookieJarManager::new())
        .with(
            SetHeader::new()
                .overriding("X-Content-Type-Options", "nosniff")
                .overriding("Referrer-Policy", "same-origin")
                .overriding("X-Frame-Options", "DENY"),
        )
        // Inside the counter, so a panic is counted as the 500 it answers.
        .with(CatchPanic::new().with_handler(panic_answer))
        .around(limit_body)
        .around(crate::metrics::count_requests)
        .around(request_span)
        .data(services)
        .data(metrics)
}

/// Runs the request in a span that every log line of its handling carries: a fresh
/// request ID (also sent back as `X-Request-Id`, so a user's report finds its lines),
/// the method and the path (never the query or a header: they may hold secrets).
async fn request_span<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    use tracing::Instrument;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let span = tracing::info_span!(
        "request",
        request = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let mut resp = match next.call(req).instrument(span).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    if let Ok(value) = poem::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("X-Request-Id", value);
    }
    Ok(resp)
}

/// The routes that take a file: their bodies may be `limits.upload_bytes` (and the
/// form around it).
const UPLOAD_PATHS: [&str; 1] = ["/migrations/import"];

/// The routes that take a list of mailboxes as a file: a project's creation and its
/// added rows, in the API, the console and the customer's pages.
fn takes_list(path: &str) -> bool {
    let project_rows = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.ends_with("/migrations") || rest.ends_with("/rows"))
    };
    matches!(
        path,
        "/api/v1/projects" | "/projects/new" | "/request" | "/track/project/rows"
    ) || project_rows("/api/v1/projects/")
        || project_rows("/projects/")
}

/// Refuses a body larger than `limits.body_bytes` (or, for an upload,
/// `limits.upload_bytes`) with 413 before anything reads it: by its Content-Length
/// when it has one, else by reading at most the limit.
async fn limit_body<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let limits = req
        .data::<Services>()
        .map(|s| s.settings().limits.clone())
        .unwrap_or_default();
    let path = req.uri().path();
    // A file to import is streamed to disk by its handler, which counts its bytes
    // against `limits.import_bytes`: refused here by its declared length only.
    if path == "/api/v1/uploads" || path == "/uploads" {
        let declared = req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.import_bytes.saturating_add(64 * 1024)) {
            return Ok(json_error(
                poem::http::StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                &format!(
                    "The file is larger than {} bytes (setting limits.import_bytes).",
                    limits.import_bytes
                ),
            ));
        }
        return next.call(req).await.map(IntoResponse::into_response);
    }
    // A ticket's reply may carry a file too.
    let upload = UPLOAD_PATHS.contains(&path)
        || (path.starts_with("/tickets/") && path.ends_with("/reply"))
        || takes_list(path);
    let limit = if upload {
        limits.upload_bytes.saturating_add(64 * 1024)
    } else {
        limits.body_bytes
    };
    // A person uploading in the console gets a page, a program the API's body.
    let services = (upload && !path.starts_with("/api/"))
        .then(|| req.data::<Services>().cloned())
        .flatten();
    let too_large = |limit: usize| match &services {
        Some(services) => error_page(
            services,
            poem::http::StatusCode::PAYLOAD_TOO_LARGE,
            "File too large",
            &format!(
                "A file may have {} bytes at most; split the list into several files.",
                limits.upload_bytes
            ),
        ),
        _ => too_large(limit),
    };
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => return Ok(too_large(limit)),
        Some(_) => {}
        None => match req.take_body().into_bytes_limit(limit).await {
            Ok(bytes) => req.set_body(bytes),
            Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large(limit)),
            Err(err) => {
                return Ok(json_error(
                    poem::http::StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    &format!("The request body could not be read: {err}"),
                ));
            }
        },
    }
    next.call(req).await.map(IntoResponse::into_response)
}

fn too_large(limit: usize) -> Response {
    json_error(
        poem::http::StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        &format!("The request body is larger than {limit} bytes; send less at once."),
    )
}

/// An error answer with the API's body: a stable `code` and a sentence.
fn json_error(status: poem::http::StatusCode, code: ErrorCode, message: &str) -> Response {
    poem::web::Json(serde_json::json!({ "code": code, "message": message }))
        .with_status(status)
        .into_response()
}

/// What a request whose handler panicked gets: a 500 with a JSON code, never a closed
/// connection. The panic itself is in the log (the panic hook prints it).
fn panic_answer(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("A request handler panicked; answered 500");
    json_error(
        poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InternalError,
        "Ferry could not complete the request; the error is in its log.",
    )
}

#[handler]
async fn healthz(req: &Request) -> Response {
    let ok = match req.data::<Services>() {
        Some(services) => services.store().ping().await,
        None => false,
    };
    let body = serde_json::json!({"status": if ok { "ok" } else { "database_unreachable" }});
    let status = if ok {
        poem::http::StatusCode::OK
    } else {
        poem::http::StatusCode::SERVICE_UNAVAILABLE
    };
    poem::web::Json(body).with_status(status).into_response()
}

#[handler]
async fn metrics_endpoint(req: &Request) -> Response {
    let Some(metrics) = req.data::<Metrics>() else {
        return poem::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(services) = req.data::<Services>()
        && let Some(token) = &services.settings().metrics.token
    {
        use secrecy::ExposeSecret;
        let given = req
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let expected = token.expose_secret();
        let same = given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return json_error(
                poem::http::StatusCode::UNAUTHORIZED,
                ErrorCode::MissingToken,
                "Send the metrics token (metrics.token) as `Authorization: Bearer <token>`.",
            );
        }
    }
    if let Some(services) = req.data::<Services>() {
        metrics.refresh(services.store()).await;
    }
    match metrics.encode() {
        Ok(text) => Response::builder()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(_) => poem::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A full-page error for the console, in the console's look.
pub(crate) fn error_page(
    services: &Services,
    status: poem::http::StatusCode,
    title: &str,
    message: &str,
) -> Response {
    /// The error page's context.
    #[derive(serde::Serialize)]
    struct ErrorPage<'a> {
        title: &'a str,
        message: &'a str,
    }
    let body = services
        .renderer()
        .page("console/error.html", &ErrorPage { title, message })
        .unwrap_or_else(|_| message.to_owned());
    Html(body).with_status(status).into_response()
}
