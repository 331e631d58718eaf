//! The work a worker does for a migration it holds: validate the credentials, run a
//! pass through the engine, remove migrated messages; and the periodic checks (MX,
//! credential purge). Each outcome is a status change by compare-and-set, written with
//! its audit event and its email in one transaction.
//!
//! A worker may die at any instruction: the row keeps its work (`next_work`) until the
//! outcome is written, the lease runs out, and the next worker resumes the same pass
//! from the checkpoints in the folder rows.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::migrations::endpoint;
use super::progress::{DbCheckpoints, DbProgress, LeaseLost};
use super::{ServiceResult, Services};
use crate::connectors::imap::{ConnectError, ImapConnection};
use crate::connectors::net::Pulse;
use crate::domain::{
    Actor, EmailAddress, ErrorCode, ImapEndpoint, Migration, MigrationStatus, NewAuditEvent, Pass,
    PassKind, ServerAccount, Work, mx_answer, mx_switched,
};
use crate::planner::folders::Selection;
use crate::render::emails::{MigrationEmail, MigrationNews, PassFacts};
use crate::store::{FolderCounts, PassEnd, StatusChange, Tx};
use crate::sync::checkpoint::CheckpointStore;
use crate::sync::mail::{self, MailJob, MigrateError, Report};

/// Who the worker is in the audit trail.
const WORKER: Actor = Actor::System;

/// How a piece of work ended, for the scheduler's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkOutcome {
    Done,
    /// Stopped because the migration was cancelled or the lease was lost.
    Stopped,
}

/// A failure worth its own email: which side refused which account.
struct Refused {
    side: &'static str,
    account: String,
    error: String,
}

