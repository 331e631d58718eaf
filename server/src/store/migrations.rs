//! Migrations: requested, listed, moved from status to status, purged and deleted
//! (their claims and leases are in `leases`, their passes and folders in `passes`).
//! A status change is a compare-and-set on the status it expects, so a worker and a
//! person acting at the same moment never overwrite each other: the second one learns
//! that the migration moved on.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::migrations;
use super::{Store, StoreError, StoreResult, Tx};
use crate::domain::{
    Endpoint, ErrorCode, Migration, MigrationId, MigrationKind, MigrationOptions, MigrationStatus,
    Security, ServerAccount, Work,
};

/// A migration to insert, its passwords already encrypted.
#[derive(Debug)]
pub struct NewMigration {
    pub status: MigrationStatus,
    pub created_by: String,
    pub requester_email: String,
    pub kind: MigrationKind,
    pub source: Endpoint,
    pub source_secret: String,
    pub dest: Endpoint,
    pub dest_secret: String,
    pub options: MigrationOptions,
    pub two_pass: bool,
    pub mx_domain: String,
    pub window_start: Option<DateTime<Utc>>,
    pub time_zone: String,
    pub next_work: Option<Work>,
    pub resume_work: Option<Work>,
    pub next_run_at: Option<DateTime<Utc>>,
    /// The customer page's token: encrypted, and its digest.
    pub customer_token: (String, String),
    pub customer_ref: Option<String>,
    /// The ticket it is made from.
    pub ticket: Option<crate::domain::TicketId>,
    /// The project it belongs to.
    pub project: Option<crate::domain::ProjectId>,
    /// Inserted paused (a project awaiting approval), to go on in `status` on resume.
    pub paused: bool,
}

/// Which migrations to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct MigrationFilter {
    pub status: Option<MigrationStatus>,
    /// Part of the source or destination username, the requester's email or the
    /// customer's reference.
    pub search: Option<String>,
    /// `Some(None)`: nobody owns it; `Some(Some(id))`: this staff member does.
    pub owner: Option<Option<crate::domain::UserId>>,
    /// Requested in `[from, to)`.
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub page: u64,
    pub per_page: u64,
}

/// The fields a status change may set alongside the status (`Some` sets, to a value
/// or to NULL).
#[derive(Debug, Clone, Default)]
pub struct StatusChange {
    pub next_work: Option<Option<Work>>,
    pub resume_work: Option<Option<Work>>,
    pub next_run_at: Option<Option<DateTime<Utc>>>,
    pub started_at: Option<Option<DateTime<Utc>>>,
    pub finished_at: Option<Option<DateTime<Utc>>>,
    pub mx_switched_at: Option<Option<DateTime<Utc>>>,
    /// A stable code and a sentence.
    pub error: Option<Option<(ErrorCode, String)>>,
    pub options: Option<MigrationOptions>,
    /// A new window (UTC) and the requester's time zone it was given in.
    pub window: Option<(Option<DateTime<Utc>>, String)>,
    /// Whether the progress of the work in hand is emailed to the customer.
    pub notify_customer: Option<bool>,
    /// The status a resume goes back to (`Some(None)` clears it).
    pub paused_status: Option<Option<MigrationStatus>>,
    /// Frees the worker's hold in the same write.
    pub release_lease: bool,
    /// Changes nothing when a worker holds the migration at this instant (it may be
    /// starting the work the change would move).
    pub only_unleased_at: Option<DateTime<Utc>>,
}

/// The key that allows one active migration per destination mailbox and kind (a
/// mailbox's mail and its contacts may move at once).
pub fn dest_key(kind: MigrationKind, dest: &Endpoint) -> String {
    let key = format!("{}|{}", dest.host(), dest.username()).to_lowercase();
    match kind {
        MigrationKind::Mail => key,
        other => format!("{}:{key}", other.as_str()),
    }
}

