//! Projects: their row (the password only as its argon2 hash, read only to be
//! verified), their migrations, and the moments of their life (approved, paused,
//! digest sent, completion reported).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    Set,
};

use super::entities::{migrations, projects};
use super::migrations::migration_from;
use super::{Store, StoreError, StoreResult, Tx, duplicate_or};
use crate::domain::{Migration, Project, ProjectCode, ProjectId, ProjectOptions, TicketId};

/// A project to insert, its password already hashed.
#[derive(Debug)]
pub struct NewProject {
    pub code: ProjectCode,
    pub name: String,
    pub requester_email: String,
    pub time_zone: String,
    pub options: ProjectOptions,
    pub window_start: Option<DateTime<Utc>>,
    pub concurrency: u32,
    pub password_hash: String,
    pub created_by: String,
    pub ticket: Option<TicketId>,
    pub approved: bool,
}

/// Which projects to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    /// Part of the name, the requester's email or the code.
    pub search: Option<String>,
    pub page: u64,
    pub per_page: u64,
}

/// A moment of a project's life to record (`Some` sets, to a time or to NULL).
#[derive(Debug, Clone, Default)]
pub struct ProjectChange {
    pub approved_at: Option<Option<DateTime<Utc>>>,
    pub paused_at: Option<Option<DateTime<Utc>>>,
    pub digest_at: Option<Option<DateTime<Utc>>>,
    pub completed_at: Option<Option<DateTime<Utc>>>,
    pub password_hash: Option<String>,
    pub concurrency: Option<u32>,
}

fn project_from(row: projects::Model) -> StoreResult<Project> {
    let mut options: ProjectOptions =
        serde_json::from_str(&row.options).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    options.digest = row.digest;
    Ok(Project {
        id: ProjectId(row.id),
        code: ProjectCode::from_stored(row.public_id),
        name: row.name,
        requester_email: row.requester_email,
        time_zone: row.time_zone,
        options,
        window_start: row.window_start,
        concurrency: u32::try_from(row.concurrency.max(1)).unwrap_or(1),
        created_at: row.created_at,
        created_by: row.created_by,
        ticket: row.ticket_id.map(TicketId),
        approved_at: row.approved_at,
        paused_at: row.paused_at,
        digest_at: row.digest_at,
        completed_at: row.completed_at,
    })
}

impl Store {
    pub async fn get_project(&self, id: ProjectId) -> StoreResult<Option<Project>> {
        projects::Entity::find_by_id(id.0)
            .one(&self.db)
            .await?
            .map(project_from)
            .transpose()
    }

    pub async fn project_by_code(&self, code: &ProjectCode) -> StoreResult<Option<Project>> {
        projects::Entity::find()
            .filter(projects::Column::PublicId.eq(code.as_str()))
            .one(&self.db)
            .await?
            .map(project_from)
            .transpose()
    }

    /// The project's password hash, to verify a customer's sign-in.
    pub async fn project_password_hash(&self, id: ProjectId) -> StoreResult<Option<String>> {
        Ok(projects::Entity::find_by_id(id.0)
            .one(&self.db)
            .await?
            .map(|row| row.password_hash))
    }

    /// A page of projects and the number that match.
    pub async fn list_projects(&self, filter: &ProjectFilter) -> StoreResult<(Vec<Project>, u64)> {
        let mut query = projects::Entity::find().order_by_desc(projects::Column::Id);
        if let Some(search) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            query = query.filter(
                Condition::any()
                    .add(projects::Column::Name.contains(search))
                    .add(projects::Column::RequesterEmail.contains(search))
                    .add(projects::Column::PublicId.contains(search.to_uppercase())),
            );
        }
        let paginator = query.paginate(&self.db, filter.per_page.clamp(1, 100));
        let total = paginator.num_items().await?;
        let rows = paginator.fetch_page(filter.page).await?;
        let list = rows
            .into_iter()
            .map(project_from)
            .collect::<StoreResult<_>>()?;
        Ok((list, total))
    }

    /// A project's migrations, oldest first.
    pub async fn migrations_of_project(&self, id: ProjectId) -> StoreResult<Vec<Migration>> {
        migrations::Entity::find()
            .filter(migrations::Column::ProjectId.eq(id.0))
            .order_by_asc(migrations::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(migration_from)
            .collect()
    }

    /// Projects approved, not reported complete: the ones the cron job looks at for
    /// their digest and their completion.
    pub async fn projects_in_progress(&self) -> StoreResult<Vec<Project>> {
        projects::Entity::find()
            .filter(projects::Column::ApprovedAt.is_not_null())
            .filter(projects::Column::CompletedAt.is_null())
            .order_by_asc(projects::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(project_from)
            .collect()
    }
}

impl Tx {
    pub async fn insert_project(
        &self,
        new: NewProject,
        now: DateTime<Utc>,
    ) -> StoreResult<Project> {
        let options =
            serde_json::to_string(&new.options).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let row = projects::ActiveModel {
            public_id: Set(new.code.as_str().to_owned()),
            name: Set(new.name),
            requester_email: Set(new.requester_email),
            time_zone: Set(new.time_zone),
            digest: Set(new.options.digest),
            options: Set(options),
            window_start: Set(new.window_start),
            concurrency: Set(i32::try_from(new.concurrency).unwrap_or(i32::MAX)),
            password_hash: Set(new.password_hash),
            created_at: Set(now),
            created_by: Set(new.created_by),
            ticket_id: Set(new.ticket.map(|t| t.0)),
            approved_at: Set(new.approved.then_some(now)),
            ..Default::default()
        }
        .insert(&self.inner)
        .await
        .map_err(|e| duplicate_or(e, "project ID"))?;
        project_from(row)
    }

    pub async fn change_project(&self, id: ProjectId, change: ProjectChange) -> StoreResult<()> {
        let mut update = projects::Entity::update_many();
        let mut any = false;
        for (column, value) in [
            (projects::Column::ApprovedAt, change.approved_at),
            (projects::Column::PausedAt, change.paused_at),
            (projects::Column::DigestAt, change.digest_at),
            (projects::Column::CompletedAt, change.completed_at),
        ] {
            if let Some(value) = value {
                update = update.col_expr(column, Expr::value(value));
                any = true;
            }
        }
        if let Some(hash) = change.password_hash {
            update = update.col_expr(projects::Column::PasswordHash, Expr::value(hash));
            any = true;
        }
        if let Some(n) = change.concurrency {
            update = update.col_expr(
                projects::Column::Concurrency,
                Expr::value(i32::try_from(n).unwrap_or(i32::MAX)),
            );
            any = true;
        }
        if any {
            update
                .filter(projects::Column::Id.eq(id.0))
                .exec(&self.inner)
                .await?;
        }
        Ok(())
    }

    /// Deletes a project whose migrations are gone (the service deletes them first).
    pub async fn delete_project(&self, id: ProjectId) -> StoreResult<()> {
        projects::Entity::delete_by_id(id.0)
            .exec(&self.inner)
            .await?;
        Ok(())
    }
}
