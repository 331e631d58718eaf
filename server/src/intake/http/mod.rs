//! The HTTP server: the console (server-rendered pages), the REST API under `/api/v1`
//! with its OpenAPI document, `/healthz` and `/metrics`.

mod api;
mod api_migrations;
mod api_settings;
mod console;

use poem::endpoint::make_sync;
use poem::middleware::{CookieJarManager, SetHeader};
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};

use crate::metrics::Metrics;
use crate::service::Services;

/// Every route of the server.
pub fn routes(services: Services, metrics: Metrics) -> impl Endpoint {
    let api = api::service(&services.settings().base_url());
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .nest("/api/v1/openapi.json", spec)
        .nest("/api/v1/docs", docs)
        .nest("/api/v1", api::with_error_bodies(api))
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
        .nest("/", console::routes())
        .with(CookieJarManager::new())
        .with(
            SetHeader::new()
                .overriding("X-Content-Type-Options", "nosniff")
                .overriding("Referrer-Policy", "same-origin")
                .overriding("X-Frame-Options", "DENY"),
        )
        .around(crate::metrics::count_requests)
        .data(services)
        .data(metrics)
}

#[handler]
async fn healthz(req: &Request) -> Response {
    let ok = match req.data::<Services>() {
        Some(services) => services.store.ping().await,
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
    if let Some(services) = req.data::<Services>() {
        metrics.refresh(&services.store).await;
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
    let body = services
        .renderer
        .page(
            "console/error.html",
            &serde_json::json!({"title": title, "message": message}),
        )
        .unwrap_or_else(|_| message.to_owned());
    Html(body).with_status(status).into_response()
}
