//! What the API does before an endpoint runs, for providers' scripts: a write rate limit
//! per token, and `Idempotency-Key` on every POST.
//!
//! - At most `limits.api_writes_per_minute` writes (POST, PUT, PATCH, DELETE) per token in
//!   any 60 seconds, counted by this process; beyond, 429 `rate_limited` with
//!   `Retry-After` (the seconds until the oldest write leaves the window). 0: no limit.
//! - A POST with `Idempotency-Key: K` (1 to 255 visible ASCII characters) is done once
//!   per token and key: the answer is kept (sealed) for 24 hours, and the same key with
//!   the same request answers it again without doing anything; with another request it
//!   is 422 `idempotency_key_reused`; while the first is still running, 409
//!   `idempotency_key_in_progress`. An answer of 5xx is not kept: the retry runs.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::{Body, Endpoint, IntoResponse, Request, Response};

use super::api::ApiError;
use crate::domain::ErrorCode;
use crate::service::{Idempotency, Services};

const WINDOW: Duration = Duration::from_secs(60);
/// Tokens remembered before the quiet ones are forgotten.
const MAX_TRACKED: usize = 10_000;

/// Each token's writes in the last minute.
#[derive(Debug, Default)]
pub struct WriteLimiter {
    seen: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl WriteLimiter {
    /// Counts a write of `token`; `Err(retry after)` when it is one too many.
    pub fn check(&self, token: &str, limit: u32, now: Instant) -> Result<(), Duration> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() > MAX_TRACKED {
            seen.retain(|_, writes| {
                writes.retain(|t| now.duration_since(*t) < WINDOW);
                !writes.is_empty()
            });
        }
        let writes = seen.entry(token.to_owned()).or_default();
        writes.retain(|t| now.duration_since(*t) < WINDOW);
        if writes.len() >= limit as usize {
            let oldest = writes.front().copied().unwrap_or(now);
            return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        writes.push_back(now);
        Ok(())
    }
}

fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get("Authorization")?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(crate::crypto::token_digest(token.trim()))
}

fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = ApiError::make(code, message);
    match status {
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Invalid(body),
        StatusCode::CONFLICT => ApiError::Conflict(body),
        _ => ApiError::Internal(body),
    }
    .into_response()
}

/// The rate limit, then idempotency, around the API.
pub async fn guard<E: Endpoint>(
    next: E,
    mut req: Request,
    limiter: std::sync::Arc<WriteLimiter>,
) -> poem::Result<Response> {
    let method = req.method().clone();
    let write = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    let (Some(token), Some(services)) = (bearer(&req), req.data::<Services>().cloned()) else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    if write {
        let limit = services.settings().limits.api_writes_per_minute;
        if limit > 0
            && let Err(wait) = limiter.check(&token, limit, Instant::now())
        {
            let seconds = wait.as_secs().max(1);
            let mut body = ApiError::make(
                ErrorCode::RateLimited,
                format!(
                    "This token made {limit} writes in the last minute, its limit (limits.api_writes_per_minute); try again in {seconds} s."
                ),
            );
            body.0.retryable = Some(true);
            return Ok(ApiError::RateLimited(body, seconds).into_response());
        }
    }
    // An upload's body is a file streamed to disk, never held to be fingerprinted: a
    // retried upload is a second upload (the unused one goes with the retention).
    let streamed = req.uri().path() == "/api/v1/uploads";
    let key: Option<String> = req
        .headers()
        .get("Idempotency-Key")
        .filter(|_| method == poem::http::Method::POST && !streamed)
        .map(|key| key.to_str().unwrap_or("\u{0}").to_owned());
    let Some(key) = key else {
        return next.call(req).await.map(IntoResponse::into_response);
    };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            "Idempotency-Key: give 1 to 255 visible ASCII characters, such as a UUID.",
        ));
    }
    let body = req.take_body().into_bytes().await?;
    let fingerprint = crate::crypto::digest_bytes(
        &[
            method.as_str().as_bytes(),
            b" ",
            req.uri().to_string().as_bytes(),
            b"\n",
            &body,
        ]
        .concat(),
    );
    match services.claim_idempotency(&token, &key, &fingerprint).await {
        Ok(Idempotency::New) => {}
        Ok(Idempotency::Replay {
            status,
            content_type,
            body,
        }) => {
            let mut resp = Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                .header("Idempotent-Replayed", "true");
            if let Some(ct) = content_type {
                resp = resp.content_type(ct);
            }
            return Ok(resp.body(body));
        }
        Ok(Idempotency::Reused) => {
            return Ok(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyKeyReused,
                "This Idempotency-Key was used for another request; use a new key for a new request.",
            ));
        }
        Ok(Idempotency::InProgress) => {
            return Ok(error(
                StatusCode::CONFLICT,
                ErrorCode::IdempotencyKeyInProgress,
                "A request with this Idempotency-Key is still running; try again in a moment.",
            ));
        }
        Err(err) => {
            tracing::error!(error = %err, "Idempotency-Key could not be claimed");
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                "Ferry could not complete this; the error is in its log.",
            ));
        }
    }
    req.set_body(Body::from_bytes(body));
    let resp = match next.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = resp.into_parts();
    let bytes = body.into_bytes().await.unwrap_or_default();
    let kept = if status.is_server_error() {
        services.release_idempotency(&token, &key).await
    } else {
        services
            .finish_idempotency(&token, &key, status.as_u16(), content_type, &bytes)
            .await
    };
    if let Err(err) = kept {
        tracing::error!(error = %err, "The answer of an Idempotency-Key could not be kept");
    }
    Ok(Response::from_parts(parts, Body::from_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_limit_per_minute_and_then_a_wait() {
        let limiter = WriteLimiter::default();
        let t0 = Instant::now();
        for n in 0..3 {
            assert!(limiter.check("a", 3, t0 + Duration::from_secs(n)).is_ok());
        }
        let wait = limiter
            .check("a", 3, t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(
            limiter.check("b", 3, t0 + Duration::from_secs(10)).is_ok(),
            "per token"
        );
        assert!(
            limiter.check("a", 3, t0 + Duration::from_secs(61)).is_ok(),
            "the window moves"
        );
    }
}
