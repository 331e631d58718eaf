//! A pass of the engine under a worker: the pass row (resumed after a crash), the
//! engine with the database's checkpoints and progress, the proof that the folders add
//! up, and the next step with its email.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::progress::{DbCheckpoints, DbProgress, LeaseLost};
use super::runner::{Runner, WorkOutcome, is_ours};
use crate::connectors::net::Pulse;
use crate::domain::{
    ErrorCode, ImapEndpoint, Migration, MigrationKind, MigrationStatus, Pass, PassKind, Work,
};
use crate::planner::folders::Selection;
use crate::render::emails::{MigrationNews, Overall, PassFacts};
use crate::service::Step;
use crate::store::{FolderCounts, PassEnd, StatusChange};
use crate::sync::checkpoint::CheckpointStore;
use crate::sync::mail::{self, MailJob, MigrateError, Report};

impl Runner {
    pub(super) async fn run_pass(
        &self,
        m: Migration,
        kind: PassKind,
        holder: &str,
        stop: CancellationToken,
        pulse: &Pulse,
    ) -> anyhow::Result<WorkOutcome> {
        let purged = "its stored passwords were erased after the retention period; request the migration again";
        let mail_sides = if m.kind == MigrationKind::Mail {
            let Some(sides) = self.endpoints(&m).await? else {
                return self
                    .fail(
                        &m,
                        m.status,
                        Work::Pass(kind),
                        ErrorCode::CredentialsPurged,
                        purged.into(),
                        None,
                    )
                    .await;
            };
            Some(sides)
        } else {
            None
        };
        let Some(pass) = self.begin_pass(&m, kind).await? else {
            return Ok(WorkOutcome::Stopped);
        };
        tracing::Span::current().record("pass", pass.number);
        let job = match mail_sides {
            Some((source, dest)) => Job::Mail(self.mail_job(&m, source, dest, &pass, pulse)),
            None => match self.items_job(&m, pass.number, pulse).await? {
                Ok(Some(job)) => Job::Items(job),
                failed => {
                    let (code, message) = failed
                        .err()
                        .unwrap_or((ErrorCode::CredentialsPurged, purged.into()));
                    self.close_pass(&pass, PassEnd::ended("failed", None), self.now())
                        .await?;
                    return self
                        .fail(
                            &m,
                            MigrationStatus::Processing,
                            Work::Pass(kind),
                            code,
                            message,
                            None,
                        )
                        .await;
                }
            },
        };
        let checkpoints = self.checkpoints(&m, holder);
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
        let progress = DbProgress::new(self.store().clone(), m.id, self.clock().clone(), base);
        let flusher = tokio::spawn(Arc::clone(&progress).run_flusher());
        let result = tokio::select! {
            () = stop.cancelled() => None,
            result = job.run(&checkpoints, progress.as_ref()) => Some(result),
        };
        progress.finish();
        flusher.await.ok();
        let now = self.now();
        match result {
            // Cancelled (the action already moved the status) or the lease was lost
            // (another worker goes on from the checkpoints).
            None => {
                self.pass_stopped(&m, &pass, &checkpoints, progress.bytes(), now)
                    .await
            }
            Some(Err(err)) => self.pass_failed(&m, kind, &pass, err, now).await,
            Some(Ok(report)) => {
                let report = self
                    .whole_pass_counts(&checkpoints, pass.number, report)
                    .await?;
                if report.adds_up() {
                    self.pass_succeeded(&m, kind, &pass, &report, now).await
                } else {
                    self.pass_incomplete(&m, kind, &pass, &report, now).await
                }
            }
        }
    }

    /// The pass a crash interrupted, going on under its own number; otherwise a new one,
    /// with its step and email. `None` when the migration moved on meanwhile.
    async fn begin_pass(&self, m: &Migration, kind: PassKind) -> anyhow::Result<Option<Pass>> {
        let now = self.now();
        let open = self.store().open_pass(m.id).await?;
        if let Some(open) = open
            .as_ref()
            .filter(|open| open.kind == kind.as_str() && m.status == MigrationStatus::Processing)
        {
            tracing::info!(migration = %m.id, pass = open.number, "Resuming an interrupted pass");
            return Ok(Some(open.clone()));
        }
        // A pass paused and resumed: copying again, under its own number.
        if let Some(open) = open
            .as_ref()
            .filter(|open| open.kind == kind.as_str() && m.status == MigrationStatus::Scheduled)
        {
            let tx = self.store().begin().await?;
            let step = Step {
                from: m.status,
                to: MigrationStatus::Processing,
                change: StatusChange::default(),
                action: "migration.pass_resumed",
                detail: json!({ "pass": open.number, "kind": kind.as_str() }),
                email: None,
            };
            if !self.write_step(&tx, m, step, now).await? {
                return Ok(None);
            }
            tx.commit().await?;
            tracing::info!(migration = %m.id, pass = open.number, "Resuming a paused pass");
            return Ok(Some(open.clone()));
        }
        let tx = self.store().begin().await?;
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
        if !self.write_step(&tx, m, step, now).await? {
            return Ok(None);
        }
        tx.commit().await?;
        self.dispatcher().wake();
        Ok(Some(pass))
    }

