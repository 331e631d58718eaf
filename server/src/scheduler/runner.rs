//! What a worker does with a migration it holds: validate the credentials, run a pass
//! through the engine (`pass.rs`), remove migrated messages (`delete.rs`). Each outcome
//! is a status change by compare-and-set, written with its audit event and its email in
//! one transaction (`Services::write_step`).
//!
//! A worker may die at any instruction: the row keeps its work (`next_work`) until the
//! outcome is written, the lease runs out, and the next worker resumes the same pass
//! from the checkpoints in the folder rows.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::progress::{DbCheckpoints, LeaseLost};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::connectors::imap::ConnectError;
use crate::connectors::net::{Pulse, Reach};
use crate::crypto::Cipher;
use crate::domain::{
    Actor, DavEndpoint, Endpoint, ErrorCode, ImapEndpoint, Migration, MigrationKind,
    MigrationStatus, PassKind, Work,
};
use crate::notify::Dispatcher;
use crate::render::emails::MigrationNews;
use crate::service::{Services, Step, imap_endpoint};
use crate::store::{StatusChange, Store};
use crate::sync::items::{ItemsJob, ItemsSource};
use crate::sync::mail::Side;
use secrecy::SecretString;

/// Who the worker is in the audit trail.
pub(super) const WORKER: Actor = Actor::System;

/// How a piece of work ended, for the scheduler's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkOutcome {
    Done,
    /// Stopped because the migration was cancelled or the lease was lost.
    Stopped,
}

/// A failure worth its own email: which side refused which account.
pub(super) struct Refused {
    pub side: &'static str,
    pub account: String,
    pub error: String,
}

/// The worker's side of the services: what it reads and writes while it holds a
/// migration. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Runner {
    services: Services,
}

impl Runner {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    pub(super) fn services(&self) -> &Services {
        &self.services
    }

    pub(super) fn store(&self) -> &Store {
        self.services.store()
    }

    pub(super) fn cipher(&self) -> &Arc<Cipher> {
        self.services.cipher()
    }

    pub(super) fn dispatcher(&self) -> &Dispatcher {
        self.services.dispatcher()
    }

    pub(super) fn settings(&self) -> Arc<Settings> {
        self.services.settings()
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.services.now()
    }

    pub(super) fn clock(&self) -> &SharedClock {
        self.services.clock()
    }

    /// The migration's checkpoints, written only while `holder` holds its lease.
    pub(super) fn checkpoints(&self, m: &Migration, holder: &str) -> DbCheckpoints {
        DbCheckpoints {
            store: self.store().clone(),
            migration_id: m.id,
            holder: holder.to_owned(),
            clock: self.clock().clone(),
        }
    }

    pub(super) fn reach(&self) -> Reach {
        self.services.reach()
    }

    pub(super) async fn write_step(
        &self,
        tx: &crate::store::Tx,
        m: &Migration,
        step: Step,
        now: chrono::DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.services.write_step(tx, &WORKER, m, step, now).await
    }

