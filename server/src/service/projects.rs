//! Projects: many mailboxes moved as one. A project is made from a list's rows (a
//! ticket's, an upload's, typed, or the API's JSON) checked by the list's rules with
//! the project's defaults (requester, time zone, window, options); its ready rows
//! become ordinary migrations that name it. Its ID is readable aloud, its password
//! kept only as an argon2 hash and shown once. Actions on the whole project (pause,
//! resume, sync, MX switched for a domain, retry the failed, cancel, approve) are the
//! single migration's actions applied to each mailbox they fit. A cron job sends its
//! daily digest and, once every mailbox is finished, its completion report.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::lists::{CheckedList, RowReport};
use super::{ServiceError, ServiceResult, Services};
use crate::crypto;
use crate::domain::{
    self, Actor, EmailAddress, ErrorCode, FieldError, ItemPolicy, ListedRequest, MailboxProgress,
    Migration, MigrationId, MigrationKind, MigrationRequest, MigrationStatus, NewAuditEvent,
    Parsed, Project, ProjectCode, ProjectCounts, ProjectId, ProjectOptions, ProjectStatus,
    ProjectTotals, ServerInput, TicketId,
};
use crate::render::emails::{ProjectEmail, ProjectLine, ProjectNews};
use crate::store::{NewProject, ProjectChange, ProjectFilter, StoreError};

/// The shortest project password a requester may choose.
pub const MIN_PROJECT_PASSWORD: usize = 10;
/// The most mailboxes of one project copying at once.
pub const MAX_PROJECT_CONCURRENCY: u32 = 64;

/// A project as asked for, before its checks.
#[derive(Debug, Clone, Default)]
pub struct ProjectInput {
    pub name: String,
    pub requester_email: String,
    /// UTC when not given.
    pub time_zone: Option<String>,
    pub options: ProjectOptions,
    /// A local time in `time_zone` (`2026-12-04T22:00`); a row may give its own.
    pub window: Option<String>,
    /// `capacity.project_concurrency` when not given.
    pub concurrency: Option<u32>,
    /// Generated when not given.
    pub password: Option<SecretString>,
    /// Rows without a window (and a project without one) start as soon as they are
    /// checked: staff in the console, a token with `migrations:override`.
    pub may_override: bool,
}

/// A project made: its record, the password when Ferry generated it (shown once), and
/// every row's report with the migration made from it.
#[derive(Debug)]
pub struct ProjectMade {
    pub project: Project,
    pub password: Option<SecretString>,
    pub rows: Vec<RowReport>,
}

/// A project with its mailboxes, each one's progress, and where it stands.
#[derive(Debug, Clone)]
pub struct ProjectView {
    pub project: Project,
    pub status: ProjectStatus,
    pub counts: ProjectCounts,
    pub migrations: Vec<(Migration, MailboxProgress)>,
    pub totals: ProjectTotals,
}

/// What a whole-project action asks of each mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectAction {
    Pause,
    Resume,
    /// Another delta pass now, for each mailbox waiting for its MX or complete.
    Sync,
    /// The MX of this domain now points at the provider.
    MxSwitched(String),
    RetryFailed,
    Cancel,
    /// Staff approve a customer's own request: its mailboxes start.
    Approve,
}

impl ProjectAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Sync => "sync",
            Self::MxSwitched(_) => "mx_switched",
            Self::RetryFailed => "retry_failed",
            Self::Cancel => "cancel",
            Self::Approve => "approve",
        }
    }
}

/// What a whole-project action did: the mailboxes it moved, and those it left with
/// the reason.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActionReport {
    pub changed: Vec<MigrationId>,
    pub skipped: Vec<(MigrationId, String)>,
}

/// A row's contacts or calendars: the same accounts as its mail, the source on the
/// project's DAV server (or the row's own host, to discover it from), the destination
/// on the provider's (`provider.dav_url`), with the project's policy.
fn items_request(
    mail: &MigrationRequest,
    kind: MigrationKind,
    options: &ProjectOptions,
) -> MigrationRequest {
    let dav_url = options
        .dav_url
        .clone()
        .or_else(|| Some(mail.source.host.trim().to_owned()).filter(|h| !h.is_empty()));
    let dest_username = match mail.destination.username.trim() {
        "" => mail.source.username.clone(),
        given => given.to_owned(),
    };
    let policy = match (kind, options.policy) {
        (MigrationKind::Calendars, ItemPolicy::Merge) => ItemPolicy::Skip,
        (_, policy) => policy,
    };
    MigrationRequest {
        kind: Some(Ok(kind)),
        source: ServerInput {
            dav_url,
            username: mail.source.username.clone(),
            password: mail.source.password.clone(),
            ..Default::default()
        },
        destination: ServerInput {
            username: dest_username,
            password: mail.destination.password.clone(),
            ..Default::default()
        },
        policy: Some(Ok(policy)),
        window_start: mail.window_start.clone(),
        time_zone: mail.time_zone.clone(),
        requester_email: mail.requester_email.clone(),
        customer_ref: mail.customer_ref.clone(),
        ticket: mail.ticket,
        ..Default::default()
    }
}