    /// The engine's job for this pass of `m`.
    fn mail_job(
        &self,
        m: &Migration,
        source: ImapEndpoint,
        dest: ImapEndpoint,
        pass: &Pass,
        pulse: &Pulse,
    ) -> MailJob {
        MailJob {
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
            clock: self.clock().clone(),
        }
    }

    /// The pass stopped before its end: closed as cancelled, with what it did copy (its
    /// entries in the ledger), when the migration was; left open for the worker that
    /// took the lease over otherwise.
    async fn pass_stopped(
        &self,
        m: &Migration,
        pass: &Pass,
        checkpoints: &DbCheckpoints,
        bytes: u64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<WorkOutcome> {
        if let Some(current) = self.store().get_migration(m.id).await?
            && current.status == MigrationStatus::Cancelled
        {
            let (copied, skipped) = checkpoints
                .load()
                .await?
                .folders
                .values()
                .map(|fs| fs.pass_counts(pass.number))
                .fold((0, 0), |(c, s), (copied, skipped)| {
                    (c + copied, s + skipped)
                });
            let end = PassEnd {
                copied,
                skipped,
                bytes,
                ..PassEnd::ended("cancelled", None)
            };
            let tx = self.store().begin().await?;
            tx.finish_pass(pass.id, &end, now).await?;
            tx.commit().await?;
        }
        Ok(WorkOutcome::Stopped)
    }

    /// The engine gave up: a server that cannot be reached or refuses the login fails
    /// the migration with that side and class; Ferry's own trouble is returned, so the
    /// lease runs out and the pass resumes from its checkpoints.
    async fn pass_failed(
        &self,
        m: &Migration,
        kind: PassKind,
        pass: &Pass,
        err: MigrateError,
        now: DateTime<Utc>,
    ) -> anyhow::Result<WorkOutcome> {
        let processing = MigrationStatus::Processing;
        match err {
            MigrateError::Connect(side, err) => {
                let (side, account) = match side {
                    mail::Side::Destination => ("destination", &m.dest),
                    mail::Side::Source => ("source", &m.source),
                };
                self.close_pass(pass, PassEnd::ended("failed", None), now)
                    .await?;
                self.connect_failed(m, processing, Work::Pass(kind), side, account, err)
                    .await
            }
            // A lease another worker took over is not the migration's trouble either:
            // `run_work` stops quietly.
            MigrateError::Other(err) if is_ours(&err) || LeaseLost::caused(&err) => Err(err),
            err => {
                self.close_pass(pass, PassEnd::ended("failed", None), now)
                    .await?;
                let code = ErrorCode::CopyFailed;
                self.fail(m, processing, Work::Pass(kind), code, err.to_string(), None)
                    .await
            }
        }
    }

    /// A pass that does not add up is never a success: failed, with the numbers, and
    /// Retry runs it again (what is missing is copied, nothing twice).
    async fn pass_incomplete(
        &self,
        m: &Migration,
        kind: PassKind,
        pass: &Pass,
        report: &Report,
        now: DateTime<Utc>,
    ) -> anyhow::Result<WorkOutcome> {
        let json = serde_json::to_value(report)?;
        self.close_pass(pass, PassEnd::from_report("incomplete", report, json), now)
            .await?;
        let message = format!(
            "the copy does not add up, so it is not reported as done: {}. Retry copies what is missing.",
            report.unaccounted_summary()
        );
        let processing = MigrationStatus::Processing;
        self.fail(
            m,
            processing,
            Work::Pass(kind),
            ErrorCode::Incomplete,
            message,
            None,
        )
        .await
    }

    /// A pass resumed after a crash reports what the whole pass did, not only its
    /// last run: copies and skips are counted from the ledger, which records the pass
    /// of each entry.
    pub(super) async fn whole_pass_counts(
        &self,
        checkpoints: &DbCheckpoints,
        pass: u32,
        mut report: Report,
    ) -> anyhow::Result<Report> {
        let state = checkpoints.load().await?;
        let now = self.now();
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
            self.store()
                .folder_progress(checkpoints.migration_id, &folder.source_path, &counts, now)
                .await?;
        }
        let t = &mut report.totals;
        t.copied = report.folders.iter().map(|f| f.copied).sum();
        t.skipped = report.folders.iter().map(|f| f.skipped).sum();
        t.expected = report.folders.iter().map(|f| f.expected).sum();
        Ok(report)
    }
    pub(super) async fn close_pass(
        &self,
        pass: &Pass,
        end: PassEnd,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let tx = self.store().begin().await?;
        tx.finish_pass(pass.id, &end, now).await?;
        tx.commit().await?;
        Ok(())
    }
    /// What `m` copied over all its passes: the earlier ones as recorded, and `pass`
    /// as `report` says (its row is written in the same transaction as the email).
    async fn overall(
        &self,
        m: &Migration,
        pass: &Pass,
        report: &Report,
    ) -> anyhow::Result<Overall> {
        let mut overall = Overall {
            passes: 1,
            copied: report.totals.copied,
            skipped: report.totals.skipped,
            failed: report.totals.failed,
            bytes: report.totals.bytes,
        };
        for p in self.store().migration_passes(m.id).await? {
            if p.id != pass.id {
                overall.passes += 1;
                overall.copied += p.copied;
                overall.skipped += p.skipped;
                overall.failed += p.failed;
                overall.bytes += p.bytes;
            }
        }
        Ok(overall)
    }

