//! `/api/v1/migrations`: check a server, request a migration, follow it, cancel or
//! delete it. The JSON shapes are in `api_bodies`; the rules live in the service.

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use secrecy::SecretString;

use super::api::{ApiError, TokenAuth, actor, services};
use super::api_bodies::*;
use crate::domain::{self, EmailAddress, MigrationId, MigrationRequest, MigrationStatus, Scope};
use crate::service::ServiceError;
use crate::store::MigrationFilter;

#[derive(Debug, ApiResponse)]
pub enum TestConnectionResponse {
    /// Logged in; the folders with their counts and sizes.
    #[oai(status = 200)]
    Ok(Json<TestConnectionOk>),
}

#[derive(Debug, ApiResponse)]
pub enum Created {
    #[oai(status = 201)]
    Created(Json<MigrationBody>),
}

#[derive(Debug, ApiResponse)]
pub enum Deleted {
    #[oai(status = 204)]
    NoContent,
}

pub struct MigrationsApi;

#[OpenApi]
impl MigrationsApi {
    /// Logs in to a server and lists its folders with message counts and sizes, or
    /// answers 422 with why it failed: `dns`, `tcp`, `tls`, `auth`, `protocol` or
    /// `private_target`. Needs `migrations:write`.
    #[oai(path = "/migrations/test-connection", method = "post")]
    async fn test_connection(
        &self,
        req: &Request,
        auth: TokenAuth,
        body: Json<ServerBody>,
    ) -> Result<TestConnectionResponse, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        match services
            .test_connection(&actor(&auth), &body.0.input(""))
            .await?
        {
            Ok(folders) => Ok(TestConnectionResponse::Ok(Json(TestConnectionOk {
                success: true,
                folders: folders
                    .into_iter()
                    .map(|f| FolderSummaryBody {
                        name: f.name,
                        messages: f.messages,
                        bytes: f.bytes,
                        kind: f.kind,
                    })
                    .collect(),
            }))),
            Err(problem) => Err(ApiError::Invalid(ApiError::make(
                problem.code,
                problem.message,
            ))),
        }
    }

    /// Requests a migration. 201 with the migration; 422 with one error per field (the
    /// notice rule names the earliest window allowed); 409 `active_migration_exists`;
    /// 503 `migration_capacity_reached` (retryable). Needs `migrations:write`; a
    /// request without a window needs `migrations:override` too.
    #[oai(path = "/migrations", method = "post")]
    async fn create(
        &self,
        req: &Request,
        auth: TokenAuth,
        body: Json<MigrationRequestBody>,
    ) -> Result<Created, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let b = body.0;
        let (window_start, time_zone) = match b.window {
            Some(w) => (w.start, w.time_zone),
            None => (None, None),
        };
        let request = MigrationRequest {
            kind: b.kind.map(|c| c.field("kind")),
            policy: b.policy.map(|c| c.field("policy")),
            source: b.source.input("source"),
            destination: b.destination.input("destination"),
            mode: b.mode.map(|c| c.field("mode")),
            duplicates: b.duplicates.map(|c| c.field("duplicates")),
            delete_source: b.delete_source,
            count_first: b.count_first,
            import_since: given(b.import_since).map(|d| domain::day("import_since", &d)),
            selected_folders: b.selected_folders,
            excluded_folders: b.excluded_folders,
            folder_map: (b.folder_map.iter())
                .map(|m| domain::folder_map("folder_map", m))
                .collect(),
            sync_deletions: b.sync_deletions,
            folder_strategy: b.folder_strategy.map(|c| c.field("folder_strategy")),
            two_pass: b.two_pass,
            mx_domain: b.mx_domain,
            window_start: given(window_start).map(|s| domain::local_time("window.start", &s)),
            time_zone: given(time_zone).map(|tz| domain::time_zone("window.time_zone", &tz)),
            requester_email: Some(EmailAddress::parse("requester_email", &b.requester_email)),
            customer_ref: b.customer_ref,
            ticket: None,
        };
        let may_override = auth.0.scopes.contains(Scope::MigrationsOverride);
        let m = services
            .request_migration(&actor(&auth), may_override, request)
            .await?;
        Ok(Created::Created(Json(migration_body(
            m,
            Vec::new(),
            Vec::new(),
            services.now(),
        ))))
    }

    /// Migrations, newest first. Needs `migrations:read`.
    #[oai(path = "/migrations", method = "get")]
    async fn list(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// Only this status.
        status: Query<Option<String>>,
        /// Part of an address (source, destination or requester).
        search: Query<Option<String>>,
        /// From 1, up to 100000.
        #[oai(validator(minimum(value = "0"), maximum(value = "100000")))]
        page: Query<Option<u64>>,
        /// 1 to 100 (default 20).
        #[oai(validator(minimum(value = "0"), maximum(value = "100")))]
        per_page: Query<Option<u64>>,
    ) -> Result<Json<MigrationPage>, ApiError> {
        auth.require(Scope::MigrationsRead)?;
        let services = services(req)?;
        let status = match status.0.as_deref() {
            None | Some("") => None,
            Some(s) => Some(MigrationStatus::parse(s).ok_or_else(|| {
                ApiError::from(ServiceError::field(
                    "status",
                    format!("{s:?} is not a status"),
                ))
            })?),
        };
        let page = page.0.unwrap_or(1).max(1);
        let per_page = per_page.0.unwrap_or(20).clamp(1, 100);
        let (list, total) = services
            .list_migrations(&MigrationFilter {
                status,
                search: search.0,
                page: page - 1,
                per_page,
                ..Default::default()
            })
            .await?;
        Ok(Json(MigrationPage {
            data: list
                .into_iter()
                .map(|m| migration_body(m, Vec::new(), Vec::new(), services.now()))
                .collect(),
            total,
            page,
            per_page,
        }))
    }

    /// One migration with its passes and per-folder progress. Needs `migrations:read`.
    #[oai(path = "/migrations/:id", method = "get")]
    async fn get(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<MigrationId>,
    ) -> Result<Json<MigrationBody>, ApiError> {
        auth.require(Scope::MigrationsRead)?;
        let services = services(req)?;
        Ok(Json(detail_body(
            services.migration_detail(id.0).await?,
            services.now(),
        )))
    }

    /// Deletes a migration that is not running (cancel it first): 204, or 409
    /// `migration_running`. Needs `migrations:write`.
    #[oai(path = "/migrations/:id", method = "delete")]
    async fn delete(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<MigrationId>,
    ) -> Result<Deleted, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        services(req)?.delete_migration(&actor(&auth), id.0).await?;
        Ok(Deleted::NoContent)
    }

    /// Replaces a migration's stored passwords (after the customer changed one, or
    /// after they were erased); then `:retry`. Not while it runs (409). Needs
    /// `migrations:write`.
    #[oai(path = "/migrations/:id/credentials", method = "post")]
    async fn credentials(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<MigrationId>,
        body: Json<CredentialsBody>,
    ) -> Result<Json<MigrationBody>, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let body = body.0;
        services
            .update_credentials(
                &actor(&auth),
                id.0,
                body.source_password.map(|p| SecretString::from(p.0)),
                body.destination_password.map(|p| SecretString::from(p.0)),
            )
            .await?;
        Ok(Json(detail_body(
            services.migration_detail(id.0).await?,
            services.now(),
        )))
    }

    /// Moves a scheduled migration to a new window, checked like a request's (422 names
    /// the rule and the earliest window); the requester's time zone is kept unless one
    /// is given. No `start` starts it as soon as a slot is free and needs
    /// `migrations:override`. 409 `not_scheduled` once it has started. Needs
    /// `migrations:write`.
    #[oai(path = "/migrations/:id/window", method = "put")]
    async fn reschedule(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<MigrationId>,
        body: Json<WindowBody>,
    ) -> Result<Json<MigrationBody>, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let may_override = auth.0.scopes.contains(Scope::MigrationsOverride);
        services
            .reschedule_migration(
                &actor(&auth),
                id.0,
                may_override,
                given(body.0.start).map(|s| domain::local_time("window.start", &s)),
                given(body.0.time_zone).map(|tz| domain::time_zone("window.time_zone", &tz)),
            )
            .await?;
        Ok(Json(detail_body(
            services.migration_detail(id.0).await?,
            services.now(),
        )))
    }

    /// An action on a migration, `POST /migrations/{id}:{action}`: `cancel` (stops
    /// a pass at once; `?reason=` for the audit log and the customer's email), `retry`
    /// (a failed or cancelled migration, duplicates skipped), `sync` (another delta
    /// pass now). `?notify_customer=` says whether the customer is emailed about it:
    /// by default yes for `cancel`, no for `retry` and `sync` (how a retried migration
    /// ends, or a password or MX change it needs, the customer is always told);
    /// `mx-switched` (the post-MX pass starts after the grace period),
    /// `delete-migrated` (removes from the destination what this migration copied, from
    /// pass `?from_pass=N` on; all passes by default). Answers the migration; 409 when
    /// its status does not allow the action. Needs `migrations:write`.
    #[oai(path = "/migrations/:target", method = "post")]
    async fn action(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// `{id}:{action}`, e.g. `12:cancel`.
        #[oai(validator(pattern = "^[0-9]+:(cancel|retry|sync|mx-switched|delete-migrated)$"))]
        target: Path<String>,
        /// Why, for the audit log (`cancel`).
        reason: Query<Option<String>>,
        /// Whether the customer is emailed (`cancel`: the stop and its reason; `retry`,
        /// `sync`: the passes that follow). Default: true for `cancel`, false otherwise.
        notify_customer: Query<Option<bool>>,
        /// The first pass whose copies `delete-migrated` removes.
        #[oai(validator(minimum(value = "0"), maximum(value = "4294967295")))]
        from_pass: Query<Option<u32>>,
    ) -> Result<Json<MigrationBody>, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let (id, action) = target
            .0
            .split_once(':')
            .and_then(|(id, action)| {
                Some((MigrationId(id.parse::<i64>().ok()?), action.to_owned()))
            })
            .ok_or_else(|| ApiError::from(ServiceError::NotFound("migration action")))?;
        match action.as_str() {
            "cancel" => {
                services
                    .cancel_migration(
                        &actor(&auth),
                        id,
                        reason.0,
                        notify_customer.0.unwrap_or(true),
                    )
                    .await?;
            }
            "retry" => {
                let notify = notify_customer.0.unwrap_or(false);
                services.retry_migration(&actor(&auth), id, notify).await?;
            }
            "sync" => {
                let notify = notify_customer.0.unwrap_or(false);
                services.sync_migration(&actor(&auth), id, notify).await?;
            }
            "mx-switched" => {
                services.migration_mx_switched(&actor(&auth), id).await?;
            }
            "delete-migrated" => {
                services
                    .delete_migrated(&actor(&auth), id, from_pass.0)
                    .await?;
            }
            _ => return Err(ApiError::from(ServiceError::NotFound("migration action"))),
        }
        Ok(Json(detail_body(
            services.migration_detail(id).await?,
            services.now(),
        )))
    }
}
