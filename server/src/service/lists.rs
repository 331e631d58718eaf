//! A list of mailboxes (a file attached to a ticket, uploaded, or posted as rows):
//! every row checked by the rules a single request meets, plus two of its own (a
//! mailbox twice in the list, a mailbox already being moved), into a row report; then
//! the ready rows admitted one by one. A row with a problem is never started.

use std::collections::HashMap;

use super::request::HostChecks;
use super::{ServiceError, ServiceResult, Services};
use crate::domain::{
    Actor, FieldError, ListedRequest, Migration, MigrationKind, NewAuditEvent, ProjectId, TicketId,
    Upload, UploadId,
};
use crate::store::{NewMigration, NewUpload};

/// One row's verdict: ready when it has no problem.
#[derive(Debug, Clone)]
pub struct RowReport {
    pub row: usize,
    pub problems: Vec<FieldError>,
    /// The migrations made from it, once made: its mail first, then (in a project
    /// that moves them) its contacts and calendars.
    pub migrations: Vec<Migration>,
}

impl RowReport {
    pub fn ready(&self) -> bool {
        self.problems.is_empty()
    }

    /// The row's first migration (its mail's, unless the project moves no mail).
    pub fn migration(&self) -> Option<&Migration> {
        self.migrations.first()
    }
}

/// A list checked row by row: each row's report and, when it is ready, the migration
/// it makes. Checked once (every host resolved once), then admitted.
pub(super) struct CheckedList(Vec<(RowReport, Vec<NewMigration>)>);

impl CheckedList {
    pub(super) fn any_ready(&self) -> bool {
        self.0.iter().any(|(_, new)| !new.is_empty())
    }

    pub(super) fn reports(&self) -> impl Iterator<Item = &RowReport> {
        self.0.iter().map(|(report, _)| report)
    }

    pub(super) fn into_reports(self) -> Vec<RowReport> {
        self.0.into_iter().map(|(report, _)| report).collect()
    }

    /// The `i`th row gets `problem`, and so is not made.
    pub(super) fn refuse(&mut self, i: usize, problem: FieldError) {
        if let Some((report, new)) = self.0.get_mut(i) {
            report.problems.push(problem);
            new.clear();
        }
    }

    /// The answer when no row is ready: every row's problems, under `rows`.
    pub(super) fn none_ready(&self) -> ServiceError {
        let mut errors = vec![FieldError::new(
            "rows",
            "no row is ready; correct the rows' problems and send them again",
        )];
        for report in self.reports() {
            for p in &report.problems {
                errors.push(FieldError::new(
                    "rows",
                    format!("row {}: {}: {}", report.row, p.field, p.message),
                ));
            }
        }
        ServiceError::Invalid(errors)
    }
}

impl Services {
    /// Checks every row and answers each one's problems; creates nothing.
    pub async fn preview_list(
        &self,
        actor: &Actor,
        rows: Vec<ListedRequest>,
    ) -> ServiceResult<Vec<RowReport>> {
        self.preview_list_as(actor, false, rows).await
    }

    /// `preview_list`; rows without a window pass with `may_override`.
    pub async fn preview_list_as(
        &self,
        actor: &Actor,
        may_override: bool,
        rows: Vec<ListedRequest>,
    ) -> ServiceResult<Vec<RowReport>> {
        Ok(self
            .check_list(actor, may_override, rows)
            .await?
            .into_reports())
    }

    /// Checks every row, then admits the ready ones (each with its own "received"
    /// email, as a single request); a row the admission refuses (capacity, a mailbox
    /// taken meanwhile) gets that as its problem.
    pub async fn request_list(
        &self,
        actor: &Actor,
        rows: Vec<ListedRequest>,
        ticket: Option<TicketId>,
    ) -> ServiceResult<Vec<RowReport>> {
        self.request_list_in(actor, rows, ticket, None, false).await
    }

    /// `request_list`, the migrations made in a project (paused, when it is).
    pub(super) async fn request_list_in(
        &self,
        actor: &Actor,
        rows: Vec<ListedRequest>,
        ticket: Option<TicketId>,
        project: Option<(ProjectId, bool)>,
        may_override: bool,
    ) -> ServiceResult<Vec<RowReport>> {
        let checked = self.check_list(actor, may_override, rows).await?;
        self.admit_list(actor, checked, ticket, project).await
    }

    /// Admits a checked list's ready rows (each with its own "received" email, as a
    /// single request); a row the admission refuses (capacity, a mailbox taken
    /// meanwhile) gets that as its problem.
    pub(super) async fn admit_list(
        &self,
        actor: &Actor,
        checked: CheckedList,
        ticket: Option<TicketId>,
        project: Option<(ProjectId, bool)>,
    ) -> ServiceResult<Vec<RowReport>> {
        let mut reports = Vec::new();
        for (mut report, made) in checked.0 {
            for mut new in made {
                new.ticket = ticket;
                if let Some((project, paused)) = project {
                    new.project = Some(project);
                    new.paused = paused;
                }
                match self.admit(actor, new, self.now()).await {
                    Ok(m) => report.migrations.push(m),
                    Err(
                        err @ (ServiceError::Conflict { .. } | ServiceError::Unavailable { .. }),
                    ) => report
                        .problems
                        .push(FieldError::new("destination.username", err.to_string())),
                    Err(err) => return Err(err),
                }
            }
            reports.push(report);
        }
        Ok(reports)
    }