/// A stored endpoint: the JSON of `domain::Endpoint`, or on rows from before kinds
/// the IMAP account of the `source_*`/`dest_*` columns.
fn endpoint(
    json: Option<&str>,
    legacy: impl FnOnce() -> StoreResult<ServerAccount>,
) -> StoreResult<Endpoint> {
    match json {
        Some(json) => {
            serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("endpoint: {e}")))
        }
        None => legacy().map(Endpoint::Imap),
    }
}

/// The columns every endpoint fills: its host and username (what the per-server
/// limits and lists key on), and for IMAP its port, security and admin login.
struct EndpointColumns {
    host: String,
    port: i32,
    security: String,
    username: String,
    authuser: Option<String>,
    json: String,
}

fn endpoint_columns(e: &Endpoint) -> StoreResult<EndpointColumns> {
    let json = serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (port, security, authuser) = match e {
        Endpoint::Imap(a) => (
            i32::from(a.port),
            a.security.as_str().to_owned(),
            a.authuser.clone(),
        ),
        Endpoint::Dav(_) | Endpoint::File(_) => (0, String::new(), None),
    };
    Ok(EndpointColumns {
        host: e.host().to_owned(),
        port,
        security,
        username: e.username().to_owned(),
        authuser,
        json,
    })
}

fn account(
    host: String,
    port: i32,
    security: &str,
    username: String,
    authuser: Option<String>,
) -> StoreResult<ServerAccount> {
    Ok(ServerAccount {
        host,
        port: u16::try_from(port).map_err(|_| StoreError::Corrupt(format!("port {port}")))?,
        security: security
            .parse::<Security>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        username,
        authuser,
    })
}

fn work(raw: Option<String>) -> StoreResult<Option<Work>> {
    raw.map(|w| w.parse::<Work>().map_err(StoreError::Corrupt))
        .transpose()
}

pub(super) fn migration_from(row: migrations::Model) -> StoreResult<Migration> {
    let status = MigrationStatus::parse(&row.status).ok_or_else(|| {
        StoreError::Corrupt(format!("migration {}: status {:?}", row.id, row.status))
    })?;
    let options: MigrationOptions = serde_json::from_str(&row.options)
        .map_err(|e| StoreError::Corrupt(format!("migration {}: options: {e}", row.id)))?;
    Ok(Migration {
        id: MigrationId(row.id),
        status,
        created_at: row.created_at,
        updated_at: row.updated_at,
        created_by: row.created_by,
        requester_email: row.requester_email,
        kind: row.kind.parse().map_err(|_| {
            StoreError::Corrupt(format!("migration {}: kind {:?}", row.id, row.kind))
        })?,
        source: endpoint(row.source_endpoint.as_deref(), || {
            account(
                row.source_host,
                row.source_port,
                &row.source_security,
                row.source_username,
                row.source_authuser,
            )
        })?,
        dest: endpoint(row.dest_endpoint.as_deref(), || {
            account(
                row.dest_host,
                row.dest_port,
                &row.dest_security,
                row.dest_username,
                row.dest_authuser,
            )
        })?,
        options,
        two_pass: row.two_pass,
        mx_domain: row.mx_domain,
        window_start: row.window_start,
        time_zone: row.time_zone,
        next_work: work(row.next_work)?,
        resume_work: work(row.resume_work)?,
        next_run_at: row.next_run_at,
        mx_switched_at: row.mx_switched_at,
        mx_checked_at: row.mx_checked_at,
        mx_answer: row.mx_answer,
        lease_owner: row.lease_owner,
        lease_until: row.lease_until,
        error_code: row
            .error_code
            .map(|c| c.parse::<ErrorCode>())
            .transpose()
            .map_err(StoreError::Corrupt)?,
        error_message: row.error_message,
        started_at: row.started_at,
        finished_at: row.finished_at,
        credentials_purged_at: row.credentials_purged_at,
        customer_token: row.customer_token,
        notify_customer: row.notify_customer,
        customer_ref: row.customer_ref,
        owner: row.owner_id.map(crate::domain::UserId),
        ticket: row.ticket_id.map(crate::domain::TicketId),
        project: row.project_id.map(crate::domain::ProjectId),
        paused_status: row
            .paused_status
            .map(|s| {
                MigrationStatus::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown paused status {s:?}")))
            })
            .transpose()?,
    })
}