    /// A pass ran to its end: the next step of the life, with its email.
    pub(super) async fn pass_succeeded(
        &self,
        m: &Migration,
        kind: PassKind,
        pass: &Pass,
        report: &Report,
        now: DateTime<Utc>,
    ) -> anyhow::Result<WorkOutcome> {
        let report_json = serde_json::to_value(report)?;
        let mx = &self.settings().mx;
        let (status, next_work, next_run_at) = after_pass(m, kind, mx.grace());
        let (pass_facts, report_value) = (pass_facts(pass), report_json.clone());
        let overall = self.overall(m, pass, report).await?;
        let email = match kind {
            PassKind::PreMx if status == MigrationStatus::WaitingForMx => MigrationNews::mx_needed(
                pass_facts,
                report_value,
                overall,
                human_duration(mx.grace_seconds),
            ),
            PassKind::Sync => MigrationNews::PassFinished {
                pass: pass_facts,
                report: report_value,
                overall,
            },
            PassKind::PreMx | PassKind::PostMx => MigrationNews::Completed {
                pass: pass_facts,
                report: report_value,
                overall,
            },
        };
        let finished = status == MigrationStatus::Completed;
        let tx = self.store().begin().await?;
        tx.finish_pass(
            pass.id,
            &PassEnd::from_report("succeeded", report, report_json),
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
        if !self.write_step(&tx, m, step, now).await? {
            // Cancelled at the last moment: the pass is done, the status stays.
            tx.commit().await?;
            return Ok(WorkOutcome::Stopped);
        }
        tx.commit().await?;
        self.dispatcher().wake();
        self.services().wake_workers();
        tracing::info!(migration = %m.id, pass = pass.number, copied = report.totals.copied, failed = report.totals.failed, next = %status, "Pass finished");
        Ok(WorkOutcome::Done)
    }
}

/// A pass's engine: the runner of the migration's kind.
enum Job {
    Mail(MailJob),
    Items(crate::sync::items::ItemsJob),
}

impl Job {
    async fn run(
        &self,
        checkpoints: &DbCheckpoints,
        progress: &DbProgress,
    ) -> Result<Report, MigrateError> {
        match self {
            Job::Mail(job) => mail::run(job, checkpoints, progress).await,
            Job::Items(job) => crate::sync::items::run(job, checkpoints, progress).await,
        }
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

/// Where a migration goes when a pass of `kind` ends well: its status, its next work
/// and when that is due. A pre-MX pass of a two-pass migration, or a synchronisation
/// pass run while it waited for the MX, waits for the MX (the post-MX pass follows the
/// switch by `grace`); anything else completes it.
fn after_pass(
    m: &Migration,
    kind: PassKind,
    grace: chrono::Duration,
) -> (MigrationStatus, Option<Work>, Option<DateTime<Utc>>) {
    let waits_for_mx = match kind {
        PassKind::PreMx => m.two_pass,
        PassKind::Sync => m.resume_work == Some(Work::Pass(PassKind::PostMx)),
        PassKind::PostMx => false,
    };
    if waits_for_mx {
        (
            MigrationStatus::WaitingForMx,
            Some(Work::Pass(PassKind::PostMx)),
            m.mx_switched_at.map(|at| at + grace),
        )
    } else {
        (MigrationStatus::Completed, None, None)
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
