//! The REST API under `/api/v1` (poem-openapi), the only place that knows JSON shapes.
//! Every error is a JSON body with a stable snake_case `code` and a sentence.

use std::sync::Arc;

use poem::web::Json as PoemJson;
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request};
use poem_openapi::auth::Bearer;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, OpenApiService, SecurityScheme};

use crate::domain::{ApiToken, ErrorCode, Scope};
use crate::service::{ServiceError, Services};
use crate::store::{AuditFilter, MAX_AUDIT_PAGE};

/// Audit events per page when the caller does not say.
const DEFAULT_AUDIT_PAGE: u64 = 50;

pub type Apis = (
    Api,
    super::api_migrations::MigrationsApi,
    super::api_settings::SettingsApi,
    super::api_tickets::TicketsApi,
    super::api_projects::ProjectsApi,
    super::api_uploads::UploadsApi,
);

pub fn service(base_url: &str) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            Api,
            super::api_migrations::MigrationsApi,
            super::api_settings::SettingsApi,
            super::api_tickets::TicketsApi,
            super::api_projects::ProjectsApi,
            super::api_uploads::UploadsApi,
        ),
        "Ferry",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Ferry's REST API. Authenticate with `Authorization: Bearer <token>`; create a \
             token with `ferry token create`. Errors are JSON objects with a stable `code`. \
             Send `Idempotency-Key: <1 to 255 visible ASCII characters>` on a POST to make a \
             retry safe: the same key and request answer the first answer again (with \
             `Idempotent-Replayed: true`) for 24 hours; the same key with another request is \
             422 `idempotency_key_reused`. A token's writes are limited per minute \
             (`limits.api_writes_per_minute`): beyond, 429 `rate_limited` with `Retry-After`.",
    )
    .server(format!("{}/api/v1", base_url.trim_end_matches('/')))
}

/// Turns poem-openapi's own rejections (no token, unparsable input) into our JSON errors,
/// and every other error answer (unknown path 404, 405 with its `Allow`, 415, 414…)
/// into the same JSON shape: every error of the API has a stable `code`.
pub fn with_error_bodies(api: OpenApiService<Apis, ()>) -> impl Endpoint {
    let routes = Arc::new(spec_routes(&api.spec()));
    let limiter = Arc::new(super::api_guard::WriteLimiter::default());
    let api = api.into_endpoint();
    rejections(api)
        .around(move |next, req| {
            let limiter = limiter.clone();
            super::api_guard::guard(next, req, limiter)
        })
        .around(move |next, req| {
            let routes = routes.clone();
            json_errors(next, req, routes)
        })
}