    /// Does the work `m` waits for; the caller holds its lease as `owner` and cancels
    /// `stop` when the migration is cancelled or the lease is lost.
    pub async fn run_work(
        &self,
        m: Migration,
        owner: &str,
        stop: CancellationToken,
        pulse: &Pulse,
    ) -> anyhow::Result<WorkOutcome> {
        let Some(work) = m.next_work else {
            self.store().release_lease(m.id, owner).await?;
            return Ok(WorkOutcome::Done);
        };
        let id = m.id;
        tracing::info!(migration = %id, %work, status = %m.status, "Starting work");
        if m.status == MigrationStatus::Paused {
            // Paused between the claim's look and its lease: the work waits, kept.
            self.store().release_lease(id, owner).await?;
            return Ok(WorkOutcome::Stopped);
        }
        if !work_fits(work, m.status) {
            // Work left behind by a status change (never expected): dropped, not
            // retried forever.
            tracing::warn!(migration = %id, %work, status = %m.status, "Work does not fit the status; dropped");
            self.work_done(
                &m,
                "migration.work_dropped",
                json!({ "work": work.to_string() }),
            )
            .await?;
            return Ok(WorkOutcome::Done);
        }
        let outcome = match work {
            Work::Validate => self.validate(m, stop, pulse).await,
            Work::Pass(kind) => self.run_pass(m, kind, owner, stop, pulse).await,
            Work::DeleteMigrated { from_pass } => {
                self.delete_migrated_now(m, from_pass, owner, pulse).await
            }
        };
        // Another worker holds the migration now and goes on from the checkpoints.
        let outcome = match outcome {
            Err(err) if LeaseLost::caused(&err) => {
                tracing::warn!(migration = %id, "Lease lost mid-work; stopping");
                Ok(WorkOutcome::Stopped)
            }
            other => other,
        };
        // Done or stopped: the lease goes (an outcome may have released it already).
        // After an error of Ferry's own it is kept until it runs out, which spaces the
        // next attempt.
        if outcome.is_ok()
            && let Err(err) = self.store().release_lease(id, owner).await
        {
            tracing::warn!(migration = %id, error = %err, "Failed to release a lease; it runs out by itself");
        }
        outcome
    }
    /// Clears `m`'s work and lease without changing its status, audited as `action`.
    pub(super) async fn work_done(
        &self,
        m: &Migration,
        action: &'static str,
        detail: Value,
    ) -> anyhow::Result<()> {
        let now = self.now();
        let tx = self.store().begin().await?;
        let step = Step {
            from: m.status,
            to: m.status,
            change: StatusChange {
                next_work: Some(None),
                next_run_at: Some(None),
                release_lease: true,
                ..Default::default()
            },
            action,
            detail,
            email: None,
        };
        if self.write_step(&tx, m, step, now).await? {
            tx.commit().await?;
        }
        Ok(())
    }
    /// The job of a contacts or calendars pass (its sides with their passwords, a
    /// file's text): `Ok(None)` once the passwords are erased, `Err` with the code and
    /// the sentence when an uploaded file cannot be read.
    pub(super) async fn items_job(
        &self,
        m: &Migration,
        pass: u32,
        pulse: &Pulse,
    ) -> anyhow::Result<Result<Option<ItemsJob>, (ErrorCode, String)>> {
        let (Some(src), Some(dst)) = self.store().migration_secrets(m.id).await? else {
            return Ok(Ok(None));
        };
        let dav = |e: &Endpoint, password: SecretString| match e {
            Endpoint::Dav(d) => Some(DavEndpoint {
                url: d.url.clone(),
                username: d.username.clone(),
                password,
                verify_tls: true,
            }),
            _ => None,
        };
        let Some(dest) = dav(&m.dest, self.cipher().decrypt(&dst)?) else {
            anyhow::bail!("migration {} has no CardDAV/CalDAV destination", m.id);
        };
        let source = match &m.source {
            Endpoint::File(file) => {
                let upload = self.store().get_upload(file.upload).await?.map(|(u, _)| u);
                let text = match upload {
                    Some(u) => self.services.read_upload(&u).await,
                    None => Err(anyhow::anyhow!(
                        "the uploaded file {} is gone; upload it again",
                        file.name
                    )),
                };
                match text {
                    Ok(text) => ItemsSource::File {
                        name: file.name.clone(),
                        text,
                    },
                    Err(err) => return Ok(Err((ErrorCode::CopyFailed, format!("{err:#}")))),
                }
            }
            other => match dav(other, self.cipher().decrypt(&src)?) {
                Some(d) => ItemsSource::Dav(d),
                None => anyhow::bail!("migration {} has no source Ferry reads contacts from", m.id),
            },
        };
        Ok(Ok(Some(ItemsJob {
            kind: m.kind,
            source,
            dest,
            policy: m.options.policy,
            delete_source: m.options.delete_source,
            pass,
            migration: m.id.to_string(),
            reach: self.reach().with_pulse(pulse),
            clock: self.clock().clone(),
        })))
    }

