//! Migrations once requested (the request itself is in `request`): check a server,
//! list, read, cancel and delete, and the facts every migration email tells. The
//! console and the API both call these.

use std::str::FromStr;

use anyhow::Context;

use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::lifecycle::Step;
use super::request::{SERVER_FIELDS, oversized, server_account, server_texts};
use super::{ServiceError, ServiceResult, Services};
use crate::connectors::imap::ConnectError;
use crate::domain::{
    Actor, EmailAddress, Endpoint, ErrorCode, FolderProgress, ImapEndpoint, Migration, MigrationId,
    MigrationKind, MigrationStatus, NewAuditEvent, Pass, ServerAccount, ServerInput,
};
use crate::render::emails::{MigrationFacts, MigrationNews};
use crate::store::{MigrationFilter, StatusChange};

/// Why a server could not be used, as a stable code and a sentence.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionProblem {
    /// dns, tcp, timeout, tls, auth, protocol, private_target.
    pub code: ErrorCode,
    pub message: String,
}

/// A folder as test-connection reports it.
#[derive(Debug, Clone, Serialize)]
pub struct FolderSummary {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
    pub kind: MigrationKind,
}

/// A migration with what the API and the console show of it.
#[derive(Debug, Clone)]
pub struct MigrationDetail {
    pub migration: Migration,
    pub passes: Vec<Pass>,
    pub folders: Vec<FolderProgress>,
}

/// Actions a person may take and the statuses they apply to.
const CANCELLABLE: [MigrationStatus; 6] = [
    MigrationStatus::Pending,
    MigrationStatus::Validating,
    MigrationStatus::Scheduled,
    MigrationStatus::Processing,
    MigrationStatus::WaitingForMx,
    MigrationStatus::Paused,
];

/// The highest page number a list answers.
pub const MAX_PAGE: u64 = 100_000;

impl Services {
    /// Logs in to a server and lists its folders with message counts and sizes.
    pub async fn test_connection(
        &self,
        actor: &Actor,
        input: &ServerInput,
    ) -> ServiceResult<Result<Vec<FolderSummary>, ConnectionProblem>> {
        let limits = &self.settings().limits;
        let too_long = oversized(server_texts(SERVER_FIELDS, input), [], limits);
        if !too_long.is_empty() {
            return Err(ServiceError::Invalid(too_long));
        }
        if let Some(url) = &input.dav_url {
            return self.test_dav_connection(actor, url, input).await;
        }
        let account = server_account("server", input, None).map_err(ServiceError::Invalid)?;
        let password = input
            .password
            .clone()
            .filter(|p| !p.expose_secret().is_empty())
            .ok_or_else(|| ServiceError::field("server.password", "the password is required"))?;
        tracing::info!(actor = %actor, host = %account.host, "Testing a server connection");
        let endpoint = endpoint_of(&account, password);
        let surveyed = crate::sync::probe::survey(&endpoint, &self.reach()).await?;
        Ok(surveyed
            .map(|folders| {
                folders
                    .into_iter()
                    .map(|f| FolderSummary {
                        name: f.name,
                        messages: f.messages,
                        bytes: f.bytes,
                        kind: MigrationKind::Mail,
                    })
                    .collect()
            })
            .map_err(problem))
    }

    /// Logs in to a CardDAV/CalDAV server (discovery from `url`) and lists the
    /// account's address books and calendars with their item counts.
    async fn test_dav_connection(
        &self,
        actor: &Actor,
        url: &str,
        input: &ServerInput,
    ) -> ServiceResult<Result<Vec<FolderSummary>, ConnectionProblem>> {
        use crate::connectors::dav::{self, Holds};
        let limits = &self.settings().limits;
        let too_long = oversized(
            vec![
                ("server.dav_url", Some(url)),
                ("server.username", Some(input.username.as_str())),
            ],
            [],
            limits,
        );
        if !too_long.is_empty() {
            return Err(ServiceError::Invalid(too_long));
        }
        if input.username.trim().is_empty() {
            return Err(ServiceError::field(
                "server.username",
                "the username is required",
            ));
        }
        let password = input
            .password
            .clone()
            .filter(|p| !p.expose_secret().is_empty())
            .ok_or_else(|| ServiceError::field("server.password", "the password is required"))?;
        let endpoint = crate::domain::DavEndpoint {
            url: url.trim().to_owned(),
            username: input.username.trim().to_owned(),
            password,
            verify_tls: true,
        };
        tracing::info!(actor = %actor, url = %endpoint.url, "Testing a DAV server connection");
        let reach = self.reach();
        let mut found = Vec::new();
        for (holds, kind) in [
            (Holds::AddressBooks, MigrationKind::Contacts),
            (Holds::Calendars, MigrationKind::Calendars),
        ] {
            let listed = match dav::connect(&endpoint, holds, &reach).await {
                Ok(connection) => connection.collections(&reach).await,
                Err(err) => Err(err),
            };
            match listed {
                Ok(collections) => found.extend(collections.into_iter().map(|c| FolderSummary {
                    name: c.label(),
                    messages: c.items,
                    bytes: 0,
                    kind,
                })),
                Err(err) => return Ok(Err(problem(err))),
            }
        }
        Ok(Ok(found))
    }