/// The project's checked fields.
pub(super) struct Checked {
    name: String,
    requester: EmailAddress,
    tz: Tz,
    window: Option<DateTime<Utc>>,
    concurrency: u32,
}

impl Services {
    /// The project's own fields, each error under its name.
    fn check_project(
        &self,
        input: &ProjectInput,
        errors: &mut Vec<FieldError>,
    ) -> anyhow::Result<Option<Checked>> {
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            errors.push(FieldError::new(
                "name",
                "give the project a name of one line, at most 200 characters",
            ));
        }
        let requester = EmailAddress::parse("requester_email", &input.requester_email)
            .map_err(|e| errors.push(e))
            .ok();
        let zone = input
            .time_zone
            .as_deref()
            .filter(|z| !z.trim().is_empty())
            .map(|z| domain::time_zone("time_zone", z));
        let window = input
            .window
            .as_deref()
            .filter(|w| !w.trim().is_empty())
            .map(|w| domain::local_time("window", w));
        let mut window_errors = Vec::new();
        let (window, tz) = self.check_window(
            self.now(),
            window.as_ref(),
            zone.as_ref(),
            true,
            &mut window_errors,
        )?;
        errors.extend(window_errors.into_iter().map(|e| FieldError {
            field: if e.field == "window.start" {
                "window"
            } else {
                e.field
            },
            ..e
        }));
        let concurrency = input
            .concurrency
            .unwrap_or(self.settings().capacity.project_concurrency);
        if !(1..=MAX_PROJECT_CONCURRENCY).contains(&concurrency) {
            errors.push(FieldError::new(
                "concurrency",
                format!("give between 1 and {MAX_PROJECT_CONCURRENCY} mailboxes at once"),
            ));
        }
        if let Some(password) = &input.password
            && password.expose_secret().chars().count() < MIN_PROJECT_PASSWORD
        {
            errors.push(FieldError::new(
                "password",
                format!(
                    "a project password has at least {MIN_PROJECT_PASSWORD} characters; leave it empty and Ferry makes one"
                ),
            ));
        }
        Ok(requester.map(|requester| Checked {
            name: name.to_owned(),
            requester,
            tz,
            window,
            concurrency,
        }))
    }

    /// Each row with the project's defaults where it gives none: requester, time zone,
    /// window, and the project's options.
    fn with_project_defaults(
        rows: Vec<ListedRequest>,
        requester: &str,
        tz: Tz,
        window: Option<DateTime<Utc>>,
        options: &ProjectOptions,
    ) -> Vec<ListedRequest> {
        rows.into_iter()
            .map(|mut row| {
                let r = &mut row.request;
                if r.requester_email.is_none() {
                    r.requester_email = Some(EmailAddress::parse("requester_email", requester));
                }
                if r.window_start.is_none()
                    && let Some(at) = window
                {
                    r.window_start = Some(Ok(at.with_timezone(&tz).naive_local()));
                    r.time_zone = Some(Ok(tz));
                }
                if r.time_zone.is_none() {
                    r.time_zone = Some(Ok(tz));
                }
                r.mode = Some(Ok(options.mode));
                r.duplicates = Some(Ok(options.duplicates));
                r.import_since = options.import_since.map(Ok::<_, FieldError>) as Option<Parsed<_>>;
                r.two_pass = Some(options.two_pass);
                let mut made: Vec<MigrationRequest> = options
                    .kinds()
                    .into_iter()
                    .map(|kind| match kind {
                        MigrationKind::Mail => row.request.clone(),
                        _ => items_request(&row.request, kind, options),
                    })
                    .collect();
                if !made.is_empty() {
                    row.request = made.remove(0);
                }
                row.also = made;
                row
            })
            .collect()
    }

    /// The project's fields checked, then its rows with its defaults, each checked
    /// once: what a preview answers and what `make_project` makes. The rows are
    /// answered as checked (with the project's defaults), for checks of the caller's.
    pub(super) async fn check_project_rows(
        &self,
        actor: &Actor,
        input: &ProjectInput,
        rows: Vec<ListedRequest>,
    ) -> ServiceResult<(Checked, Vec<ListedRequest>, CheckedList)> {
        let mut errors = Vec::new();
        if rows.is_empty() {
            errors.push(FieldError::new(
                "rows",
                "a project needs at least one mailbox: give rows or a file",
            ));
        }
        let checked = self.check_project(input, &mut errors)?;
        let Some(checked) = checked.filter(|_| errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        let rows = Self::with_project_defaults(
            rows,
            checked.requester.as_str(),
            checked.tz,
            checked.window,
            &input.options,
        );
        let list = self
            .check_list(actor, input.may_override, rows.clone())
            .await?;
        Ok((checked, rows, list))
    }

    /// Checks a project and its rows; creates nothing.
    pub async fn preview_project(
        &self,
        actor: &Actor,
        input: &ProjectInput,
        rows: Vec<ListedRequest>,
    ) -> ServiceResult<Vec<RowReport>> {
        let (_, _, list) = self.check_project_rows(actor, input, rows).await?;
        Ok(list.into_reports())
    }

    /// Makes a project and a migration of each ready row (paused until approved when
    /// `approved` is false). Refused, with every row's report, when no row is ready.
    pub async fn create_project(
        &self,
        actor: &Actor,
        input: ProjectInput,
        rows: Vec<ListedRequest>,
        ticket: Option<TicketId>,
        approved: bool,
    ) -> ServiceResult<ProjectMade> {
        let (checked, _, list) = self.check_project_rows(actor, &input, rows).await?;
        self.make_project(actor, input, checked, list, ticket, approved)
            .await
    }

    /// Makes a checked project of its checked rows' ready ones.
    pub(super) async fn make_project(
        &self,
        actor: &Actor,
        input: ProjectInput,
        checked: Checked,
        list: CheckedList,
        ticket: Option<TicketId>,
        approved: bool,
    ) -> ServiceResult<ProjectMade> {
        if !list.any_ready() {
            return Err(list.none_ready());
        }
        let rows_asked = list.reports().count();
        let (password, generated) = match input.password {
            Some(p) => (p, false),
            None => (crypto::random_password()?, true),
        };
        let hash = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || crypto::hash_password(&password))
                .await
                .map_err(anyhow::Error::from)??
        };
        let now = self.now();
        let tx = self.store.begin().await?;
        let mut attempt = 0;
        let project = loop {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("No randomness: {e}"))?;
            let new = NewProject {
                code: ProjectCode::from_random(bytes),
                name: checked.name.clone(),
                requester_email: checked.requester.as_str().to_owned(),
                time_zone: checked.tz.name().to_owned(),
                options: input.options.clone(),
                window_start: checked.window,
                concurrency: checked.concurrency,
                password_hash: hash.clone(),
                created_by: actor.to_string(),
                ticket,
                approved,
            };
            match tx.insert_project(new, now).await {
                Err(StoreError::Duplicate(_)) if attempt < 5 => attempt += 1,
                other => break other?,
            }
        };
        tx.audit(
            NewAuditEvent::new(actor, "project.created")
                .subject("project", project.code.as_str())
                .detail(serde_json::json!({
                    "name": project.name, "rows": rows_asked, "approved": approved,
                    "password_generated": generated,
                })),
            now,
        )
        .await?;
        tx.commit().await?;
        let rows = self
            .admit_list(actor, list, ticket, Some((project.id, !approved)))
            .await?;
        let view = self.project_view(project.id).await?;
        self.send_project_email(&view, ProjectNews::Created, None)
            .await?;
        if generated {
            self.send_project_email(
                &view,
                ProjectNews::Password,
                Some(password.expose_secret().to_owned()),
            )
            .await?;
        }
        tracing::info!(project = %project.code, %actor, mailboxes = view.migrations.len(), "Project created");
        Ok(ProjectMade {
            project,
            password: generated.then_some(password),
            rows,
        })
    }

    /// Adds mailboxes to a project (or, with `preview`, only checks them); rows
    /// without a window start at once only with `may_override`.
    pub async fn add_project_rows(
        &self,
        actor: &Actor,
        id: ProjectId,
        rows: Vec<ListedRequest>,
        preview: bool,
        may_override: bool,
    ) -> ServiceResult<Vec<RowReport>> {
        let project = self.load_project(id).await?;
        let tz: Tz = project.time_zone.parse().unwrap_or(chrono_tz::UTC);
        let rows = Self::with_project_defaults(
            rows,
            &project.requester_email,
            tz,
            project.window_start,
            &project.options,
        );
        if preview {
            return self.preview_list_as(actor, may_override, rows).await;
        }
        let paused = project.approved_at.is_none() || project.paused_at.is_some();
        let reports = self
            .request_list_in(
                actor,
                rows,
                project.ticket,
                Some((project.id, paused)),
                may_override,
            )
            .await?;
        let added = reports.iter().filter(|r| !r.migrations.is_empty()).count();
        let now = self.now();
        let tx = self.store.begin().await?;
        // A finished project with new mailboxes reports its completion again.
        if added > 0 {
            tx.change_project(
                id,
                ProjectChange {
                    completed_at: Some(None),
                    ..Default::default()
                },
            )
            .await?;
        }
        tx.audit(
            NewAuditEvent::new(actor, "project.rows_added")
                .subject("project", project.code.as_str())
                .detail(serde_json::json!({ "rows": reports.len(), "added": added })),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(reports)
    }

    async fn load_project(&self, id: ProjectId) -> ServiceResult<Project> {
        self.store
            .get_project(id)
            .await?
            .ok_or(ServiceError::NotFound("project"))
    }

    /// A project by the code a person typed.
    pub async fn project_by_code(&self, code: &str) -> ServiceResult<Project> {
        let code = ProjectCode::parse("project_id", code)
            .map_err(|_| ServiceError::NotFound("project"))?;
        self.store
            .project_by_code(&code)
            .await?
            .ok_or(ServiceError::NotFound("project"))
    }

    pub async fn project_view(&self, id: ProjectId) -> ServiceResult<ProjectView> {
        let project = self.load_project(id).await?;
        let migrations = self.store.migrations_of_project(id).await?;
        self.view_of(project, migrations).await
    }

    async fn view_of(
        &self,
        project: Project,
        migrations: Vec<Migration>,
    ) -> ServiceResult<ProjectView> {
        let counts = ProjectCounts::of(&migrations);
        let ids: Vec<MigrationId> = migrations.iter().map(|m| m.id).collect();
        let folders = self.store.folders_of(&ids).await?;
        let passes = self.store.passes_of(&ids).await?;
        let now = self.now();
        let migrations: Vec<(Migration, MailboxProgress)> = migrations
            .into_iter()
            .map(|m| {
                let progress = MailboxProgress::of(
                    folders.get(&m.id).map_or(&[][..], Vec::as_slice),
                    passes.get(&m.id).map_or(&[][..], Vec::as_slice),
                    now,
                );
                (m, progress)
            })
            .collect();
        let totals = ProjectTotals::of(migrations.iter().map(|(_, p)| p));
        Ok(ProjectView {
            status: project.status(&counts),
            project,
            counts,
            migrations,
            totals,
        })
    }

    /// A page of projects, each with where it stands.
    pub async fn list_projects(
        &self,
        filter: &ProjectFilter,
    ) -> ServiceResult<(Vec<ProjectView>, u64)> {
        let (projects, total) = self.store.list_projects(filter).await?;
        let mut views = Vec::with_capacity(projects.len());
        for project in projects {
            let migrations = self.store.migrations_of_project(project.id).await?;
            views.push(self.view_of(project, migrations).await?);
        }
        Ok((views, total))
    }

    /// Applies `action` to each mailbox of the project it fits; the others are
    /// reported with the reason.
    pub async fn project_action(
        &self,
        actor: &Actor,
        id: ProjectId,
        action: ProjectAction,
    ) -> ServiceResult<ActionReport> {
        let project = self.load_project(id).await?;
        let now = self.now();
        let change = match action {
            ProjectAction::Pause => ProjectChange {
                paused_at: Some(Some(now)),
                ..Default::default()
            },
            ProjectAction::Resume => ProjectChange {
                paused_at: Some(None),
                ..Default::default()
            },
            ProjectAction::Approve => ProjectChange {
                approved_at: Some(Some(project.approved_at.unwrap_or(now))),
                paused_at: Some(None),
                ..Default::default()
            },
            ProjectAction::RetryFailed | ProjectAction::Sync => ProjectChange {
                completed_at: Some(None),
                ..Default::default()
            },
            _ => ProjectChange::default(),
        };
        // The project's state first, so that a mailbox added meanwhile is made in it.
        let tx = self.store.begin().await?;
        tx.change_project(id, change).await?;
        tx.audit(
            NewAuditEvent::new(actor, "project.action")
                .subject("project", project.code.as_str())
                .detail(serde_json::json!({ "action": action.name() })),
            now,
        )
        .await?;
        tx.commit().await?;
        let mut report = ActionReport::default();
        for m in self.store.migrations_of_project(id).await? {
            let done = match &action {
                ProjectAction::Pause if m.status.is_active() => {
                    Some(self.pause_migration(actor, m.id).await)
                }
                ProjectAction::Resume | ProjectAction::Approve
                    if m.status == MigrationStatus::Paused =>
                {
                    Some(self.resume_migration(actor, m.id).await)
                }
                ProjectAction::Sync
                    if matches!(
                        m.status,
                        MigrationStatus::WaitingForMx | MigrationStatus::Completed
                    ) =>
                {
                    Some(self.sync_migration(actor, m.id, false).await)
                }
                ProjectAction::MxSwitched(domain)
                    if m.status == MigrationStatus::WaitingForMx
                        && m.mx_domain.eq_ignore_ascii_case(domain.trim()) =>
                {
                    Some(self.migration_mx_switched(actor, m.id).await)
                }
                ProjectAction::RetryFailed if m.status == MigrationStatus::Failed => {
                    Some(self.retry_migration(actor, m.id, false).await)
                }
                ProjectAction::Cancel if m.status.is_active() => Some(
                    self.cancel_migration(
                        actor,
                        m.id,
                        Some("the project was cancelled".into()),
                        false,
                    )
                    .await,
                ),
                _ => None,
            };
            match done {
                Some(Ok(_)) => report.changed.push(m.id),
                Some(Err(err @ (ServiceError::Conflict { .. } | ServiceError::Invalid(_)))) => {
                    report.skipped.push((m.id, err.to_string()));
                }
                Some(Err(err)) => return Err(err),
                None => report
                    .skipped
                    .push((m.id, format!("it is {}", m.status.words()))),
            }
        }
        Ok(report)
    }

    /// Deletes a project whose mailboxes are all finished, with their records.
    pub async fn delete_project(&self, actor: &Actor, id: ProjectId) -> ServiceResult<()> {
        let view = self.project_view(id).await?;
        if view.counts.active > 0 {
            return Err(ServiceError::Conflict {
                code: ErrorCode::ProjectActive,
                message: format!(
                    "{} of its mailboxes are in progress; cancel the project first.",
                    view.counts.active
                ),
            });
        }
        for (m, _) in &view.migrations {
            self.delete_migration(actor, m.id).await?;
        }
        let tx = self.store.begin().await?;
        tx.delete_project(id).await?;
        tx.audit(
            NewAuditEvent::new(actor, "project.deleted")
                .subject("project", view.project.code.as_str()),
            self.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives a project a new password (the customer's, or staff's on their behalf).
    pub async fn set_project_password(
        &self,
        actor: &Actor,
        id: ProjectId,
        password: SecretString,
    ) -> ServiceResult<()> {
        if password.expose_secret().chars().count() < MIN_PROJECT_PASSWORD {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "password",
                format!("a project password has at least {MIN_PROJECT_PASSWORD} characters"),
            )]));
        }
        let project = self.load_project(id).await?;
        let hash = tokio::task::spawn_blocking(move || crypto::hash_password(&password))
            .await
            .map_err(anyhow::Error::from)??;
        let tx = self.store.begin().await?;
        tx.change_project(
            id,
            ProjectChange {
                password_hash: Some(hash),
                ..Default::default()
            },
        )
        .await?;
        tx.audit(
            NewAuditEvent::new(actor, "project.password_changed")
                .subject("project", project.code.as_str()),
            self.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The project's tracking page for its customer.
    fn project_url(&self) -> String {
        format!("{}/track", self.settings().base_url())
    }

    /// Queues one of a project's emails to its requester (and a copy to staff).
    async fn send_project_email(
        &self,
        view: &ProjectView,
        news: ProjectNews,
        password: Option<String>,
    ) -> ServiceResult<()> {
        let now = self.now();
        let tx = self.store.begin().await?;
        tx.write_first().await?;
        self.enqueue_project_email(&tx, view, news, password, now)
            .await?;
        tx.commit().await?;
        self.dispatcher.wake();
        Ok(())
    }

    async fn enqueue_project_email(
        &self,
        tx: &crate::store::Tx,
        view: &ProjectView,
        news: ProjectNews,
        password: Option<String>,
        now: DateTime<Utc>,
    ) -> ServiceResult<()> {
        let (project, counts) = (&view.project, &view.counts);
        let settings = self.settings();
        let tz: Tz = project.time_zone.parse().unwrap_or(chrono_tz::UTC);
        let email = ProjectEmail {
            news,
            name: project.name.clone(),
            code: project.code.to_string(),
            url: self.project_url(),
            window: project.window_start.map(|w| {
                w.with_timezone(&tz)
                    .format("%A %-d %B %Y at %H:%M %Z")
                    .to_string()
            }),
            awaiting_approval: project.approved_at.is_none(),
            password,
            mailboxes: view
                .migrations
                .iter()
                .map(|(m, progress)| ProjectLine {
                    mailbox: match m.kind {
                        MigrationKind::Mail => m.source.username().to_owned(),
                        kind => format!("{} ({})", m.source.username(), kind.as_str()),
                    },
                    status: project_status_words(m.status).into(),
                    copied: progress.copied,
                    failed: progress.failed,
                    problem: m.error_message.clone(),
                })
                .collect(),
            completed: counts.completed,
            failed: counts.failed,
            active: counts.active,
            provider_name: settings.provider.name.clone(),
            support_contact: settings.provider.support_contact.clone(),
        };
        let about = Some(("project", project.code.to_string()));
        let requester = EmailAddress::parse("requester_email", &project.requester_email)
            .map_err(|e| ServiceError::Invalid(vec![e]))?;
        let mut mail = self
            .renderer
            .email(vec![requester], &email, about.clone())?;
        if let Some(ticket) = project.ticket {
            mail = self.threaded(tx, ticket, mail).await?;
        }
        tx.enqueue_email(mail, now).await?;
        // Staff get every project email but the password.
        if news != ProjectNews::Password
            && let Some(staff) = self.staff_address()
        {
            tx.enqueue_email(self.renderer.email(vec![staff], &email, about)?, now)
                .await?;
        }
        Ok(())
    }

    /// The cron job's look at projects in progress: a finished one gets its completion
    /// report (once), a running one its daily digest when it asked for one.
    pub async fn project_reports(&self) -> ServiceResult<usize> {
        let mut sent = 0;
        for project in self.store.projects_in_progress().await? {
            // Where it stands from its migrations alone; their progress is read only
            // for an email that is due.
            let migrations = self.store.migrations_of_project(project.id).await?;
            let now = self.now();
            let (news, change) = match project.status(&ProjectCounts::of(&migrations)) {
                ProjectStatus::Finished => (
                    ProjectNews::Completed,
                    ProjectChange {
                        completed_at: Some(Some(now)),
                        ..Default::default()
                    },
                ),
                ProjectStatus::Running
                    if project.options.digest
                        && project.digest_at.unwrap_or(project.created_at)
                            <= now - chrono::Duration::hours(24) =>
                {
                    (
                        ProjectNews::Digest,
                        ProjectChange {
                            digest_at: Some(Some(now)),
                            ..Default::default()
                        },
                    )
                }
                _ => continue,
            };
            let view = self.view_of(project.clone(), migrations).await?;
            let tx = self.store.begin().await?;
            tx.change_project(project.id, change).await?;
            self.enqueue_project_email(&tx, &view, news, None, now)
                .await?;
            tx.audit(
                NewAuditEvent::new(&Actor::System, "project.reported")
                    .subject("project", view.project.code.as_str())
                    .detail(serde_json::json!({ "news": news })),
                now,
            )
            .await?;
            tx.commit().await?;
            sent += 1;
        }
        if sent > 0 {
            self.dispatcher.wake();
        }
        Ok(sent)
    }
}

/// A mailbox's status in a project's emails and customer page.
pub fn project_status_words(status: MigrationStatus) -> &'static str {
    use MigrationStatus as S;
    match status {
        S::Pending | S::Validating => "checking its accounts",
        S::Scheduled => "scheduled",
        S::Processing => "copying",
        S::WaitingForMx => "waiting for the MX change",
        S::Paused => "paused",
        S::Completed => "complete",
        S::Failed => "stopped on a problem",
        S::Cancelled => "stopped",
    }
}
