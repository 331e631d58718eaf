//! What a person may ask of a migration after the request: retry it, run another
//! delta pass now, say the MX has switched, remove what it copied. Each is a status
//! change by compare-and-set with its audit event; the work itself is done by a
//! worker, woken at once.

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::lifecycle::{Step, audit_as};
use super::{ServiceError, ServiceResult, Services};
use crate::domain::{
    self, Actor, DuplicatePolicy, ErrorCode, Migration, MigrationId, MigrationStatus, Parsed,
    PassKind, Work,
};
use crate::render::emails::MigrationNews;
use crate::store::{StatusChange, StoreError, dest_key};

fn conflict(code: ErrorCode, message: String) -> ServiceError {
    ServiceError::Conflict { code, message }
}

fn moved_meanwhile() -> ServiceError {
    conflict(
        ErrorCode::StatusChanged,
        "The migration changed status meanwhile; look again and retry.".into(),
    )
}

/// The step that asks `m` for a synchronisation pass now, then `resume`.
fn sync_step(
    m: &Migration,
    resume: Option<Work>,
    notify: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Step {
    Step {
        from: m.status,
        to: m.status,
        change: StatusChange {
            next_work: Some(Some(Work::Pass(PassKind::Sync))),
            resume_work: Some(resume),
            next_run_at: Some(Some(now)),
            notify_customer: Some(notify),
            ..Default::default()
        },
        action: "migration.sync_requested",
        detail: json!({ "notify_customer": notify }),
        email: None,
    }
}

/// Only a failed or cancelled migration can be retried.
fn ensure_retryable(m: &Migration) -> ServiceResult<()> {
    if matches!(
        m.status,
        MigrationStatus::Failed | MigrationStatus::Cancelled
    ) {
        return Ok(());
    }
    Err(conflict(
        ErrorCode::NotRetryable,
        format!(
            "The migration is {}; only a failed or cancelled one can be retried.",
            m.status
        ),
    ))
}

impl Services {
    /// Writes `step` of `m` (compare-and-set on its status, its audit event, its email
    /// when it has one); wakes the workers and answers the migration as it now is.
    pub(super) async fn act(
        &self,
        actor: &Actor,
        m: &Migration,
        step: Step,
    ) -> ServiceResult<Migration> {
        let now = self.now();
        let tx = self.store.begin().await?;
        let written = self
            .write_step(&tx, actor, m, step, now)
            .await
            // The database's one-active-per-mailbox index answers for a retry that
            // would make a second migration of the mailbox active.
            .map_err(|err| match err.downcast::<StoreError>() {
                Ok(store) => ServiceError::from(store),
                Err(other) => ServiceError::Internal(other),
            })?;
        if !written {
            return Err(moved_meanwhile());
        }
        tx.commit().await?;
        self.wake_workers();
        self.load_migration(m.id).await
    }

    /// Pauses a migration in progress: no work of it starts, and a running pass stops
    /// at once in this process (at its next heartbeat in another), its checkpoints
    /// kept. Pausing a paused migration changes nothing.
    pub async fn pause_migration(
        &self,
        actor: &Actor,
        id: MigrationId,
    ) -> ServiceResult<Migration> {
        let m = self.load_migration(id).await?;
        if m.status == MigrationStatus::Paused {
            return Ok(m);
        }
        if !m.status.is_active() {
            return Err(conflict(
                ErrorCode::NotPausable,
                format!(
                    "The migration is {}; only one in progress can be paused.",
                    m.status
                ),
            ));
        }
        let step = Step {
            from: m.status,
            to: MigrationStatus::Paused,
            change: StatusChange {
                paused_status: Some(Some(m.status)),
                ..Default::default()
            },
            action: "migration.paused",
            detail: json!({ "from": m.status.as_str() }),
            email: None,
        };
        let paused = self.act(actor, &m, step).await?;
        self.stop_running(id);
        Ok(paused)
    }

    /// Resumes a paused migration where it was: its work waits for a worker again and
    /// starts from its checkpoints (a pass it was in goes on under its own number).
    pub async fn resume_migration(
        &self,
        actor: &Actor,
        id: MigrationId,
    ) -> ServiceResult<Migration> {
        let m = self.load_migration(id).await?;
        if m.status != MigrationStatus::Paused {
            return Err(conflict(
                ErrorCode::NotPaused,
                format!("The migration is {}, not paused.", m.status),
            ));
        }
        // Work that was under way waits for a worker again: a pass is taken up (under
        // its own number) from `scheduled`, a check from `pending`.
        let to = match m.paused_status {
            Some(MigrationStatus::Processing) | None => MigrationStatus::Scheduled,
            Some(MigrationStatus::Validating) => MigrationStatus::Pending,
            Some(other) => other,
        };
        let step = Step {
            from: MigrationStatus::Paused,
            to,
            change: StatusChange {
                paused_status: Some(None),
                ..Default::default()
            },
            action: "migration.resumed",
            detail: json!({ "to": to.as_str() }),
            email: None,
        };
        self.act(actor, &m, step).await
    }

    /// Starts a failed or cancelled migration again: credentials checked first, then
    /// the work it stopped at. Duplicates are skipped, so nothing already copied is
    /// copied twice.
    ///
    /// The customer is emailed the progress of the retried work (its schedule, its
    /// passes) only with `notify`; how it ends (complete, failed, a password to fix,
    /// the MX to change) they are always told, once.
    pub async fn retry_migration(
        &self,
        actor: &Actor,
        id: MigrationId,
        notify: bool,
    ) -> ServiceResult<Migration> {
        let now = self.now();
        let m = self.load_migration(id).await?;
        ensure_retryable(&m)?;
        if m.credentials_purged_at.is_some() {
            return Err(conflict(
                ErrorCode::CredentialsPurged,
                "Its stored passwords were erased after the retention period; request the migration again.".into(),
            ));
        }
        let mut options = m.options.clone();
        options.duplicates = DuplicatePolicy::Skip;
        let resume = m.retry_work();
        let step = Step {
            from: m.status,
            to: MigrationStatus::Pending,
            change: StatusChange {
                next_work: Some(Some(Work::Validate)),
                resume_work: Some(Some(resume)),
                next_run_at: Some(Some(now)),
                finished_at: Some(None),
                error: Some(None),
                options: Some(options),
                notify_customer: Some(notify),
                ..Default::default()
            },
            action: "migration.retried",
            detail: json!({
                "from": m.status.as_str(), "resume": resume.to_string(), "duplicates": "skip",
                "notify_customer": notify,
            }),
            email: None,
        };
        self.act(actor, &m, step).await
    }

    /// Retry with the passwords typed beside it: the given ones are stored (encrypted)
    /// first, so a password typed and then Retry is never dropped. None given is a
    /// plain retry.
    pub async fn store_and_retry(
        &self,
        actor: &Actor,
        id: MigrationId,
        source: Option<SecretString>,
        dest: Option<SecretString>,
        notify: bool,
    ) -> ServiceResult<Migration> {
        let typed =
            |p: &Option<SecretString>| p.as_ref().is_some_and(|p| !p.expose_secret().is_empty());
        if typed(&source) || typed(&dest) {
            // Refused before anything is stored when it cannot be retried.
            ensure_retryable(&self.load_migration(id).await?)?;
            self.update_credentials(actor, id, source, dest).await?;
        }
        self.retry_migration(actor, id, notify).await
    }

    /// Runs another delta pass now: after the first pass, while waiting for the MX
    /// (the post-MX pass still follows) or after completion.
    /// Its passes are emailed to the customer only with `notify`.
    pub async fn sync_migration(
        &self,
        actor: &Actor,
        id: MigrationId,
        notify: bool,
    ) -> ServiceResult<Migration> {
        let now = self.now();
        let m = self.load_migration(id).await?;
        let resume = match m.status {
            MigrationStatus::WaitingForMx => Some(Work::Pass(PassKind::PostMx)),
            MigrationStatus::Completed => None,
            _ => {
                return Err(conflict(
                    ErrorCode::NotSyncable,
                    format!(
                        "The migration is {}; a synchronisation pass runs after the first pass, while waiting for the MX or once completed.",
                        m.status
                    ),
                ));
            }
        };
        if m.next_work
            .is_some_and(|w| !matches!(w, Work::Pass(PassKind::PostMx)))
        {
            return Err(conflict(
                ErrorCode::WorkPending,
                format!(
                    "The migration already has work waiting ({}).",
                    m.next_work.map(|w| w.to_string()).unwrap_or_default()
                ),
            ));
        }
        if m.status == MigrationStatus::Completed {
            // A completed migration is outside the one-active-per-mailbox index: its
            // pass must not copy beside another migration of the mailbox.
            let tx = self.store.begin().await?;
            tx.lock_admission_and_count_active().await?;
            if let Some(other) = tx
                .mailbox_busy(&dest_key(m.kind, &m.dest), Some(m.id))
                .await?
            {
                return Err(conflict(
                    ErrorCode::ActiveMigrationExists,
                    format!(
                        "Migration #{other} of the same mailbox is in progress; synchronise once it has finished."
                    ),
                ));
            }
            let step = sync_step(&m, None, notify, now);
            if !self.write_step(&tx, actor, &m, step, now).await? {
                return Err(moved_meanwhile());
            }
            tx.commit().await?;
            self.wake_workers();
            return self.load_migration(id).await;
        }
        self.act(actor, &m, sync_step(&m, resume, notify, now))
            .await
    }

    /// The customer says the MX records point at the provider: the post-MX pass
    /// starts after the grace period without waiting for the DNS check.
    pub async fn migration_mx_switched(
        &self,
        actor: &Actor,
        id: MigrationId,
    ) -> ServiceResult<Migration> {
        let m = self.load_migration(id).await?;
        let syncing = m.status == MigrationStatus::Processing
            && m.resume_work == Some(Work::Pass(PassKind::PostMx));
        if !(m.status == MigrationStatus::WaitingForMx || syncing) {
            return Err(conflict(
                ErrorCode::NotWaitingForMx,
                format!(
                    "The migration is {}, not waiting for its MX change.",
                    m.status
                ),
            ));
        }
        if m.mx_switched_at.is_some() {
            return Ok(m);
        }
        if !self
            .mark_mx_switched(actor, &m, "marked switched by hand")
            .await?
        {
            return Err(moved_meanwhile());
        }
        self.load_migration(id).await
    }

    /// Gives a scheduled migration a new window, checked like a request's (notice,
    /// weekend notice, off-hours in the requester's time zone). No window starts it as
    /// soon as a slot is free, with `may_override` only. The requester and staff get
    /// the new time by email.
    pub async fn reschedule_migration(
        &self,
        actor: &Actor,
        id: MigrationId,
        may_override: bool,
        window_start: Option<Parsed<NaiveDateTime>>,
        time_zone: Option<Parsed<Tz>>,
    ) -> ServiceResult<Migration> {
        let now = self.now();
        let m = self.load_migration(id).await?;
        if m.status != MigrationStatus::Scheduled {
            return Err(conflict(
                ErrorCode::NotScheduled,
                format!(
                    "The migration is {}; only a scheduled one can move to another window.",
                    m.status
                ),
            ));
        }
        let mut errors = Vec::new();
        let time_zone =
            time_zone.or_else(|| Some(domain::time_zone("window.time_zone", &m.time_zone)));
        let (window, tz) = self.check_window(
            now,
            window_start.as_ref(),
            time_zone.as_ref(),
            may_override,
            &mut errors,
        )?;
        let tz_name = tz.name().to_owned();
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        // The email tells the new window.
        let mut rescheduled = m.clone();
        rescheduled.window_start = window;
        rescheduled.time_zone = tz_name.clone();
        let step = Step {
            from: MigrationStatus::Scheduled,
            to: MigrationStatus::Scheduled,
            change: StatusChange {
                next_run_at: Some(Some(window.unwrap_or(now))),
                window: Some((window, tz_name.clone())),
                only_unleased_at: Some(now),
                ..Default::default()
            },
            action: "migration.rescheduled",
            detail: json!({
                "from": m.window_start,
                "to": window,
                "time_zone": tz_name,
                "override": window.is_none(),
            }),
            email: Some(MigrationNews::Scheduled { rescheduled: true }),
        };
        let tx = self.store.begin().await?;
        if !self.write_step(&tx, actor, &rescheduled, step, now).await? {
            return Err(conflict(
                ErrorCode::Starting,
                "Its window has come and the pass is starting; stop it instead, or let it run."
                    .into(),
            ));
        }
        tx.commit().await?;
        self.dispatcher.wake();
        self.wake_workers();
        self.load_migration(id).await
    }

    /// Removes from the destination the messages this migration appended, from pass
    /// `from_pass` on (all passes when none), and nothing else. Only once it has
    /// stopped: completed, failed or cancelled.
    pub async fn delete_migrated(
        &self,
        actor: &Actor,
        id: MigrationId,
        from_pass: Option<u32>,
    ) -> ServiceResult<Migration> {
        let now = self.now();
        let m = self.load_migration(id).await?;
        if m.kind != crate::domain::MigrationKind::Mail {
            return Err(conflict(
                ErrorCode::NotRetryable,
                format!(
                    "Removing what a {} migration copied is not available yet; remove the collection at the destination.",
                    m.kind.as_str()
                ),
            ));
        }
        if m.status.is_active() || m.next_work.is_some() {
            return Err(conflict(
                ErrorCode::MigrationActive,
                format!(
                    "The migration is {}; cancel it or let it finish before removing what it copied.",
                    m.status
                ),
            ));
        }
        let passes = self.store.migration_passes(id).await?;
        let from_pass = from_pass.unwrap_or(1);
        if !passes.iter().any(|p| p.number >= from_pass) {
            return Err(ServiceError::field(
                "from_pass",
                format!(
                    "the migration has no pass {from_pass}; its passes are {}",
                    passes
                        .iter()
                        .map(|p| p.number.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if m.credentials_purged_at.is_some() {
            return Err(conflict(
                ErrorCode::CredentialsPurged,
                "Its stored passwords were erased after the retention period.".into(),
            ));
        }
        let step = Step {
            from: m.status,
            to: m.status,
            change: StatusChange {
                next_work: Some(Some(Work::DeleteMigrated { from_pass })),
                next_run_at: Some(Some(now)),
                ..Default::default()
            },
            action: "migration.delete_migrated_requested",
            detail: json!({ "from_pass": from_pass }),
            email: None,
        };
        self.act(actor, &m, step).await
    }

    /// Replaces a migration's stored passwords (one side or both), e.g. after the
    /// customer changed one; not while it copies. Then `retry` picks them up.
    pub async fn update_credentials(
        &self,
        actor: &Actor,
        id: MigrationId,
        source: Option<SecretString>,
        dest: Option<SecretString>,
    ) -> ServiceResult<Migration> {
        let now = self.now();
        let m = self.load_migration(id).await?;
        let given = |p: Option<SecretString>| p.filter(|p| !p.expose_secret().is_empty());
        let (source, dest) = (given(source), given(dest));
        if source.is_none() && dest.is_none() {
            return Err(ServiceError::field(
                "source_password",
                "give the source password, the destination password, or both",
            ));
        }
        if matches!(
            m.status,
            MigrationStatus::Processing | MigrationStatus::Validating
        ) || m.is_running(now)
        {
            return Err(conflict(
                ErrorCode::MigrationRunning,
                "The migration is running; cancel it first.".into(),
            ));
        }
        if m.credentials_purged_at.is_some() && (source.is_none() || dest.is_none()) {
            return Err(ServiceError::field(
                "destination_password",
                "the stored passwords were erased; give both",
            ));
        }
        let source_secret = source.map(|p| self.cipher.encrypt(&p)).transpose()?;
        let dest_secret = dest.map(|p| self.cipher.encrypt(&p)).transpose()?;
        let sides: Vec<&str> = [
            source_secret.as_ref().map(|_| "source"),
            dest_secret.as_ref().map(|_| "destination"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let tx = self.store.begin().await?;
        tx.set_migration_secrets(id, source_secret, dest_secret)
            .await?;
        audit_as(
            &tx,
            actor,
            id,
            "migration.credentials_updated",
            json!({ "sides": sides }),
            now,
        )
        .await?;
        tx.commit().await?;
        self.load_migration(id).await
    }
}
