//! `/api/v1/tickets`: the support desk's tickets, read (with their emails, files and
//! the check of every list they hold), answered, assigned, closed, and their lists
//! made into migrations. Scopes `tickets:read` and `tickets:write`.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::api::{ApiError, TokenAuth, actor, services};
use super::choice::Choice;
use crate::domain::{
    AttachmentId, Direction, MigrationId, Scope, Ticket, TicketId, TicketStatus, UserId,
};
use crate::intake::support::{TicketRequest, make_migrations, ticket_requests};
use crate::service::{ServiceError, TicketChange};
use crate::store::TicketFilter;

/// A ticket in a list.
#[derive(Debug, Object)]
pub struct TicketBody {
    pub id: TicketId,
    /// The number in `[#N]`.
    pub number: i64,
    pub status: TicketStatus,
    /// The sender of the email that opened it; null when it named none.
    pub requester: Option<String>,
    pub subject: String,
    pub assignee: Option<UserId>,
    /// The customer wrote last: staff owe an answer.
    pub awaiting_staff: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct TicketPage {
    pub data: Vec<TicketBody>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

/// One email of the thread.
#[derive(Debug, Object)]
pub struct TicketMessageBody {
    /// `in` from the customer, `out` from Ferry.
    pub direction: Direction,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub received_at: DateTime<Utc>,
    pub text: String,
    /// Why no answer goes to it, when a machine sent it.
    pub automatic: Option<String>,
    /// Why it could not be read (its bytes are kept).
    pub unreadable: Option<String>,
    /// For `out`: `pending`, `sent` or `failed`.
    pub delivery: Option<String>,
    pub migration: Option<MigrationId>,
}

#[derive(Debug, Object)]
pub struct AttachmentBody {
    pub id: AttachmentId,
    pub file_name: String,
    pub content_type: String,
    /// `list`, `contacts`, `calendar` or `other`.
    pub kind: String,
    /// Cards or events, for contacts and calendar files.
    pub items: Option<u64>,
    pub size: u64,
    /// Its bytes were erased with the credential retention.
    pub erased: bool,
}

#[derive(Debug, Object)]
pub struct ProblemBody {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Object)]
pub struct RowBody {
    /// The row's number in its file.
    pub row: u64,
    /// `ready` or `invalid`.
    pub status: String,
    pub problems: Vec<ProblemBody>,
    /// The migration made from it, when made (its mail's, in a project that moves
    /// mail).
    pub migration: Option<MigrationId>,
    /// Every migration made from it: its mail, then its contacts and calendars when
    /// its project moves them.
    pub migrations: Vec<MigrationId>,
}

/// A list of mailboxes the ticket holds, each row checked now.
#[derive(Debug, Object)]
pub struct RequestBody {
    /// The file's name; null for a request written in an email's text.
    pub attachment: Option<String>,
    pub attachment_id: Option<AttachmentId>,
    /// Why the file holds no list Ferry can read.
    pub error: Option<String>,
    pub rows: Vec<RowBody>,
}

#[derive(Debug, Object)]
pub struct TicketDetailBody {
    #[oai(flatten)]
    pub ticket: TicketBody,
    pub messages: Vec<TicketMessageBody>,
    pub attachments: Vec<AttachmentBody>,
    pub requests: Vec<RequestBody>,
    pub migrations: Vec<MigrationId>,
}

#[derive(Debug, Object)]
pub struct ReplyBody {
    /// The answer, as plain text.
    pub text: String,
    /// The status afterwards (default `waiting_on_customer`).
    pub status: Option<Choice<TicketStatus>>,
}

#[derive(Debug, Object)]
pub struct TicketPatch {
    pub status: Option<Choice<TicketStatus>>,
    /// A staff account's id, or null for nobody.
    pub assignee: MaybeUndefined<i64>,
}

#[derive(Debug, Object)]
pub struct MakeMigrationsBody {
    /// The list file's id (`attachments[].id`); omitted for a request written in an
    /// email's text.
    pub attachment_id: Option<AttachmentId>,
}

#[derive(Debug, Object)]
pub struct MadeBody {
    pub rows: Vec<RowBody>,
}

#[derive(Debug, ApiResponse)]
pub enum Replied {
    #[oai(status = 201)]
    Created(Json<TicketBody>),
}

fn ticket_body(t: Ticket) -> TicketBody {
    TicketBody {
        number: t.number(),
        id: t.id,
        status: t.status,
        requester: t.requester,
        subject: t.subject,
        assignee: t.assignee,
        awaiting_staff: t.awaiting_staff,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

pub(super) fn row_bodies(reports: &[crate::service::RowReport]) -> Vec<RowBody> {
    reports
        .iter()
        .map(|r| RowBody {
            row: r.row as u64,
            status: if r.ready() { "ready" } else { "invalid" }.into(),
            problems: r
                .problems
                .iter()
                .map(|p| ProblemBody {
                    field: p.field.to_owned(),
                    message: p.message.clone(),
                })
                .collect(),
            migration: r.migration().map(|m| m.id),
            migrations: r.migrations.iter().map(|m| m.id).collect(),
        })
        .collect()
}

fn request_body(r: TicketRequest) -> RequestBody {
    RequestBody {
        attachment: r.attachment.as_ref().map(|a| a.file_name.clone()),
        attachment_id: r.attachment.as_ref().map(|a| a.id),
        error: r.list.as_ref().err().cloned(),
        rows: row_bodies(&r.reports),
    }
}

fn status_of(choice: Option<Choice<TicketStatus>>) -> Result<Option<TicketStatus>, ApiError> {
    choice
        .map(|c| c.field("status"))
        .transpose()
        .map_err(|e| ServiceError::Invalid(vec![e]).into())
}

pub struct TicketsApi;

#[OpenApi]
impl TicketsApi {
    /// Tickets, latest activity first. Needs `tickets:read`.
    #[oai(path = "/tickets", method = "get")]
    // One parameter per query field: poem-openapi lists each in the document.
    #[allow(clippy::too_many_arguments)]
    async fn list_tickets(
        &self,
        req: &Request,
        auth: TokenAuth,
        /// Only this status: new, open, waiting_on_customer or closed.
        status: Query<Option<String>>,
        /// A staff account's id, or `none` for tickets nobody has.
        assignee: Query<Option<String>>,
        /// Part of the subject or the requester's address, or a ticket number.
        search: Query<Option<String>>,
        /// From 1, up to 100000.
        #[oai(validator(minimum(value = "0"), maximum(value = "100000")))]
        page: Query<Option<u64>>,
        /// 1 to 100 (default 20).
        #[oai(validator(minimum(value = "0"), maximum(value = "100")))]
        per_page: Query<Option<u64>>,
    ) -> Result<Json<TicketPage>, ApiError> {
        auth.require(Scope::TicketsRead)?;
        let services = services(req)?;
        let status = match status.0.as_deref() {
            None | Some("") => None,
            Some(s) => Some(
                s.parse::<TicketStatus>()
                    .map_err(|e| ServiceError::Invalid(vec![e]))?,
            ),
        };
        let assignee = match assignee.0.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("none") => Some(None),
            Some(id) => Some(Some(UserId(id.parse().map_err(|_| {
                ServiceError::field("assignee", "give a staff account's id, or none")
            })?))),
        };
        let page = page.0.unwrap_or(1).max(1);
        let per_page = per_page.0.unwrap_or(20).clamp(1, 100);
        let (list, total) = services
            .store()
            .list_tickets(&TicketFilter {
                status,
                assignee,
                search: search.0,
                page: page - 1,
                per_page,
            })
            .await
            .map_err(ServiceError::from)?;
        Ok(Json(TicketPage {
            data: list.into_iter().map(ticket_body).collect(),
            total,
            page,
            per_page,
        }))
    }

    /// One ticket with its emails, files, lists (each row checked now) and the
    /// migrations made from it. Needs `tickets:read`.
    #[oai(path = "/tickets/:id", method = "get")]
    async fn get_ticket(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<TicketId>,
    ) -> Result<Json<TicketDetailBody>, ApiError> {
        auth.require(Scope::TicketsRead)?;
        let services = services(req)?;
        let view = services.ticket_view(id.0).await?;
        let requests = ticket_requests(services, &actor(&auth), &view).await?;
        Ok(Json(TicketDetailBody {
            ticket: ticket_body(view.ticket),
            messages: view
                .thread
                .into_iter()
                .map(|(m, text)| TicketMessageBody {
                    direction: m.direction,
                    from: m.from,
                    to: m.to,
                    subject: m.subject,
                    received_at: m.at,
                    text,
                    automatic: m.automatic,
                    unreadable: m.unreadable,
                    delivery: m.delivery,
                    migration: m.migration,
                })
                .collect(),
            attachments: view
                .attachments
                .into_iter()
                .map(|a| AttachmentBody {
                    id: a.id,
                    file_name: a.file_name,
                    content_type: a.content_type,
                    kind: a.kind.as_str().to_owned(),
                    items: a.items,
                    size: a.size,
                    erased: a.purged_at.is_some(),
                })
                .collect(),
            requests: requests.into_iter().map(request_body).collect(),
            migrations: view.migrations.iter().map(|m| m.id).collect(),
        }))
    }

    /// Answers the requester in the ticket's thread (`[#N]` in the subject,
    /// In-Reply-To and References set); the ticket then waits on the customer, or
    /// takes `status`. 201 with the ticket. Needs `tickets:write`.
    #[oai(path = "/tickets/:id/replies", method = "post")]
    async fn reply_ticket(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<TicketId>,
        body: Json<ReplyBody>,
    ) -> Result<Replied, ApiError> {
        auth.require(Scope::TicketsWrite)?;
        let services = services(req)?;
        let status = status_of(body.0.status)?;
        let ticket = services
            .reply_ticket(&actor(&auth), id.0, &body.0.text, status, None)
            .await?;
        Ok(Replied::Created(Json(ticket_body(ticket))))
    }

    /// Changes a ticket's status or assignee (null: nobody). Needs `tickets:write`.
    #[oai(path = "/tickets/:id", method = "patch")]
    async fn change_ticket(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<TicketId>,
        body: Json<TicketPatch>,
    ) -> Result<Json<TicketBody>, ApiError> {
        auth.require(Scope::TicketsWrite)?;
        let services = services(req)?;
        let change = TicketChange {
            status: status_of(body.0.status)?,
            assignee: match body.0.assignee {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(id) => Some(Some(UserId(id))),
            },
        };
        let ticket = services.change_ticket(&actor(&auth), id.0, change).await?;
        Ok(Json(ticket_body(ticket)))
    }

    /// Makes the migrations of a ticket's list from its ready rows, once per file, and
    /// emails the requester every row's outcome; rows with problems are never
    /// started. 409 `list_used` the second time. Needs `tickets:write` and
    /// `migrations:write`.
    #[oai(path = "/tickets/:id/migrations", method = "post")]
    async fn make_ticket_migrations(
        &self,
        req: &Request,
        auth: TokenAuth,
        id: Path<TicketId>,
        body: Json<MakeMigrationsBody>,
    ) -> Result<Json<MadeBody>, ApiError> {
        auth.require(Scope::TicketsWrite)?;
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let reports =
            make_migrations(services, &actor(&auth), id.0, body.0.attachment_id, None).await?;
        Ok(Json(MadeBody {
            rows: row_bodies(&reports),
        }))
    }
}