    pub(super) async fn check_list(
        &self,
        actor: &Actor,
        may_override: bool,
        rows: Vec<ListedRequest>,
    ) -> ServiceResult<CheckedList> {
        let mut hosts = HostChecks::default();
        let mut checked = Vec::with_capacity(rows.len());
        for row in rows {
            let mut problems = row.problems;
            let mut made = Vec::with_capacity(1 + row.also.len());
            for request in std::iter::once(row.request).chain(row.also) {
                let kind = request
                    .kind
                    .clone()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                match self
                    .check_request(actor, may_override, request, &mut hosts)
                    .await
                {
                    Ok(new) => made.push(new),
                    // A project's contacts or calendars say which they are.
                    Err(ServiceError::Invalid(errors)) if kind != MigrationKind::Mail => {
                        problems.extend(errors.into_iter().map(|e| FieldError {
                            message: format!("{}: {}", kind.as_str(), e.message),
                            ..e
                        }));
                    }
                    Err(ServiceError::Invalid(errors)) => problems.extend(errors),
                    Err(err) => return Err(err),
                }
            }
            checked.push((row.row, problems, made));
        }
        let asked: Vec<String> = checked
            .iter()
            .flat_map(|(_, _, made)| made.iter())
            .map(|new| crate::store::dest_key(new.kind, &new.dest))
            .collect();
        let busy = self.store.busy_mailboxes(&asked).await?;
        let mut first_row: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(checked.len());
        for (row, mut problems, made) in checked {
            for new in &made {
                let key = crate::store::dest_key(new.kind, &new.dest);
                let what = new.kind.as_str();
                if let Some(first) = first_row.get(&key) {
                    problems.push(FieldError::new(
                        "destination.username",
                        format!(
                            "row {first} already moves {what} into {}; keep one row per mailbox",
                            new.dest.username()
                        ),
                    ));
                } else {
                    first_row.insert(key.clone(), row);
                }
                if busy.contains(&key) {
                    problems.push(FieldError::new(
                        "destination.username",
                        format!(
                            "{} already has a {}migration in progress; remove this row, or cancel that migration first",
                            new.dest.username(),
                            match new.kind {
                                MigrationKind::Mail => String::new(),
                                kind => format!("{} ", kind.as_str()),
                            }
                        ),
                    ));
                }
            }
            let made = if problems.is_empty() {
                made
            } else {
                Vec::new()
            };
            let report = RowReport {
                row,
                problems,
                migrations: Vec::new(),
            };
            out.push((report, made));
        }
        Ok(CheckedList(out))
    }
}

impl Services {
    /// Keeps an uploaded list, its bytes encrypted, for its preview and then for
    /// making its migrations; audited without its content.
    pub async fn keep_list(
        &self,
        actor: &Actor,
        file_name: &str,
        bytes: &[u8],
        requester_email: Option<String>,
        time_zone: Option<String>,
    ) -> ServiceResult<Upload> {
        if bytes.is_empty() {
            return Err(ServiceError::field(
                "file",
                "choose a CSV or spreadsheet file, or type the rows",
            ));
        }
        let max = self.settings().limits.upload_bytes;
        if bytes.len() > max {
            return Err(ServiceError::field(
                "file",
                format!(
                    "the file has {} bytes, more than the {max} a file may have (limits.upload_bytes); split it into several files",
                    bytes.len()
                ),
            ));
        }
        let now = self.now();
        let name: String = file_name
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let new = NewUpload {
            created_by: actor.to_string(),
            file_name: if name.is_empty() { "list".into() } else { name },
            size: bytes.len() as u64,
            sha256: crate::crypto::digest_bytes(bytes),
            sealed: self.cipher.encrypt_bytes(bytes)?,
            requester_email,
            time_zone,
        };
        let tx = self.store.begin().await?;
        let upload = tx.insert_upload(new, now).await?;
        let event = NewAuditEvent::new(actor, "list.uploaded")
            .subject("upload", upload.id)
            .detail(serde_json::json!({ "file": upload.file_name, "bytes": upload.size }));
        tx.audit(event, now).await?;
        tx.commit().await?;
        Ok(upload)
    }

    /// An uploaded list and its bytes, `None` once they were erased (used, or past
    /// the retention).
    pub async fn list_file(&self, id: UploadId) -> ServiceResult<(Upload, Option<Vec<u8>>)> {
        let (upload, sealed) = self
            .store
            .get_upload(id)
            .await?
            .ok_or(ServiceError::NotFound("upload"))?;
        let bytes = match sealed {
            Some(sealed) => Some(self.cipher.decrypt_bytes(&sealed)?),
            None => None,
        };
        Ok((upload, bytes))
    }

    /// Makes the migrations of a kept list's ready rows, then erases its bytes (the
    /// migrations hold their own encrypted passwords). A second click finds each
    /// mailbox taken by the first and makes nothing twice.
    pub async fn request_kept_list(
        &self,
        actor: &Actor,
        id: UploadId,
        rows: Vec<ListedRequest>,
    ) -> ServiceResult<Vec<RowReport>> {
        let reports = self.request_list(actor, rows, None).await?;
        let now = self.now();
        self.store.use_upload(id, now).await?;
        let made: Vec<String> = reports
            .iter()
            .flat_map(|r| r.migrations.iter().map(|m| m.id.to_string()))
            .collect();
        let tx = self.store.begin().await?;
        let event = NewAuditEvent::new(actor, "list.used")
            .subject("upload", id)
            .detail(serde_json::json!({
                "migrations": made,
                "rows_not_started": reports.len() - made.len(),
            }));
        tx.audit(event, now).await?;
        tx.commit().await?;
        Ok(reports)
    }
}
