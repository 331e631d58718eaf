//! `POST /api/v1/uploads`: a file to import (contacts `.vcf`, calendars `.ics`), as a
//! raw body (its name in `X-Filename`) or as `multipart/form-data` with a `file` part;
//! streamed to the service, never read whole here. Scope `migrations:write`.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use poem::Request;
use poem_openapi::param::Header;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use tokio_util::io::StreamReader;

use super::api::{ApiError, TokenAuth, actor, services};
use crate::domain::{FileKind, Scope, Upload, UploadId};
use crate::service::{IncomingFile, ServiceError};

#[derive(Debug, Object)]
#[oai(nullable_all)]
pub struct UploadBody {
    /// Give it as `source.upload_id` in `POST /migrations`.
    pub id: UploadId,
    /// Bytes.
    pub size: u64,
    /// What the file holds, from its contents: `vcf` (contacts) or `ics` (calendars).
    pub kind: Option<FileKind>,
    pub file_name: String,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
enum Uploaded {
    #[oai(status = 201)]
    Created(Json<UploadBody>),
}

pub struct UploadsApi;

#[OpenApi]
impl UploadsApi {
    /// Uploads a file to import: the body is the file (any `Content-Type`; its name in
    /// `X-Filename`), or `multipart/form-data` with the file in a part named `file`.
    /// Streamed to Ferry's data directory and encrypted there; kept
    /// `retention.upload_days`. 201 with its `id` and `kind`; 413 beyond
    /// `limits.import_bytes`; 422 `file` for an empty file, one Ferry does not import,
    /// or no name; 503 `insufficient_storage` when the disk has no room. Not
    /// idempotent: `Idempotency-Key` is ignored here. Needs `migrations:write`.
    #[oai(path = "/uploads", method = "post")]
    async fn upload(
        &self,
        req: &Request,
        auth: TokenAuth,
        #[oai(name = "X-Filename")] x_filename: Header<Option<String>>,
        body: Binary<poem::Body>,
    ) -> Result<Uploaded, ApiError> {
        auth.require(Scope::MigrationsWrite)?;
        let services = services(req)?;
        let content_type = req.content_type().unwrap_or_default().to_owned();
        let declared = req
            .headers()
            .get(poem::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let stream = body.0.into_bytes_stream().map_err(std::io::Error::other);
        let upload = if content_type.starts_with("multipart/form-data") {
            let boundary = multer::parse_boundary(&content_type).map_err(|e| {
                ApiError::from(ServiceError::field(
                    "file",
                    format!("the multipart body has no boundary: {e}"),
                ))
            })?;
            let mut form = multer::Multipart::new(stream, boundary);
            let field = loop {
                match form.next_field().await {
                    Ok(Some(field)) if field.name() == Some("file") => break field,
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        return Err(ServiceError::field(
                            "file",
                            "the form has no part named file; send the file in a part named file",
                        )
                        .into());
                    }
                    Err(e) => {
                        return Err(ServiceError::field(
                            "file",
                            format!("the multipart body cannot be read: {e}"),
                        )
                        .into());
                    }
                }
            };
            let name = field
                .file_name()
                .map(str::to_owned)
                .or(x_filename.0)
                .unwrap_or_default();
            let body = StreamReader::new(field.map_err(std::io::Error::other));
            let file = IncomingFile {
                name,
                declared: None,
                body,
            };
            services.store_upload(&actor(&auth), file).await?
        } else {
            let file = IncomingFile {
                name: x_filename.0.unwrap_or_default(),
                declared,
                body: StreamReader::new(stream),
            };
            services.store_upload(&actor(&auth), file).await?
        };
        Ok(Uploaded::Created(Json(upload_body(upload))))
    }
}

fn upload_body(u: Upload) -> UploadBody {
    UploadBody {
        id: u.id,
        size: u.size,
        kind: u.kind,
        file_name: u.file_name,
        sha256: u.sha256,
        created_at: u.created_at,
    }
}