impl Store {
    pub async fn get_migration(&self, id: MigrationId) -> StoreResult<Option<Migration>> {
        migrations::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(migration_from)
            .transpose()
    }

    /// A page of migrations and the number that match.
    /// The migration whose customer page token has this digest.
    pub async fn migration_by_customer_token(
        &self,
        digest: &str,
    ) -> StoreResult<Option<Migration>> {
        migrations::Entity::find()
            .filter(migrations::Column::CustomerTokenDigest.eq(digest))
            .one(&self.db)
            .await?
            .map(migration_from)
            .transpose()
    }

    pub async fn list_migrations(
        &self,
        filter: &MigrationFilter,
    ) -> StoreResult<(Vec<Migration>, u64)> {
        let mut query = migrations::Entity::find().order_by_desc(migrations::Column::Id);
        if let Some(status) = filter.status {
            query = query.filter(migrations::Column::Status.eq(status.as_str()));
        }
        if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
            let search = search.trim();
            query = query.filter(
                Condition::any()
                    .add(migrations::Column::SourceUsername.contains(search))
                    .add(migrations::Column::DestUsername.contains(search))
                    .add(migrations::Column::RequesterEmail.contains(search))
                    .add(migrations::Column::CustomerRef.contains(search)),
            );
        }
        match filter.owner {
            Some(Some(owner)) => query = query.filter(migrations::Column::OwnerId.eq(owner)),
            Some(None) => query = query.filter(migrations::Column::OwnerId.is_null()),
            None => {}
        }
        if let Some(from) = filter.created_from {
            query = query.filter(migrations::Column::CreatedAt.gte(from));
        }
        if let Some(to) = filter.created_to {
            query = query.filter(migrations::Column::CreatedAt.lt(to));
        }
        let per_page = filter.per_page.clamp(1, 100);
        let paginator = query.paginate(&self.db, per_page);
        let total = paginator.num_items().await?;
        let rows = paginator.fetch_page(filter.page).await?;
        let list = rows
            .into_iter()
            .map(migration_from)
            .collect::<StoreResult<_>>()?;
        Ok((list, total))
    }

    /// The migrations made from a ticket, oldest first.
    pub async fn migrations_of_ticket(
        &self,
        ticket: crate::domain::TicketId,
    ) -> StoreResult<Vec<Migration>> {
        migrations::Entity::find()
            .filter(migrations::Column::TicketId.eq(ticket.0))
            .order_by_asc(migrations::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(migration_from)
            .collect()
    }

    /// The encrypted passwords (source, destination), when not purged.
    pub async fn migration_secrets(
        &self,
        id: MigrationId,
    ) -> StoreResult<(Option<String>, Option<String>)> {
        let row = migrations::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound("migration"))?;
        Ok((row.source_secret, row.dest_secret))
    }

    /// Of the destination mailboxes `keys` (`dest_key`), those a migration is moving
    /// now or has work waiting for (the rule `Tx::mailbox_busy` keeps), asked in chunks.
    pub async fn busy_mailboxes(
        &self,
        keys: &[String],
    ) -> StoreResult<std::collections::HashSet<String>> {
        let mut busy = std::collections::HashSet::new();
        for chunk in keys.chunks(500) {
            let rows = migrations::Entity::find()
                .filter(migrations::Column::DestKey.is_in(chunk.iter().cloned()))
                .filter(
                    Condition::any()
                        .add(migrations::Column::Status.is_in(MigrationStatus::active()))
                        .add(migrations::Column::NextWork.is_not_null()),
                )
                .all(&self.db)
                .await?;
            busy.extend(rows.into_iter().map(|row| row.dest_key));
        }
        Ok(busy)
    }

    /// Migrations with work due between `from` and `until`, soonest first.
    pub async fn upcoming_work(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<Migration>> {
        migrations::Entity::find()
            .filter(migrations::Column::NextWork.is_not_null())
            .filter(migrations::Column::NextRunAt.gte(from))
            .filter(migrations::Column::NextRunAt.lt(until))
            .order_by_asc(migrations::Column::NextRunAt)
            .limit(500)
            .all(&self.db)
            .await?
            .into_iter()
            .map(migration_from)
            .collect()
    }

    /// Migrations waiting for their domain's MX that nobody has marked switched.
    pub async fn migrations_watching_mx(&self) -> StoreResult<Vec<Migration>> {
        migrations::Entity::find()
            .filter(migrations::Column::Status.eq(MigrationStatus::WaitingForMx.as_str()))
            .filter(migrations::Column::MxSwitchedAt.is_null())
            .all(&self.db)
            .await?
            .into_iter()
            .map(migration_from)
            .collect()
    }

    /// Records what an MX check saw.
    pub async fn record_mx_check(
        &self,
        id: MigrationId,
        answer: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        migrations::Entity::update_many()
            .col_expr(migrations::Column::MxCheckedAt, Expr::value(now))
            .col_expr(migrations::Column::MxAnswer, Expr::value(answer))
            .filter(migrations::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Finished migrations whose passwords are still stored and finished before `before`.
    pub async fn migrations_to_purge(
        &self,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<MigrationId>> {
        Ok(migrations::Entity::find()
            .filter(migrations::Column::Status.is_not_in(MigrationStatus::active()))
            .filter(migrations::Column::FinishedAt.lt(before))
            .filter(migrations::Column::CredentialsPurgedAt.is_null())
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| MigrationId(m.id))
            .collect())
    }
}

impl Tx {
    pub async fn insert_migration(
        &self,
        new: NewMigration,
        now: DateTime<Utc>,
    ) -> StoreResult<Migration> {
        let options =
            serde_json::to_string(&new.options).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let (source, dest) = (endpoint_columns(&new.source)?, endpoint_columns(&new.dest)?);
        let row = migrations::ActiveModel {
            status: Set(if new.paused {
                MigrationStatus::Paused.as_str().to_owned()
            } else {
                new.status.as_str().to_owned()
            }),
            paused_status: Set(new.paused.then(|| new.status.as_str().to_owned())),
            project_id: Set(new.project.map(|p| p.0)),
            created_at: Set(now),
            updated_at: Set(now),
            created_by: Set(new.created_by),
            requester_email: Set(new.requester_email),
            kind: Set(new.kind.as_str().to_owned()),
            source_host: Set(source.host),
            source_port: Set(source.port),
            source_security: Set(source.security),
            source_username: Set(source.username),
            source_authuser: Set(source.authuser),
            source_endpoint: Set(Some(source.json)),
            source_secret: Set(Some(new.source_secret)),
            dest_key: Set(dest_key(new.kind, &new.dest)),
            dest_host: Set(dest.host),
            dest_port: Set(dest.port),
            dest_security: Set(dest.security),
            dest_username: Set(dest.username),
            dest_authuser: Set(dest.authuser),
            dest_endpoint: Set(Some(dest.json)),
            dest_secret: Set(Some(new.dest_secret)),
            options: Set(options),
            two_pass: Set(new.two_pass),
            mx_domain: Set(new.mx_domain),
            window_start: Set(new.window_start),
            time_zone: Set(new.time_zone),
            next_work: Set(new.next_work.map(|w| w.to_string())),
            resume_work: Set(new.resume_work.map(|w| w.to_string())),
            next_run_at: Set(new.next_run_at),
            customer_token: Set(Some(new.customer_token.0)),
            customer_token_digest: Set(Some(new.customer_token.1)),
            notify_customer: Set(true),
            customer_ref: Set(new.customer_ref),
            ticket_id: Set(new.ticket.map(|t| t.0)),
            ..Default::default()
        }
        .insert(&self.inner)
        .await
        .map_err(super::active_conflict_or)?;
        migration_from(row)
    }

    /// Takes the admission lock, held until this transaction ends, and counts the
    /// active migrations: a capacity check made with this count cannot be overtaken
    /// by a concurrent admission (PostgreSQL queues on the lock's row, SQLite on its
    /// write lock, which the lock's UPDATE takes first).
    pub async fn lock_admission_and_count_active(&self) -> StoreResult<u64> {
        self.inner
            .execute_unprepared(
                "UPDATE locks SET taken_at = taken_at + 1 WHERE name = 'migration_admission'",
            )
            .await?;
        let n = migrations::Entity::find()
            .filter(migrations::Column::Status.is_in(MigrationStatus::active()))
            .count(&self.inner)
            .await?;
        Ok(n)
    }

    /// Another migration of the destination mailbox `key` (`dest_key`) that is active
    /// or has work waiting (a synchronisation pass of a completed one), besides
    /// `except`. Asked under the admission lock, so that a request and a sync of a
    /// completed migration never both copy into one mailbox.
    pub async fn mailbox_busy(
        &self,
        key: &str,
        except: Option<MigrationId>,
    ) -> StoreResult<Option<MigrationId>> {
        let mut query = migrations::Entity::find()
            .filter(migrations::Column::DestKey.eq(key))
            .filter(
                Condition::any()
                    .add(migrations::Column::Status.is_in(MigrationStatus::active()))
                    .add(migrations::Column::NextWork.is_not_null()),
            );
        if let Some(id) = except {
            query = query.filter(migrations::Column::Id.ne(id));
        }
        Ok(query.one(&self.inner).await?.map(|row| MigrationId(row.id)))
    }

    /// Moves a migration from `from` to `to` with the changes given; false when it was
    /// no longer in `from` (someone else moved it first).
    pub async fn change_migration_status(
        &self,
        id: MigrationId,
        from: MigrationStatus,
        to: MigrationStatus,
        change: StatusChange,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut update = migrations::Entity::update_many()
            .col_expr(migrations::Column::Status, Expr::value(to.as_str()))
            .col_expr(migrations::Column::UpdatedAt, Expr::value(now));
        if let Some(work) = change.next_work {
            update = update.col_expr(
                migrations::Column::NextWork,
                Expr::value(work.map(|w| w.to_string())),
            );
        }
        if let Some(at) = change.next_run_at {
            update = update.col_expr(migrations::Column::NextRunAt, Expr::value(at));
        }
        if let Some(work) = change.resume_work {
            update = update.col_expr(
                migrations::Column::ResumeWork,
                Expr::value(work.map(|w| w.to_string())),
            );
        }
        if let Some(at) = change.started_at {
            update = update.col_expr(migrations::Column::StartedAt, Expr::value(at));
        }
        if let Some(at) = change.finished_at {
            update = update.col_expr(migrations::Column::FinishedAt, Expr::value(at));
        }
        if let Some(at) = change.mx_switched_at {
            update = update.col_expr(migrations::Column::MxSwitchedAt, Expr::value(at));
        }
        if let Some(error) = change.error {
            let (code, message) = error.unzip();
            let code = code.map(ErrorCode::as_str);
            update = update
                .col_expr(migrations::Column::ErrorCode, Expr::value(code))
                .col_expr(migrations::Column::ErrorMessage, Expr::value(message));
        }
        if let Some(options) = change.options {
            let options =
                serde_json::to_string(&options).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            update = update.col_expr(migrations::Column::Options, Expr::value(options));
        }
        if let Some((window_start, time_zone)) = change.window {
            update = update
                .col_expr(migrations::Column::WindowStart, Expr::value(window_start))
                .col_expr(migrations::Column::TimeZone, Expr::value(time_zone));
        }
        if let Some(status) = change.paused_status {
            update = update.col_expr(
                migrations::Column::PausedStatus,
                Expr::value(status.map(MigrationStatus::as_str)),
            );
        }
        if let Some(notify) = change.notify_customer {
            update = update.col_expr(migrations::Column::NotifyCustomer, Expr::value(notify));
        }
        if let Some(at) = change.only_unleased_at {
            update = update.filter(super::leases::lease_free(at));
        }
        if change.release_lease {
            update = super::leases::without_lease(update);
        }
        let res = update
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::Status.eq(from.as_str()))
            .exec(&self.inner)
            .await
            .map_err(super::active_conflict_or)?;
        Ok(res.rows_affected == 1)
    }

    /// Sets who owns a migration and the customer's reference.
    pub async fn assign_migration(
        &self,
        id: MigrationId,
        owner: Option<crate::domain::UserId>,
        customer_ref: Option<String>,
    ) -> StoreResult<()> {
        migrations::Entity::update_many()
            .col_expr(migrations::Column::OwnerId, Expr::value(owner.map(|o| o.0)))
            .col_expr(migrations::Column::CustomerRef, Expr::value(customer_ref))
            .filter(migrations::Column::Id.eq(id))
            .exec(&self.inner)
            .await?;
        Ok(())
    }

    /// The keys of the last news sent about `id` and of the last the customer got, as
    /// stored now (the caller's copy of the migration may be older than its last email).
    pub async fn news_of(&self, id: MigrationId) -> StoreResult<(Option<String>, Option<String>)> {
        Ok(migrations::Entity::find_by_id(id)
            .one(&self.inner)
            .await?
            .map(|row| (row.last_news, row.customer_told))
            .unwrap_or_default())
    }

    /// Records that an email with news `key` was queued about `id`, and whether the
    /// customer got it.
    pub async fn record_news(
        &self,
        id: MigrationId,
        key: &str,
        to_customer: bool,
    ) -> StoreResult<()> {
        let mut update = migrations::Entity::update_many()
            .col_expr(migrations::Column::LastNews, Expr::value(key));
        if to_customer {
            update = update.col_expr(migrations::Column::CustomerTold, Expr::value(key));
        }
        update
            .filter(migrations::Column::Id.eq(id))
            .exec(&self.inner)
            .await?;
        Ok(())
    }

    /// Replaces the stored (encrypted) passwords given; with both stored again, the
    /// migration is no longer "purged".
    pub async fn set_migration_secrets(
        &self,
        id: MigrationId,
        source: Option<String>,
        dest: Option<String>,
    ) -> StoreResult<()> {
        let mut update = migrations::Entity::update_many();
        if let Some(s) = source {
            update = update.col_expr(migrations::Column::SourceSecret, Expr::value(s));
        }
        if let Some(d) = dest {
            update = update.col_expr(migrations::Column::DestSecret, Expr::value(d));
        }
        update
            .filter(migrations::Column::Id.eq(id))
            .exec(&self.inner)
            .await?;
        migrations::Entity::update_many()
            .col_expr(
                migrations::Column::CredentialsPurgedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::SourceSecret.is_not_null())
            .filter(migrations::Column::DestSecret.is_not_null())
            .exec(&self.inner)
            .await?;
        Ok(())
    }

    /// Erases a finished migration's stored passwords.
    pub async fn purge_credentials(
        &self,
        id: MigrationId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let res = migrations::Entity::update_many()
            .col_expr(
                migrations::Column::SourceSecret,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                migrations::Column::DestSecret,
                Expr::value(Option::<String>::None),
            )
            .col_expr(migrations::Column::CredentialsPurgedAt, Expr::value(now))
            .filter(migrations::Column::Id.eq(id))
            .filter(migrations::Column::CredentialsPurgedAt.is_null())
            .exec(&self.inner)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Deletes a migration that no worker holds; false when one does.
    pub async fn delete_migration(&self, id: MigrationId, now: DateTime<Utc>) -> StoreResult<bool> {
        let res = migrations::Entity::delete_many()
            .filter(migrations::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(migrations::Column::LeaseUntil.is_null())
                    .add(migrations::Column::LeaseUntil.lt(now)),
            )
            .exec(&self.inner)
            .await?;
        Ok(res.rows_affected == 1)
    }
}
