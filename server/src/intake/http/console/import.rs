//! Import a list: a CSV or spreadsheet of mailboxes uploaded (kept encrypted), its
//! preview row by row with every problem in the cell it is in, then the migrations of
//! the ready rows made with one button. The templates to fill in are public.

use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Form, Multipart, Path};
use poem::{IntoResponse, Response, handler};
use serde::Serialize;

use super::{CsrfForm, FileForm, Layout, Staff, internal_error, redirect_with_flash};
use crate::domain::{FieldError, ListedRequest, Upload, UploadId};
use crate::intake::http::error_page;
use crate::intake::lists::{self, Column, ListError, MailboxList, RowDefaults};
use crate::service::{RowReport, ServiceError};

#[derive(Serialize)]
struct ImportPage {
    layout: Layout,
    /// The list being previewed, or just made.
    upload: Option<UploadView>,
    /// Why the file as a whole could not be read.
    file_error: Option<String>,
    headers: Vec<String>,
    rows: Vec<RowView>,
    ready: usize,
    invalid: usize,
    /// The migrations were made (the rows show each one's link).
    made: bool,
    requester_email: String,
    time_zone: String,
}

impl ImportPage {
    fn new(staff: &Staff) -> Self {
        Self {
            layout: staff.layout("/migrations"),
            upload: None,
            file_error: None,
            headers: Vec::new(),
            rows: Vec::new(),
            ready: 0,
            invalid: 0,
            made: false,
            requester_email: String::new(),
            time_zone: String::new(),
        }
    }
}

#[derive(Serialize)]
struct UploadView {
    id: UploadId,
    file_name: String,
    size: u64,
    requester_email: String,
    time_zone: String,
    used: bool,
    erased: bool,
}

/// One row of a previewed list: its cells (passwords masked), and its problems, each
/// in the column it is in, or the migration made from it.
#[derive(Serialize)]
pub(super) struct RowView {
    row: usize,
    cells: Vec<String>,
    pub(super) problems: Vec<ProblemView>,
    migration: Option<i64>,
}

#[derive(Serialize)]
pub(super) struct ProblemView {
    column: String,
    message: String,
}

fn upload_view(u: &Upload) -> UploadView {
    UploadView {
        id: u.id,
        file_name: u.file_name.clone(),
        size: u.size,
        requester_email: u.requester_email.clone().unwrap_or_default(),
        time_zone: u.time_zone.clone().unwrap_or_default(),
        used: u.used_at.is_some(),
        erased: u.purged_at.is_some(),
    }
}

/// The column a problem is in, as the file names it.
fn column_of(list: &MailboxList, field: &str) -> String {
    let field = match field {
        "window.time_zone" => "window.start",
        "source.port" | "source.security" => "source.host",
        "destination.port" | "destination.security" => "destination.host",
        other => other,
    };
    list.headers
        .iter()
        .find(|(c, _)| c.field() == field)
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| match field {
            "requester_email" => "requester (this form)".into(),
            "row" => "the row".into(),
            "destination.host" => "destination server (the provider's, from the settings)".into(),
            other => format!("{} (no such column: add one)", other.replace('.', " ")),
        })
}

/// Reads a kept list into its rows' requests (or the whole file's problem).
fn listed(upload: &Upload, bytes: &[u8]) -> Result<(MailboxList, Vec<ListedRequest>), ListError> {
    let list = lists::read(&upload.file_name, bytes)?;
    let defaults = RowDefaults {
        requester_email: upload.requester_email.clone(),
        time_zone: upload.time_zone.clone(),
    };
    let requests = list.requests(&defaults);
    Ok((list, requests))
}