/// Each path of the OpenAPI document (its segments, `{…}` for a parameter) with the
/// methods it answers.
fn spec_routes(spec: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(spec) else {
        return Vec::new();
    };
    doc["paths"]
        .as_object()
        .map(|paths| {
            paths
                .iter()
                .map(|(path, ops)| {
                    let segments = path.split('/').map(str::to_owned).collect();
                    let methods = ops
                        .as_object()
                        .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                        .unwrap_or_default();
                    (segments, methods)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The methods the document lists for `path`, for a 405's `Allow`: those of the most
/// specific paths that match it (`/migrations/test-connection` before
/// `/migrations/{id}`). An `{id}` is a whole number; `{target}` (`{id}:{action}`) is
/// anything else, so `POST /migrations/12` is a 405 while `POST /migrations/x` is an
/// invalid action.
fn allowed(routes: &[(Vec<String>, Vec<String>)], path: &str) -> Vec<String> {
    let asked: Vec<String> = path
        .split('/')
        .map(|a| a.replace("%3A", ":").replace("%3a", ":"))
        .collect();
    let matching: Vec<(usize, &Vec<String>)> = routes
        .iter()
        .filter(|(segments, _)| {
            segments.len() == asked.len()
                && segments.iter().zip(&asked).all(|(s, a)| {
                    s == a
                        || match s.as_str() {
                            "{id}" => looks_like_id(a),
                            "{target}" => !a.is_empty() && !looks_like_id(a),
                            other => other.starts_with('{') && !a.is_empty(),
                        }
                })
        })
        .map(|(segments, methods)| {
            (
                segments.iter().filter(|s| s.starts_with('{')).count(),
                methods,
            )
        })
        .collect();
    let fewest = matching.iter().map(|(params, _)| *params).min();
    let mut methods: Vec<String> = matching
        .iter()
        .filter(|(params, _)| Some(*params) == fewest)
        .flat_map(|(_, m)| m.iter().cloned())
        .collect();
    methods.sort();
    methods.dedup();
    methods
}

/// A whole number, in range or not (out of range is an invalid id, not an action).
fn looks_like_id(segment: &str) -> bool {
    let digits = segment.strip_prefix('-').unwrap_or(segment);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// 405 with the methods the path answers in `Allow`.
fn method_not_allowed(methods: &[String]) -> poem::Response {
    let mut answer = PoemJson(serde_json::json!({
        "code": ErrorCode::MethodNotAllowed,
        "message": "This path does not answer this method; `Allow` lists those it does.",
    }))
    .with_status(poem::http::StatusCode::METHOD_NOT_ALLOWED)
    .into_response();
    if let Ok(value) = poem::http::HeaderValue::from_str(&methods.join(", ")) {
        answer
            .headers_mut()
            .insert(poem::http::header::ALLOW, value);
    }
    answer
}

async fn json_errors<E: Endpoint>(
    next: E,
    req: Request,
    routes: Arc<Vec<(Vec<String>, Vec<String>)>>,
) -> poem::Result<poem::Response> {
    let routes = routes.as_slice();
    let path = req.uri().path().to_owned();
    // A method the document does not list for the path is a 405, whatever the router
    // would make of it (`POST /migrations/12` is not an action).
    let methods = allowed(routes, &path);
    let method = req.method().as_str().to_owned();
    let listed = |m: &str| methods.iter().any(|x| x == m);
    let answered = listed(&method) || (method == "HEAD" && listed("GET"));
    if !methods.is_empty() && !answered {
        return Ok(method_not_allowed(&methods));
    }
    let resp = match next.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Ok(resp);
    }
    let code = ErrorCode::for_http_status(status.as_u16());
    let message = match code {
        ErrorCode::NotFound => {
            "There is nothing at this path; see /api/v1/openapi.json.".to_owned()
        }
        ErrorCode::MethodNotAllowed => {
            "This path does not answer this method; `Allow` lists those it does.".to_owned()
        }
        ErrorCode::LengthRequired => "Send a Content-Length.".to_owned(),
        ErrorCode::PayloadTooLarge => "The request body is too large.".to_owned(),
        ErrorCode::UriTooLong => "The request's address is too long.".to_owned(),
        ErrorCode::UnsupportedMediaType if path.ends_with("/uploads") => {
            "Send the file with its `Content-Type` (text/vcard, text/calendar, or application/octet-stream) and its name in `X-Filename`, or as multipart/form-data with a part named `file`.".to_owned()
        }
        ErrorCode::UnsupportedMediaType => {
            "Send JSON with `Content-Type: application/json`.".to_owned()
        }
        _ => format!("{}.", status.canonical_reason().unwrap_or("error")),
    };
    let mut answer = PoemJson(serde_json::json!({ "code": code, "message": message }))
        .with_status(status)
        .into_response();
    if status == poem::http::StatusCode::METHOD_NOT_ALLOWED {
        let methods = allowed(routes, &path).join(", ");
        if let Ok(value) = poem::http::HeaderValue::from_str(&methods) {
            answer
                .headers_mut()
                .insert(poem::http::header::ALLOW, value);
        }
    }
    Ok(answer)
}

fn rejections(api: impl Endpoint + 'static) -> impl Endpoint {
    api.catch_error(|_: poem_openapi::error::AuthorizationError| async {
        ApiError::unauthorized(
            ErrorCode::MissingToken,
            "Send an API token as `Authorization: Bearer <token>`.",
        )
        .into_response()
    })
    // A parameter outside its documented range or type is a field error, like any
    // other: 422 naming it.
    .catch_error(|err: poem_openapi::error::ParseParamError| async move {
        let text = err.to_string();
        let field = text.split('`').nth(1).unwrap_or("parameter").to_owned();
        let mut body = ApiError::make(ErrorCode::ValidationFailed, "A parameter is not valid.");
        body.0.fields = Some(vec![FieldErrorBody {
            field,
            message: text,
        }]);
        ApiError::Invalid(body).into_response()
    })
    .catch_error(
        |err: poem_openapi::error::ParseRequestPayloadError| async move {
            ApiError::body(
                poem::http::StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                err.to_string(),
            )
            .into_response()
        },
    )
    // A form whose parts cannot be read (a part's name with a control character, a
    // value that is not text): its content is what is wrong, named as the form.
    .catch_error(|err: poem::error::ParseMultipartError| async move {
        let mut body = ApiError::make(ErrorCode::ValidationFailed, "The form is not valid.");
        body.0.fields = Some(vec![FieldErrorBody {
            field: "form".into(),
            message: format!("the form could not be read ({err}); send its fields and file again"),
        }]);
        ApiError::Invalid(body).into_response()
    })
}

/// An API error's body.
#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct ErrorBody {
    /// Stable, snake_case: branch on this (every value is in docs/api-guide.md).
    pub code: ErrorCode,
    /// A sentence for people.
    pub message: String,
    /// For `insufficient_scope`: the scope the endpoint needs.
    #[oai(skip_serializing_if_is_none)]
    pub required_scope: Option<String>,
    /// For `validation_failed`: one entry per field.
    #[oai(skip_serializing_if_is_none)]
    pub fields: Option<Vec<FieldErrorBody>>,
    /// True when the same request may succeed later (503).
    #[oai(skip_serializing_if_is_none)]
    pub retryable: Option<bool>,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct FieldErrorBody {
    pub field: String,
    pub message: String,
}

#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// 400: the request does not parse.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// 401: no token, or a token that is unknown or revoked.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// 403: the token lacks the scope this endpoint needs.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// 409: the action conflicts with the migration's state, or the mailbox already has
    /// an active migration.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// 405: the path does not answer this method (`method_not_allowed`); `Allow`
    /// lists those it does.
    #[oai(status = 405)]
    MethodNotAllowed(Json<ErrorBody>),
    /// 413: the body is larger than `limits.body_bytes` (`payload_too_large`).
    #[oai(status = 413)]
    TooLarge(Json<ErrorBody>),
    /// 415: a body that is not `application/json` (`unsupported_media_type`).
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// 422: one error per field.
    #[oai(status = 422)]
    Invalid(Json<ErrorBody>),
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// 429: too many writes by this token in the last minute (`rate_limited`);
    /// `Retry-After` says when to try again.
    #[oai(status = 429)]
    RateLimited(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// 503: try again later (`retryable: true`).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl ApiError {
    pub(super) fn make(code: ErrorCode, message: impl Into<String>) -> Json<ErrorBody> {
        Json(ErrorBody {
            code,
            message: message.into(),
            required_scope: None,
            fields: None,
            retryable: None,
        })
    }

    pub fn unauthorized(code: ErrorCode, message: &str) -> Self {
        ApiError::Unauthorized(Self::make(code, message))
    }

    fn body(status: poem::http::StatusCode, code: ErrorCode, message: String) -> Self {
        match status.as_u16() {
            400 => ApiError::BadRequest(Self::make(code, message)),
            _ => ApiError::Internal(Self::make(code, message)),
        }
    }

    fn insufficient_scope(scope: Scope) -> Self {
        let mut body = Self::make(
            ErrorCode::InsufficientScope,
            format!("This token lacks the scope {scope}; create one that has it."),
        );
        body.0.required_scope = Some(scope.as_str().to_owned());
        ApiError::Forbidden(body)
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid(errors) => {
                let mut body =
                    Self::make(ErrorCode::ValidationFailed, "Some fields are not valid.");
                body.0.fields = Some(
                    errors
                        .into_iter()
                        .map(|e| FieldErrorBody {
                            field: e.field.to_owned(),
                            message: e.message,
                        })
                        .collect(),
                );
                ApiError::Invalid(body)
            }
            ServiceError::NotFound(what) => {
                ApiError::NotFound(Self::make(ErrorCode::NotFound, format!("No such {what}.")))
            }
            ServiceError::Forbidden(why) => {
                ApiError::Forbidden(Self::make(ErrorCode::Forbidden, why))
            }
            ServiceError::Conflict { code, message } => {
                ApiError::Conflict(Self::make(code, message))
            }
            ServiceError::Unavailable { code, message } => {
                let mut body = Self::make(code, message);
                body.0.retryable = Some(true);
                ApiError::Unavailable(body)
            }
            ServiceError::TooLarge(message) => {
                ApiError::TooLarge(Self::make(ErrorCode::PayloadTooLarge, message))
            }
            ServiceError::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "API request failed");
                ApiError::Internal(Self::make(
                    ErrorCode::InternalError,
                    "Ferry could not complete the request; the error is in its log.",
                ))
            }
        }
    }
}

/// The services, put in the request's data by the router.
pub(super) fn services(req: &Request) -> Result<&Services, ApiError> {
    req.data::<Services>()
        .ok_or_else(|| ApiError::from(ServiceError::Internal(anyhow::anyhow!("no services"))))
}

/// Who acts through this token, for the audit log.
pub(super) fn actor(auth: &TokenAuth) -> crate::domain::Actor {
    crate::domain::Actor::Token {
        id: auth.0.id,
        name: auth.0.name.clone(),
    }
}

/// An API token, checked against the database.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_token")]
pub struct TokenAuth(pub(super) ApiToken);

async fn check_token(req: &Request, bearer: Bearer) -> poem::Result<ApiToken> {
    let unauthorized = || {
        poem::Error::from_response(
            ApiError::unauthorized(
                ErrorCode::InvalidToken,
                "This API token is unknown or revoked.",
            )
            .into_response(),
        )
    };
    let services = req.data::<Services>().ok_or_else(unauthorized)?;
    match services.authenticate_token(&bearer.token).await {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(unauthorized()),
        Err(err) => Err(poem::Error::from_response(
            ApiError::from(err).into_response(),
        )),
    }
}

impl TokenAuth {
    pub(super) fn require(&self, scope: Scope) -> Result<&ApiToken, ApiError> {
        if self.0.scopes.contains(scope) {
            Ok(&self.0)
        } else {
            Err(ApiError::insufficient_scope(scope))
        }
    }
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct WhoAmI {
    /// The token's name.
    pub name: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct AuditEventBody {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `user:EMAIL`, `token:NAME`, `cli` or `system`.
    pub actor: String,
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct AuditPage {
    pub events: Vec<AuditEventBody>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

pub struct Api;

#[OpenApi]
impl Api {
    /// The token the request was made with, and its scopes.
    #[oai(path = "/whoami", method = "get")]
    async fn whoami(&self, auth: TokenAuth) -> Result<Json<WhoAmI>, ApiError> {
        Ok(Json(WhoAmI {
            name: auth.0.name.clone(),
            scopes: auth
                .0
                .scopes
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        }))
    }

    /// The audit log, newest first. Needs `audit:read`.
    #[oai(path = "/audit-events", method = "get")]
    async fn audit_events(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// Events per page, 1 to 500.
        #[oai(validator(minimum(value = "0"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
        /// Only events older than this id.
        before: Query<Option<i64>>,
        /// Only actions that start with this, e.g. `user.`.
        action: Query<Option<String>>,
    ) -> Result<Json<AuditPage>, ApiError> {
        auth.require(Scope::AuditRead)?;
        let services = req.data::<Services>().ok_or_else(|| {
            ApiError::from(ServiceError::Internal(anyhow::anyhow!("no services")))
        })?;
        let limit = limit
            .0
            .unwrap_or(DEFAULT_AUDIT_PAGE)
            .clamp(1, MAX_AUDIT_PAGE);
        let events = services
            .store()
            .list_audit(&AuditFilter {
                before_id: before.0,
                action_prefix: action.0,
                subject: None,
                limit,
            })
            .await
            .map_err(ServiceError::from)?;
        let next_before = (events.len() as u64 == limit)
            .then(|| events.last().map(|e| e.id))
            .flatten();
        Ok(Json(AuditPage {
            events: events
                .into_iter()
                .map(|e| AuditEventBody {
                    id: e.id,
                    at: e.at,
                    actor: e.actor,
                    action: e.action,
                    subject_type: e.subject_type,
                    subject_id: e.subject_id,
                    detail: e.detail,
                })
                .collect(),
            next_before,
        }))
    }
}