    /// Both sides with their passwords, or `None` once the passwords are erased.
    pub(super) async fn endpoints(
        &self,
        m: &Migration,
    ) -> anyhow::Result<Option<(ImapEndpoint, ImapEndpoint)>> {
        let (Some(src), Some(dst)) = self.store().migration_secrets(m.id).await? else {
            return Ok(None);
        };
        Ok(Some((
            imap_endpoint(&m.source, self.cipher().decrypt(&src)?)?,
            imap_endpoint(&m.dest, self.cipher().decrypt(&dst)?)?,
        )))
    }
    pub(super) async fn validate(
        &self,
        m: Migration,
        stop: CancellationToken,
        pulse: &Pulse,
    ) -> anyhow::Result<WorkOutcome> {
        let now = self.now();
        if m.status == MigrationStatus::Pending {
            let tx = self.store().begin().await?;
            let step = Step {
                from: MigrationStatus::Pending,
                to: MigrationStatus::Validating,
                change: StatusChange::default(),
                action: "migration.validating",
                detail: json!({}),
                email: None,
            };
            if !self.write_step(&tx, &m, step, now).await? {
                return Ok(WorkOutcome::Stopped);
            }
            tx.commit().await?;
        }
        let purged = "its stored passwords were erased after the retention period; request the migration again";
        // Each connection resolves the names again and checks every address: they may
        // point elsewhere since the request.
        let reach = self.reach().with_pulse(pulse);
        let ready = if m.kind == MigrationKind::Mail {
            match self.endpoints(&m).await? {
                Some(sides) => Ok(Checks::Mail(sides)),
                None => Err((ErrorCode::CredentialsPurged, purged.to_owned())),
            }
        } else {
            match self.items_job(&m, 0, pulse).await? {
                Ok(Some(job)) => Ok(Checks::Items(Box::new(job))),
                Ok(None) => Err((ErrorCode::CredentialsPurged, purged.to_owned())),
                Err(unreadable) => Err(unreadable),
            }
        };
        let checks = match ready {
            Ok(checks) => checks,
            Err((code, message)) => {
                return self
                    .fail(
                        &m,
                        MigrationStatus::Validating,
                        Work::Validate,
                        code,
                        message,
                        None,
                    )
                    .await;
            }
        };
        let checked = tokio::select! {
            () = stop.cancelled() => return Ok(WorkOutcome::Stopped),
            checked = async {
                match &checks {
                    Checks::Mail((source, dest)) => {
                        crate::sync::probe::check_logins(source, dest, &reach).await
                    }
                    Checks::Items(job) => crate::sync::items::check_logins(job).await,
                }
            } => checked,
        };
        if let Err((side, err)) = checked {
            let (side, account) = match side {
                Side::Source => ("source", &m.source),
                Side::Destination => ("destination", &m.dest),
            };
            return self
                .connect_failed(
                    &m,
                    MigrationStatus::Validating,
                    Work::Validate,
                    side,
                    account,
                    err,
                )
                .await;
        }
        let step = self.validated(&m, now);
        let tx = self.store().begin().await?;
        if !self.write_step(&tx, &m, step, now).await? {
            return Ok(WorkOutcome::Stopped);
        }
        tx.commit().await?;
        self.dispatcher().wake();
        self.services.wake_workers();
        Ok(WorkOutcome::Done)
    }
    /// The step once both logins worked: scheduled for its window (or the MX grace),
    /// or back to waiting for the MX when it was retried while it waited.
    fn validated(&self, m: &Migration, now: chrono::DateTime<Utc>) -> Step {
        let next = m.resume_work.unwrap_or(Work::Pass(PassKind::PreMx));
        if m.retry_waits_for_mx() {
            // Retried while it waited for the MX (or in a pass run meanwhile): back to
            // waiting; the post-MX pass follows the switch, never the retry.
            Step {
                from: MigrationStatus::Validating,
                to: MigrationStatus::WaitingForMx,
                change: StatusChange {
                    next_work: Some(Some(next)),
                    resume_work: Some(None),
                    next_run_at: Some(None),
                    error: Some(None),
                    release_lease: true,
                    ..Default::default()
                },
                action: "migration.waiting_for_mx",
                detail: json!({ "work": next.to_string() }),
                email: None,
            }
        } else {
            let run_at = match (next, m.window_start, m.mx_switched_at) {
                (Work::Pass(PassKind::PreMx), Some(w), _) if w > now => w,
                (Work::Pass(PassKind::PostMx), _, Some(switched)) => {
                    (switched + self.settings().mx.grace()).max(now)
                }
                _ => now,
            };
            Step {
                from: MigrationStatus::Validating,
                to: MigrationStatus::Scheduled,
                change: StatusChange {
                    next_work: Some(Some(next)),
                    resume_work: Some(None),
                    next_run_at: Some(Some(run_at)),
                    error: Some(None),
                    release_lease: true,
                    ..Default::default()
                },
                action: "migration.scheduled",
                detail: json!({ "work": next.to_string(), "run_at": run_at }),
                email: Some(MigrationNews::Scheduled { rescheduled: false }),
            }
        }
    }
    /// A login or connection that failed: a refused password needs the customer
    /// (action needed), anything else is a failure with its reason.
    pub(super) async fn connect_failed(
        &self,
        m: &Migration,
        from: MigrationStatus,
        work: Work,
        side: &'static str,
        account: &Endpoint,
        err: ConnectError,
    ) -> anyhow::Result<WorkOutcome> {
        let code = err.code();
        let message = format!("the {side} server: {err}");
        let refused = matches!(err, ConnectError::Auth(..)).then(|| Refused {
            side,
            account: account.username().to_owned(),
            error: err.to_string(),
        });
        self.fail(m, from, work, code, message, refused).await
    }
    /// Moves the migration to failed, keeping the work a retry resumes.
    pub(super) async fn fail(
        &self,
        m: &Migration,
        from: MigrationStatus,
        work: Work,
        code: ErrorCode,
        message: String,
        refused: Option<Refused>,
    ) -> anyhow::Result<WorkOutcome> {
        let now = self.now();
        tracing::warn!(migration = %m.id, code = code.as_str(), error = %message, "Migration failed");
        // A retry validates first anyway; it resumes with what came after validation.
        let work = match work {
            Work::Validate => m.resume_work.unwrap_or(Work::Pass(PassKind::PreMx)),
            other => other,
        };
        let email = match refused {
            Some(r) => MigrationNews::password_needed(r.side, r.account, r.error),
            None => MigrationNews::Failed {
                what: crate::domain::Failure::of(Some(code)).what,
                error: message.clone(),
            },
        };
        let tx = self.store().begin().await?;
        let step = Step {
            from,
            to: MigrationStatus::Failed,
            change: StatusChange {
                next_work: Some(None),
                resume_work: Some(Some(work)),
                next_run_at: Some(None),
                finished_at: Some(Some(now)),
                error: Some(Some((code, message.clone()))),
                release_lease: true,
                ..Default::default()
            },
            action: "migration.failed",
            detail: json!({ "code": code, "message": message, "work": work.to_string() }),
            email: Some(email),
        };
        if !self.write_step(&tx, m, step, now).await? {
            return Ok(WorkOutcome::Stopped);
        }
        tx.commit().await?;
        self.dispatcher().wake();
        Ok(WorkOutcome::Done)
    }
}

/// An error of Ferry's own making (its database), not of the servers.
pub(super) fn is_ours(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<crate::store::StoreError>().is_some())
}

/// What validation logs in to.
enum Checks {
    Mail((ImapEndpoint, ImapEndpoint)),
    Items(Box<ItemsJob>),
}

/// Whether `work` may run in `status`.
fn work_fits(work: Work, status: MigrationStatus) -> bool {
    use MigrationStatus as S;
    match work {
        Work::Validate => matches!(status, S::Pending | S::Validating),
        Work::Pass(PassKind::PreMx) => matches!(status, S::Scheduled | S::Processing),
        Work::Pass(_) => matches!(
            status,
            S::Scheduled | S::Processing | S::WaitingForMx | S::Completed
        ),
        Work::DeleteMigrated { .. } => !status.is_active(),
    }
}