/// A checked list as the preview's table shows it: the headers, then each row.
pub(super) fn preview_rows(
    list: &MailboxList,
    reports: &[RowReport],
) -> (Vec<String>, Vec<RowView>) {
    let shown: Vec<Column> = list.headers.iter().map(|(c, _)| *c).collect();
    let mut rows = Vec::with_capacity(reports.len());
    for (row, report) in list.rows.iter().zip(reports.iter()) {
        let values = row.shown();
        let cells = shown
            .iter()
            .map(|c| {
                values
                    .iter()
                    .find(|(v, _)| v == c)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        rows.push(RowView {
            row: report.row,
            cells,
            problems: report
                .problems
                .iter()
                .map(|p: &FieldError| ProblemView {
                    column: column_of(list, p.field),
                    message: p.message.clone(),
                })
                .collect(),
            migration: report.migration().map(|m| m.id.0),
        });
    }
    let headers = list.headers.iter().map(|(_, h)| h.clone()).collect();
    (headers, rows)
}

fn page_of(
    staff: &Staff,
    upload: &Upload,
    list: &MailboxList,
    reports: Vec<RowReport>,
) -> ImportPage {
    let (headers, rows) = preview_rows(list, &reports);
    let ready = rows.iter().filter(|r| r.problems.is_empty()).count();
    ImportPage {
        upload: Some(upload_view(upload)),
        headers,
        invalid: rows.len() - ready,
        ready,
        rows,
        ..ImportPage::new(staff)
    }
}

#[handler]
pub async fn start(staff: Staff) -> Response {
    staff.render(
        "console/import.html",
        &ImportPage {
            time_zone: staff.tz.name().to_owned(),
            ..ImportPage::new(&staff)
        },
    )
}

/// The uploaded form's fields.
#[derive(Default)]
struct Uploaded {
    csrf: String,
    requester_email: String,
    time_zone: String,
    file: Option<(String, Vec<u8>)>,
    /// Rows typed or pasted instead of a file (CSV text, a header first).
    rows: String,
}

async fn fields(multipart: Multipart) -> Result<Uploaded, String> {
    let form = FileForm::read(multipart, "list").await?;
    Ok(Uploaded {
        csrf: form.text("csrf"),
        requester_email: form.text("requester_email").trim().to_owned(),
        time_zone: form.text("time_zone").trim().to_owned(),
        rows: form.text("rows"),
        file: form.file,
    })
}

#[handler]
pub async fn receive(staff: Staff, jar: &CookieJar, multipart: Multipart) -> Response {
    let mut form = match fields(multipart).await {
        Ok(form) => form,
        Err(message) => return redirect_with_flash(jar, "/migrations/import", false, &message),
    };
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    // A browser sends an empty file part when none was chosen: typed rows stand in.
    let (file_name, bytes) = match form.file.take() {
        Some((name, bytes)) if !bytes.is_empty() => (name, bytes),
        _ => (
            "typed rows.csv".to_owned(),
            std::mem::take(&mut form.rows).into_bytes(),
        ),
    };
    let page_again = |message: String| {
        staff.render(
            "console/import.html",
            &ImportPage {
                file_error: Some(message),
                requester_email: form.requester_email.clone(),
                time_zone: form.time_zone.clone(),
                ..ImportPage::new(&staff)
            },
        )
    };
    let kept = staff
        .services
        .keep_list(
            &staff.actor(),
            &file_name,
            &bytes,
            Some(form.requester_email.clone()).filter(|e| !e.is_empty()),
            Some(form.time_zone.clone()).filter(|z| !z.is_empty()),
        )
        .await;
    match kept {
        Ok(upload) => poem::web::Redirect::see_other(format!("/migrations/import/{}", upload.id))
            .into_response(),
        Err(ServiceError::Invalid(errors)) => page_again(
            errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(err) => internal_error(&staff.services, &err),
    }
}

/// A kept list and its bytes, or the page that says it is not there.
async fn kept(staff: &Staff, id: UploadId) -> Result<(Upload, Option<Vec<u8>>), Response> {
    let s = &staff.services;
    match s.list_file(id).await {
        Ok(found) => Ok(found),
        Err(ServiceError::NotFound(_)) => Err(error_page(
            s,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such list.",
        )),
        Err(err) => Err(internal_error(s, &err)),
    }
}

/// The kept list's page: its preview, or why it cannot be read.
#[handler]
pub async fn preview(staff: Staff, Path(id): Path<UploadId>) -> Response {
    let s = &staff.services;
    let (upload, bytes) = match kept(&staff, id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let Some(bytes) = bytes else {
        let page = ImportPage {
            upload: Some(upload_view(&upload)),
            ..ImportPage::new(&staff)
        };
        return staff.render("console/import.html", &page);
    };
    let (list, requests) = match listed(&upload, &bytes) {
        Ok(read) => read,
        Err(err) => {
            let page = ImportPage {
                upload: Some(upload_view(&upload)),
                file_error: Some(err.to_string()),
                ..ImportPage::new(&staff)
            };
            return staff.render("console/import.html", &page);
        }
    };
    match s.preview_list(&staff.actor(), requests).await {
        Ok(reports) => staff.render(
            "console/import.html",
            &page_of(&staff, &upload, &list, reports),
        ),
        Err(err) => internal_error(s, &err),
    }
}

/// Makes the ready rows' migrations and shows each row's outcome.
#[handler]
pub async fn create(
    staff: Staff,
    jar: &CookieJar,
    Path(id): Path<UploadId>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(resp) = staff.reject_bad_csrf(&form.csrf) {
        return resp;
    }
    let s = &staff.services;
    let back = format!("/migrations/import/{id}");
    let (upload, bytes) = match kept(&staff, id).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let Some(bytes) = bytes else {
        let message = "This list was used (or erased after the retention period); upload it again to make more migrations.";
        return redirect_with_flash(jar, &back, false, message);
    };
    let Ok((list, requests)) = listed(&upload, &bytes) else {
        return redirect_with_flash(
            jar,
            &back,
            false,
            "This list cannot be read; see why below.",
        );
    };
    match s.request_kept_list(&staff.actor(), id, requests).await {
        Ok(reports) => {
            let mut page = page_of(&staff, &upload, &list, reports);
            page.made = true;
            if let Some(u) = page.upload.as_mut() {
                u.used = true;
            }
            staff.render("console/import.html", &page)
        }
        Err(err) => internal_error(s, &err),
    }
}

fn download(content_type: &str, file_name: &str, body: Vec<u8>) -> Response {
    Response::builder()
        .content_type(content_type)
        .header(
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\""),
        )
        .header("Cache-Control", "public, max-age=3600")
        .body(body)
}

/// The provider's template as CSV (public).
#[handler]
pub fn template_csv() -> Response {
    download(
        "text/csv; charset=utf-8",
        "migration-request.csv",
        lists::TEMPLATE_CSV.as_bytes().to_vec(),
    )
}

/// The short template as CSV (public).
#[handler]
pub fn template_short_csv() -> Response {
    download(
        "text/csv; charset=utf-8",
        "migration-request-short.csv",
        lists::SHORT_TEMPLATE_CSV.as_bytes().to_vec(),
    )
}

/// The provider's template as an XLSX workbook (public).
#[handler]
pub fn template_xlsx() -> Response {
    match lists::template_xlsx() {
        Ok(bytes) => download(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "migration-request.xlsx",
            bytes,
        ),
        Err(err) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(format!("The template could not be made: {err}")),
    }
}