    /// The staff address, when set.
    pub(crate) fn staff_address(&self) -> Option<EmailAddress> {
        self.settings()
            .smtp
            .staff_address
            .as_deref()
            .and_then(|s| EmailAddress::parse("smtp.staff_address", s).ok())
    }

    /// What every migration email may say (never a password).
    pub(crate) fn migration_facts(&self, m: &Migration) -> MigrationFacts {
        let tz = Tz::from_str(&m.time_zone).unwrap_or(chrono_tz::UTC);
        let settings = self.settings();
        MigrationFacts {
            id: m.id,
            status: m.status.as_str().to_owned(),
            source: format!("{} on {}", m.source.username(), m.source.host()),
            destination: format!("{} on {}", m.dest.username(), m.dest.host()),
            window: m.window_start.map(|w| {
                w.with_timezone(&tz)
                    .format("%A %-d %B %Y at %H:%M %Z")
                    .to_string()
            }),
            time_zone: m.time_zone.clone(),
            two_pass: m.two_pass,
            mx_domain: m.mx_domain.clone(),
            mx_hosts: settings.provider.mx_hosts.clone(),
            url: format!("{}/migrations/{}", settings.base_url(), m.id),
            provider_name: settings.provider.name.clone(),
            support_contact: settings.provider.support_contact.clone(),
            for_staff: true,
            customer_copy: false,
        }
    }

    /// The customer's page of `m`: a link with its token, for the customer's emails.
    /// `None` for a migration from before customer pages (or a token that no longer
    /// decrypts): its emails keep linking to the console.
    pub(crate) fn customer_url(&self, m: &Migration) -> Option<String> {
        let token = self.cipher.decrypt(m.customer_token.as_deref()?).ok()?;
        Some(format!(
            "{}/track/{}",
            self.settings().base_url(),
            token.expose_secret()
        ))
    }

    /// One page of migrations (pages count from 0 here; the API's from 1). A page
    /// beyond [`MAX_PAGE`] is a field error, not an offset that overflows.
    pub async fn list_migrations(
        &self,
        filter: &MigrationFilter,
    ) -> ServiceResult<(Vec<Migration>, u64)> {
        if filter.page >= MAX_PAGE {
            return Err(ServiceError::field(
                "page",
                format!("pages go up to {MAX_PAGE}; narrow the list with a status or a search"),
            ));
        }
        Ok(self.store.list_migrations(filter).await?)
    }

    pub(super) async fn load_migration(&self, id: MigrationId) -> ServiceResult<Migration> {
        self.store
            .get_migration(id)
            .await?
            .ok_or(ServiceError::NotFound("migration"))
    }

    pub async fn migration_detail(&self, id: MigrationId) -> ServiceResult<MigrationDetail> {
        let migration = self.load_migration(id).await?;
        Ok(MigrationDetail {
            passes: self.store.migration_passes(id).await?,
            folders: self.store.migration_folders(id).await?,
            migration,
        })
    }

    /// The migration whose customer page link carries `token`, as its page shows it.
    /// An unknown token is `NotFound`, like a migration that does not exist.
    pub async fn customer_view(&self, token: &str) -> ServiceResult<MigrationDetail> {
        let digest = crate::crypto::token_digest(token);
        let m = self
            .store
            .migration_by_customer_token(&digest)
            .await?
            .ok_or(ServiceError::NotFound("migration"))?;
        self.migration_detail(m.id).await
    }