impl Services {
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
            self.store.release_lease(m.id, owner).await?;
            return Ok(WorkOutcome::Done);
        };
        let id = m.id;
        tracing::info!(migration = id, %work, status = %m.status, "Starting work");
        if !work_fits(work, m.status) {
            // Work left behind by a status change (never expected): dropped, not
            // retried forever.
            tracing::warn!(migration = id, %work, status = %m.status, "Work does not fit the status; dropped");
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
                tracing::warn!(migration = id, "Lease lost mid-work; stopping");
                Ok(WorkOutcome::Stopped)
            }
            other => other,
        };
        // Done or stopped: the lease goes (an outcome may have released it already).
        // After an error of Ferry's own it is kept until it runs out, which spaces the
        // next attempt.
        if outcome.is_ok()
            && let Err(err) = self.store.release_lease(id, owner).await
        {
            tracing::warn!(migration = id, error = %err, "Failed to release a lease; it runs out by itself");
        }
        outcome
    }

    /// Clears `m`'s work and lease without changing its status, audited as `action`.
    async fn work_done(
        &self,
        m: &Migration,
        action: &'static str,
        detail: Value,
    ) -> anyhow::Result<()> {
        let now = Utc::now();
        let tx = self.store.begin().await?;
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
        if self.write_step(&tx, &WORKER, m, step, now).await? {
            tx.commit().await?;
        }
        Ok(())
    }

    /// Both sides with their passwords, or `None` once the passwords are erased.
    async fn endpoints(
        &self,
        m: &Migration,
    ) -> anyhow::Result<Option<(ImapEndpoint, ImapEndpoint)>> {
        let (Some(src), Some(dst)) = self.store.migration_secrets(m.id).await? else {
            return Ok(None);
        };
        Ok(Some((
            endpoint(&m.source, self.cipher.decrypt(&src)?),
            endpoint(&m.dest, self.cipher.decrypt(&dst)?),
        )))
    }

    async fn validate(
        &self,
        m: Migration,
        stop: CancellationToken,
        pulse: &Pulse,
    ) -> anyhow::Result<WorkOutcome> {
        let now = Utc::now();
        if m.status == MigrationStatus::Pending {
            let tx = self.store.begin().await?;
            let step = Step {
                from: MigrationStatus::Pending,
                to: MigrationStatus::Validating,
                change: StatusChange::default(),
                action: "migration.validating",
                detail: json!({}),
                email: None,
            };
            if !self.write_step(&tx, &WORKER, &m, step, now).await? {
                return Ok(WorkOutcome::Stopped);
            }
            tx.commit().await?;
        }
        let Some((source, dest)) = self.endpoints(&m).await? else {
            return self
                .fail(&m, MigrationStatus::Validating, Work::Validate, ErrorCode::CredentialsPurged,
                    "its stored passwords were erased after the retention period; request the migration again".into(), None)
                .await;
        };
        // Each connection resolves the names again and checks every address: they may
        // point elsewhere since the request.
        let reach = self.reach().with_pulse(pulse);
        let checked = tokio::select! {
            () = stop.cancelled() => return Ok(WorkOutcome::Stopped),
            checked = async { tokio::join!(ImapConnection::connect(&source, &reach), ImapConnection::connect(&dest, &reach)) } => checked,
        };
        let (src, dst) = match checked {
            (Ok(src), Ok(dst)) => (src, dst),
            (src, dst) => {
                let (side, account, err) = match (src, dst) {
                    (Err(e), other) => {
                        if let Ok(c) = other {
                            c.logout().await;
                        }
                        ("source", &m.source, e)
                    }
                    (Ok(c), Err(e)) => {
                        c.logout().await;
                        ("destination", &m.dest, e)
                    }
                    (Ok(_), Ok(_)) => unreachable!("handled above"),
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
        };
        tokio::join!(src.logout(), dst.logout());
        let next = m.resume_work.unwrap_or(Work::Pass(PassKind::PreMx));
        let run_at = match (next, m.window_start) {
            (Work::Pass(PassKind::PreMx), Some(w)) if w > now => w,
            _ => now,
        };
        let tx = self.store.begin().await?;
        let step = Step {
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
        };
        if !self.write_step(&tx, &WORKER, &m, step, now).await? {
            return Ok(WorkOutcome::Stopped);
        }
        tx.commit().await?;
        self.dispatcher.wake();
        self.wake_workers();
        Ok(WorkOutcome::Done)
    }

    async fn run_pass(
        &self,
        m: Migration,
        kind: PassKind,
        holder: &str,
        stop: CancellationToken,
        pulse: &Pulse,
    ) -> anyhow::Result<WorkOutcome> {
        let now = Utc::now();
        let Some((source, dest)) = self.endpoints(&m).await? else {
            return self
                .fail(&m, m.status, Work::Pass(kind), ErrorCode::CredentialsPurged,
                    "its stored passwords were erased after the retention period; request the migration again".into(), None)
                .await;
        };
        // A pass a crash interrupted goes on under its own number; otherwise a new one.
        let pass = match self.store.open_pass(m.id).await? {
            Some(open) if open.kind == kind.as_str() && m.status == MigrationStatus::Processing => {
                tracing::info!(
                    migration = m.id,
                    pass = open.number,
                    "Resuming an interrupted pass"
                );
                open
            }
            open => {
                let tx = self.store.begin().await?;
                if let Some(stale) = open {
                    tx.finish_pass(stale.id, &PassEnd::abandoned(), now).await?;
                }
                // Dropped with `tx` when the migration moved on meanwhile.
                let pass = tx.start_pass(m.id, kind, now).await?;
                let step = Step {
                    from: m.status,
                    to: MigrationStatus::Processing,
                    change: StatusChange {
                        started_at: Some(Some(m.started_at.unwrap_or(now))),
                        ..Default::default()
                    },
                    action: "migration.pass_started",
                    detail: json!({ "pass": pass.number, "kind": kind.as_str() }),
                    email: Some(MigrationNews::PassStarted {
                        pass: pass_facts(&pass),
                    }),
                };
                if !self.write_step(&tx, &WORKER, &m, step, now).await? {
                    return Ok(WorkOutcome::Stopped);
                }
                tx.commit().await?;
                self.dispatcher.wake();
                pass
            }
        };
        tracing::Span::current().record("pass", pass.number);
        let job = MailJob {
            source,
            dest,
            mode: m.options.mode,
            duplicates: m.options.duplicates,
            delete_source: m.options.delete_source,
            since: m.options.import_since,
            selection: Selection {
                strategy: m.options.folder_strategy,
                include: m.options.selected_folders.clone(),
                exclude: m.options.excluded_folders.clone(),
                map: m.options.folder_map.clone(),
            },
            count_first: m.options.count_first,
            connections: self.settings().workers.connections,
            pass: pass.number,
            sync_deletions: m.options.sync_deletions,
            reach: self.reach().with_pulse(pulse),
        };
        let checkpoints = DbCheckpoints {
            store: self.store.clone(),
            migration_id: m.id,
            holder: holder.to_owned(),
        };
        // A resumed pass counts on from what its earlier runs did.
        let base = checkpoints
            .load()
            .await?
            .folders
            .into_iter()
            .map(|(folder, fs)| {
                let counts = fs.pass_counts(pass.number);
                (folder, counts)
            })
            .collect();
        let progress = DbProgress::new(self.store.clone(), m.id, base);
        let flusher = tokio::spawn(Arc::clone(&progress).run_flusher());
        let result = tokio::select! {
            () = stop.cancelled() => None,
            result = mail::run(&job, &checkpoints, progress.as_ref()) => Some(result),
        };
        progress.finish();
        flusher.await.ok();
        let now = Utc::now();
        let Some(result) = result else {
            // Cancelled (the action already moved the status) or the lease was lost
            // (another worker goes on from the checkpoints).
            if let Some(current) = self.store.get_migration(m.id).await?
                && current.status == MigrationStatus::Cancelled
            {
                let tx = self.store.begin().await?;
                tx.finish_pass(pass.id, &PassEnd::ended("cancelled", None), now)
                    .await?;
                tx.commit().await?;
            }
            return Ok(WorkOutcome::Stopped);
        };
        let report = match result {
            Ok(report) => report,
            Err(MigrateError::Connect(side, err)) => {
                let (side, account) = match side {
                    mail::Side::Destination => ("destination", &m.dest),
                    mail::Side::Source => ("source", &m.source),
                };
                self.close_pass(&pass, PassEnd::ended("failed", None), now)
                    .await?;
                return self
                    .connect_failed(
                        &m,
                        MigrationStatus::Processing,
                        Work::Pass(kind),
                        side,
                        account,
                        err,
                    )
                    .await;
            }
            // Ferry's own trouble (its database) is not the migration's: the lease
            // runs out and the pass resumes from its checkpoints. A lease another
            // worker took over is not either: `run_work` stops quietly.
            Err(MigrateError::Other(err)) if is_ours(&err) || LeaseLost::caused(&err) => {
                return Err(err);
            }
            Err(err) => {
                self.close_pass(&pass, PassEnd::ended("failed", None), now)
                    .await?;
                return self
                    .fail(
                        &m,
                        MigrationStatus::Processing,
                        Work::Pass(kind),
                        ErrorCode::CopyFailed,
                        err.to_string(),
                        None,
                    )
                    .await;
            }
        };
        let report = self
            .whole_pass_counts(&checkpoints, pass.number, report)
            .await?;
        if !report.adds_up() {
            // A pass that does not add up is never a success: failed, with the numbers,
            // and Retry runs it again (what is missing is copied, nothing twice).
            let json = serde_json::to_value(&report)?;
            self.close_pass(
                &pass,
                PassEnd::from_report("incomplete", &report, json),
                now,
            )
            .await?;
            let message = format!(
                "the copy does not add up, so it is not reported as done: {}. Retry copies what is missing.",
                report.unaccounted_summary()
            );
            return self
                .fail(
                    &m,
                    MigrationStatus::Processing,
                    Work::Pass(kind),
                    ErrorCode::Incomplete,
                    message,
                    None,
                )
                .await;
        }
        self.pass_succeeded(&m, kind, &pass, &report, now).await
    }

    /// A pass resumed after a crash reports what the whole pass did, not only its
    /// last run: copies and skips are counted from the ledger, which records the pass
    /// of each entry.
    async fn whole_pass_counts(
        &self,
        checkpoints: &DbCheckpoints,
        pass: u32,
        mut report: Report,
    ) -> anyhow::Result<Report> {
        let state = checkpoints.load().await?;
        let now = Utc::now();
        for folder in &mut report.folders {
            let Some(fs) = state.folders.get(&folder.source) else {
                continue;
            };
            let (copied, skipped) = fs.pass_counts(pass);
            // Skips outside the ledger (messages before import_since) stay as counted.
            folder.skipped = folder.skipped.max(skipped);
            folder.copied = copied;
            folder.expected = folder.copied + folder.skipped + folder.failed;
            let counts = FolderCounts {
                status: "done",
                expected: folder.expected,
                copied: folder.copied,
                skipped: folder.skipped,
                failed: folder.failed,
                bytes: folder.bytes,
            };
            self.store
                .folder_progress(checkpoints.migration_id, &folder.source_path, &counts, now)
                .await?;
        }
        let t = &mut report.totals;
        t.copied = report.folders.iter().map(|f| f.copied).sum();
        t.skipped = report.folders.iter().map(|f| f.skipped).sum();
        t.expected = report.folders.iter().map(|f| f.expected).sum();
        Ok(report)
    }

    async fn close_pass(
        &self,
        pass: &Pass,
        end: PassEnd,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let tx = self.store.begin().await?;
        tx.finish_pass(pass.id, &end, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A pass ran to its end: the next step of the life, with its email.
    async fn pass_succeeded(
        &self,
        m: &Migration,
        kind: PassKind,
        pass: &Pass,
        report: &Report,
        now: DateTime<Utc>,
    ) -> anyhow::Result<WorkOutcome> {
        let report_json = serde_json::to_value(report)?;
        let grace = chrono::Duration::seconds(
            i64::try_from(self.settings().mx.grace_seconds).unwrap_or(i64::MAX),
        );
        let post_mx_at = m.mx_switched_at.map(|at| at + grace);
        let (facts, report_value) = (pass_facts(pass), report_json.clone());
        // (status, next work, its time, email)
        let (status, next_work, next_run_at, email) = match kind {
            PassKind::PreMx if m.two_pass => (
                MigrationStatus::WaitingForMx,
                Some(Work::Pass(PassKind::PostMx)),
                post_mx_at,
                MigrationNews::mx_needed(
                    facts,
                    report_value,
                    human_duration(self.settings().mx.grace_seconds),
                ),
            ),
            PassKind::Sync if m.resume_work == Some(Work::Pass(PassKind::PostMx)) => (
                MigrationStatus::WaitingForMx,
                Some(Work::Pass(PassKind::PostMx)),
                post_mx_at,
                MigrationNews::PassFinished {
                    pass: facts,
                    report: report_value,
                },
            ),
            PassKind::Sync => (
                MigrationStatus::Completed,
                None,
                None,
                MigrationNews::PassFinished {
                    pass: facts,
                    report: report_value,
                },
            ),
            PassKind::PreMx | PassKind::PostMx => (
                MigrationStatus::Completed,
                None,
                None,
                MigrationNews::Completed {
                    pass: facts,
                    report: report_value,
                },
            ),
        };
        let finished = status == MigrationStatus::Completed;
        let tx = self.store.begin().await?;
        tx.finish_pass(
            pass.id,
            &PassEnd::from_report("succeeded", report, report_json.clone()),
            now,
        )
        .await?;
        let step = Step {
            from: MigrationStatus::Processing,
            to: status,
            change: StatusChange {
                next_work: Some(next_work),
                resume_work: Some(None),
                next_run_at: Some(next_run_at),
                finished_at: Some(finished.then_some(now)),
                error: Some(None),
                release_lease: true,
                ..Default::default()
            },
            action: "migration.pass_finished",
            detail: json!({
                "pass": pass.number, "kind": kind.as_str(), "status": status.as_str(),
                "copied": report.totals.copied, "skipped": report.totals.skipped, "failed": report.totals.failed,
            }),
            email: Some(email),
        };
        if !self.write_step(&tx, &WORKER, m, step, now).await? {
            // Cancelled at the last moment: the pass is done, the status stays.
            tx.commit().await?;
            return Ok(WorkOutcome::Stopped);
        }
        tx.commit().await?;
        self.dispatcher.wake();
        self.wake_workers();
        tracing::info!(migration = m.id, pass = pass.number, copied = report.totals.copied, failed = report.totals.failed, next = %status, "Pass finished");
        Ok(WorkOutcome::Done)
    }

    /// A login or connection that failed: a refused password needs the customer
    /// (action needed), anything else is a failure with its reason.
    async fn connect_failed(
        &self,
        m: &Migration,
        from: MigrationStatus,
        work: Work,
        side: &'static str,
        account: &ServerAccount,
        err: ConnectError,
    ) -> anyhow::Result<WorkOutcome> {
        let code = err.code();
        let message = format!("the {side} server: {err}");
        let refused = matches!(err, ConnectError::Auth(..)).then(|| Refused {
            side,
            account: account.username.clone(),
            error: err.to_string(),
        });
        self.fail(m, from, work, code, message, refused).await
    }

    /// Moves the migration to failed, keeping the work a retry resumes.
    async fn fail(
        &self,
        m: &Migration,
        from: MigrationStatus,
        work: Work,
        code: ErrorCode,
        message: String,
        refused: Option<Refused>,
    ) -> anyhow::Result<WorkOutcome> {
        let now = Utc::now();
        tracing::warn!(migration = m.id, code = code.as_str(), error = %message, "Migration failed");
        // A retry validates first anyway; it resumes with what came after validation.
        let work = match work {
            Work::Validate => m.resume_work.unwrap_or(Work::Pass(PassKind::PreMx)),
            other => other,
        };
        let email = match refused {
            Some(r) => MigrationNews::password_needed(r.side, r.account, r.error),
            None => MigrationNews::Failed {
                error: message.clone(),
            },
        };
        let tx = self.store.begin().await?;
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
        if !self.write_step(&tx, &WORKER, m, step, now).await? {
            return Ok(WorkOutcome::Stopped);
        }
        tx.commit().await?;
        self.dispatcher.wake();
        Ok(WorkOutcome::Done)
    }

    /// Removes from the destination the copies this migration made from pass
    /// `from_pass` on, and nothing else; the status stays as it was.
    async fn delete_migrated_now(
        &self,
        m: Migration,
        from_pass: u32,
        holder: &str,
        pulse: &Pulse,
    ) -> anyhow::Result<WorkOutcome> {
        let Some((_, dest)) = self.endpoints(&m).await? else {
            return self
                .fail(
                    &m,
                    m.status,
                    Work::DeleteMigrated { from_pass },
                    ErrorCode::CredentialsPurged,
                    "its stored passwords were erased after the retention period".into(),
                    None,
                )
                .await;
        };
        let checkpoints = DbCheckpoints {
            store: self.store.clone(),
            migration_id: m.id,
            holder: holder.to_owned(),
        };
        let state = checkpoints.load().await?;
        let mut conn = match ImapConnection::connect(&dest, &self.reach().with_pulse(pulse)).await {
            Ok(conn) => conn,
            Err(err) => {
                let dest_account = m.dest.clone();
                return self
                    .connect_failed(
                        &m,
                        m.status,
                        Work::DeleteMigrated { from_pass },
                        "destination",
                        &dest_account,
                        err,
                    )
                    .await;
            }
        };
        let (mut removed, mut kept_unknown) = (0u64, 0u64);
        for (folder, mut fs) in state.folders {
            let uids: Vec<u32> = fs
                .ledger()
                .values()
                .filter(|e| e.pass >= from_pass && !e.skipped && !e.removed)
                .filter_map(|e| e.dest_uid)
                .collect();
            kept_unknown += fs
                .ledger()
                .values()
                .filter(|e| e.pass >= from_pass && !e.skipped && !e.removed && e.dest_uid.is_none())
                .count() as u64;
            if uids.is_empty() {
                continue;
            }
            let selected = conn
                .select(&fs.dest)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if selected.uidvalidity != fs.dest_uidvalidity {
                tracing::warn!(migration = m.id, folder = %fs.dest, "Destination folder was recreated; its copies are not removed");
                continue;
            }
            if !conn
                .delete_uids(&uids)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                anyhow::bail!(
                    "the destination server lacks UIDPLUS, so only exactly this migration's copies could not be expunged"
                );
            }
            let gone: HashSet<u32> = uids.iter().copied().collect();
            fs.update_all(|entry| {
                let hit = entry.dest_uid.is_some_and(|u| gone.contains(&u));
                entry.removed |= hit;
                hit
            });
            removed += uids.len() as u64;
            crate::sync::checkpoint::save(&checkpoints, &folder, &mut fs).await?;
        }
        conn.logout().await;
        self.work_done(
            &m,
            "migration.migrated_deleted",
            json!({ "from_pass": from_pass, "removed": removed, "without_uid": kept_unknown }),
        )
        .await?;
        tracing::info!(
            migration = m.id,
            from_pass,
            removed,
            "Migrated messages removed"
        );
        Ok(WorkOutcome::Done)
    }

    /// Looks up the MX of every migration waiting for it; a switched domain gets its
    /// post-MX pass after the grace period.
    pub async fn check_mx(&self) -> ServiceResult<()> {
        let nameserver = self.settings().mx_nameserver();
        let dns_timeout = std::time::Duration::from_secs(self.settings().timeouts.dns_seconds);
        for m in self.store.migrations_watching_mx().await? {
            let hosts = match crate::connectors::dns::lookup_mx(
                &m.mx_domain,
                nameserver,
                dns_timeout,
            )
            .await
            {
                Ok(hosts) => hosts,
                Err(err) => {
                    tracing::warn!(migration = m.id, domain = %m.mx_domain, error = %err, "MX check failed");
                    continue;
                }
            };
            let now = Utc::now();
            let answer = mx_answer(&hosts);
            self.store.record_mx_check(m.id, &answer, now).await?;
            if mx_switched(&self.settings().provider.mx_patterns, &hosts) {
                self.mark_mx_switched(
                    &WORKER,
                    &m,
                    &format!("the MX of {} is now {answer}", m.mx_domain),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Records the MX switch and sets the post-MX pass after the grace period.
    pub(super) async fn mark_mx_switched(
        &self,
        actor: &Actor,
        m: &Migration,
        why: &str,
    ) -> ServiceResult<bool> {
        let now = Utc::now();
        let grace = chrono::Duration::seconds(
            i64::try_from(self.settings().mx.grace_seconds).unwrap_or(i64::MAX),
        );
        let tx = self.store.begin().await?;
        // A sync pass may be running: it resumes the post-MX pass when it ends, from
        // the switch time recorded here.
        let waiting = m.status == MigrationStatus::WaitingForMx;
        let step = Step {
            from: m.status,
            to: m.status,
            change: StatusChange {
                mx_switched_at: Some(Some(now)),
                next_run_at: waiting.then_some(Some(now + grace)),
                ..Default::default()
            },
            action: "migration.mx_switched",
            detail: json!({ "why": why, "post_mx_at": now + grace }),
            email: None,
        };
        if !self.write_step(&tx, actor, m, step, now).await? {
            return Ok(false);
        }
        tx.commit().await?;
        tracing::info!(migration = m.id, why, "MX switched");
        self.wake_workers();
        Ok(true)
    }

    /// Erases the passwords of migrations finished longer ago than the retention.
    pub async fn purge_credentials(&self) -> ServiceResult<u64> {
        let now = Utc::now();
        let before =
            now - chrono::Duration::days(i64::from(self.settings().retention.credential_days));
        let mut purged = 0;
        for id in self.store.migrations_to_purge(before).await? {
            let tx = self.store.begin().await?;
            if tx.purge_credentials(id, now).await? {
                audit(&tx, id, "migration.credentials_purged", json!({}), now).await?;
                purged += 1;
            }
            tx.commit().await?;
        }
        if purged > 0 {
            tracing::info!(n_migrations = purged, "Stored passwords erased");
        }
        Ok(purged)
    }

    /// Renders an email about `m` to the requester and staff and queues it in `tx`.
    pub(super) async fn enqueue(
        &self,
        tx: &Tx,
        m: &Migration,
        news: &MigrationNews,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let requester = EmailAddress::parse("requester_email", &m.requester_email)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let facts = self.migration_facts(m);
        let email = self.renderer.email(
            self.recipients(&requester),
            &MigrationEmail {
                facts: &facts,
                news,
            },
            Some(("migration", m.id.to_string())),
        )?;
        tx.enqueue_email(email, now).await?;
        Ok(())
    }
}

impl PassEnd {
    fn ended(status: &'static str, report: Option<Value>) -> Self {
        PassEnd {
            status,
            report,
            copied: 0,
            skipped: 0,
            failed: 0,
            bytes: 0,
        }
    }

    /// A pass left open by a crash that a different work replaced.
    fn abandoned() -> Self {
        Self::ended("failed", None)
    }

    fn from_report(status: &'static str, report: &Report, json: Value) -> Self {
        PassEnd {
            status,
            report: Some(json),
            copied: report.totals.copied,
            skipped: report.totals.skipped,
            failed: report.totals.failed,
            bytes: report.totals.bytes,
        }
    }
}

/// An error of Ferry's own making (its database), not of the servers.
fn is_ours(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<crate::store::StoreError>().is_some())
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

fn pass_facts(pass: &Pass) -> PassFacts {
    let label = PassKind::parse(&pass.kind).map_or("pass", PassKind::label);
    PassFacts {
        number: pass.number,
        kind: pass.kind.clone(),
        label: label.to_owned(),
    }
}

fn human_duration(seconds: u64) -> String {
    match seconds {
        0 => "right".into(),
        s if s % 3600 == 0 => format!("{} hour{}", s / 3600, if s == 3600 { "" } else { "s" }),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// One step of a migration's life: its status moved by compare-and-set from `from`,
/// the audit event, and the email about it when one is due.
pub(super) struct Step {
    pub from: MigrationStatus,
    pub to: MigrationStatus,
    pub change: StatusChange,
    pub action: &'static str,
    pub detail: Value,
    /// The email about it, when one is due.
    pub email: Option<MigrationNews>,
}

impl Services {
    /// Writes `step` of `m` in `tx`, as `actor`. False when the migration had moved on
    /// meanwhile: nothing is written, and the caller drops (or commits) `tx`.
    pub(super) async fn write_step(
        &self,
        tx: &Tx,
        actor: &Actor,
        m: &Migration,
        step: Step,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        if !tx
            .change_migration_status(m.id, step.from, step.to, step.change, now)
            .await?
        {
            return Ok(false);
        }
        audit_as(tx, actor, m.id, step.action, step.detail, now).await?;
        if let Some(news) = step.email {
            let mut after = m.clone();
            after.status = step.to;
            self.enqueue(tx, &after, &news, now).await?;
        }
        Ok(true)
    }
}

pub(super) async fn audit(
    tx: &Tx,
    id: i64,
    action: &'static str,
    detail: Value,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    audit_as(tx, &WORKER, id, action, detail, now).await
}

pub(super) async fn audit_as(
    tx: &Tx,
    actor: &Actor,
    id: i64,
    action: &'static str,
    detail: Value,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut event = NewAuditEvent::new(actor, action);
    event.subject = Some(("migration", id.to_string()));
    event.detail = detail;
    tx.audit(event, now).await?;
    Ok(())
}