    /// The customer says, on their page, that they have changed the MX records.
    pub async fn customer_mx_switched(&self, token: &str) -> ServiceResult<Migration> {
        let m = self.customer_view(token).await?.migration;
        self.migration_mx_switched(&Actor::Customer, m.id).await
    }

    /// Stops a migration; a pass that is copying in this process stops at once, in
    /// another one at its next look (every second). A worker's step taken at the same
    /// moment does not refuse the stop: it is tried again on the new status.
    pub async fn cancel_migration(
        &self,
        actor: &Actor,
        id: MigrationId,
        reason: Option<String>,
        notify: bool,
    ) -> ServiceResult<Migration> {
        const ATTEMPTS: usize = 5;
        let mut attempt = 1;
        loop {
            match self.cancel_once(actor, id, reason.clone(), notify).await {
                Err(ServiceError::Conflict {
                    code: ErrorCode::StatusChanged,
                    ..
                }) if attempt < ATTEMPTS => attempt += 1,
                done => return done.inspect(|_| self.stop_running(id)),
            }
        }
    }

    async fn cancel_once(
        &self,
        actor: &Actor,
        id: MigrationId,
        reason: Option<String>,
        notify: bool,
    ) -> ServiceResult<Migration> {
        let now = self.now();
        let m = self.load_migration(id).await?;
        if !CANCELLABLE.contains(&m.status) {
            return Err(ServiceError::Conflict {
                code: ErrorCode::NotCancellable,
                message: format!(
                    "The migration is {}; only one in progress can be cancelled.",
                    m.status
                ),
            });
        }
        let step = Step {
            from: m.status,
            to: MigrationStatus::Cancelled,
            change: StatusChange {
                next_work: Some(None),
                // Where it was, for a retry to go back to.
                resume_work: Some(m.resume_work.or(m.next_work)),
                next_run_at: Some(None),
                finished_at: Some(Some(now)),
                paused_status: Some(None),
                ..Default::default()
            },
            action: "migration.cancelled",
            detail: serde_json::json!({
                "from": m.status.as_str(), "reason": reason, "notify_customer": notify,
            }),
            email: Some(MigrationNews::stopped(reason, notify)),
        };
        self.act(actor, &m, step).await
    }

    /// Deletes a migration's record (its passes and checkpoints go with it); refused
    /// while a worker is copying it.
    pub async fn delete_migration(&self, actor: &Actor, id: MigrationId) -> ServiceResult<()> {
        let now = self.now();
        let m = self
            .store
            .get_migration(id)
            .await?
            .ok_or(ServiceError::NotFound("migration"))?;
        let running = |m: &Migration| {
            m.is_running(now)
                || matches!(
                    m.status,
                    MigrationStatus::Processing | MigrationStatus::Validating
                )
        };
        if running(&m) {
            return Err(ServiceError::Conflict {
                code: ErrorCode::MigrationRunning,
                message: "The migration is running; cancel it first.".into(),
            });
        }
        let tx = self.store.begin().await?;
        if !tx.delete_migration(id, now).await? {
            return Err(ServiceError::Conflict {
                code: ErrorCode::MigrationRunning,
                message: "The migration is running; cancel it first.".into(),
            });
        }
        let mut event = NewAuditEvent::new(actor, "migration.deleted");
        event.subject = Some(("migration", id.to_string()));
        event.detail = serde_json::json!({ "status": m.status.as_str() });
        tx.audit(event, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn problem(err: ConnectError) -> ConnectionProblem {
    ConnectionProblem {
        code: err.code(),
        message: err.to_string(),
    }
}

/// The IMAP account of a mail migration's side, with its password.
pub(crate) fn imap_endpoint(
    endpoint: &Endpoint,
    password: SecretString,
) -> anyhow::Result<ImapEndpoint> {
    let account = endpoint
        .imap()
        .with_context(|| format!("{endpoint} is not an IMAP account"))?;
    Ok(endpoint_of(account, password))
}

pub(crate) fn endpoint_of(account: &ServerAccount, password: SecretString) -> ImapEndpoint {
    ImapEndpoint {
        host: account.host.clone(),
        port: account.port,
        security: account.security,
        username: account.username.clone(),
        authuser: account.authuser.clone(),
        password,
        verify_tls: true,
    }
}
