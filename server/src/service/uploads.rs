//! Files to import (`POST /api/v1/uploads`): streamed to the data directory's
//! `uploads/`, sealed chunk by chunk as they arrive (never whole in memory, never in
//! the clear on disk), with the size limit (`limits.import_bytes`) and the free space
//! checked before a byte is kept; what the file holds is told by its first bytes.
//! A runner reads it back with [`Services::read_upload`]; the retention
//! (`retention.upload_days`) deletes it.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{ServiceError, ServiceResult, Services};
use crate::domain::{Actor, ErrorCode, FieldError, FileKind, Upload};
use crate::store::NewFileUpload;

/// Plain bytes per sealed chunk.
const CHUNK: usize = 1024 * 1024;

/// Room left free on the data directory's disk beyond the file itself.
const SPARE_BYTES: u64 = 256 * 1024 * 1024;

/// The most of a contacts or calendars file read into memory to import it: far more
/// than any address book (10,000 cards with photos are some 100 MB).
const MAX_READ: u64 = 1024 * 1024 * 1024;

/// The file a caller sends, before it is read.
pub struct IncomingFile<R> {
    pub name: String,
    /// The length the request declared, when it did.
    pub declared: Option<u64>,
    pub body: R,
}

impl Services {
    fn uploads_dir(&self) -> PathBuf {
        self.settings().data_dir.join("uploads")
    }

    /// Keeps an uploaded file: 201's `Upload`, or the field error that says why not
    /// (too large, not a file Ferry imports, no room).
    pub async fn store_upload<R: AsyncRead + Unpin>(
        &self,
        actor: &Actor,
        file: IncomingFile<R>,
    ) -> ServiceResult<Upload> {
        let settings = self.settings();
        let max = settings.limits.import_bytes;
        let name = file_name(&file.name)?;
        if let Some(n) = file.declared.filter(|n| *n > max) {
            return Err(too_large(n, max));
        }
        let dir = self.uploads_dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| anyhow::anyhow!("Failed to make {}: {e}", dir.display()))?;
        self.check_free_space(&dir, file.declared.unwrap_or(0))?;
        let stored = crate::crypto::random_token(18)?;
        let part = dir.join(format!("{stored}.part"));
        let written = self
            .write_sealed(&stored, &part, &name, max, file.body)
            .await;
        let (size, sha256, kind) = match written {
            Ok(done) => done,
            Err(err) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(err);
            }
        };
        tokio::fs::rename(&part, dir.join(&stored))
            .await
            .map_err(|e| anyhow::anyhow!("Failed to keep an upload: {e}"))?;
        let upload = self
            .store
            .insert_file_upload(
                NewFileUpload {
                    created_by: actor.to_string(),
                    file_name: name,
                    size,
                    sha256,
                    kind,
                    stored,
                },
                self.now(),
            )
            .await?;
        tracing::info!(upload = %upload.id, %actor, size, kind = kind.as_str(), "File uploaded");
        Ok(upload)
    }

    /// Reads `body` to its end, sealing it chunk by chunk into `part`: its size, its
    /// SHA-256 and its kind.
    async fn write_sealed<R: AsyncRead + Unpin>(
        &self,
        stored: &str,
        part: &std::path::Path,
        name: &str,
        max: u64,
        mut body: R,
    ) -> ServiceResult<(u64, String, FileKind)> {
        let mut out = tokio::io::BufWriter::new(
            tokio::fs::File::create(part)
                .await
                .map_err(|e| anyhow::anyhow!("Failed to write an upload: {e}"))?,
        );
        let mut digest = Sha256::new();
        let mut size = 0u64;
        let mut kind = None;
        let mut index = 0u64;
        // One chunk is held back until the next is read: the last is sealed as last.
        let mut pending: Option<Vec<u8>> = None;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            let n = (&mut body)
                .take(CHUNK as u64)
                .read_to_end(&mut chunk)
                .await
                .map_err(|e| {
                    ServiceError::field("file", format!("the upload stopped before its end: {e}"))
                })?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > max {
                return Err(too_large(size, max));
            }
            digest.update(&chunk);
            if kind.is_none() {
                kind = Some(FileKind::sniff(name, &chunk).ok_or_else(|| not_importable(name))?);
            }
            if let Some(previous) = pending.replace(chunk) {
                self.write_chunk(&mut out, stored, index, false, &previous)
                    .await?;
                index += 1;
            }
        }
        let Some(last) = pending else {
            return Err(ServiceError::field(
                "file",
                "the file is empty; export it again and upload that file",
            ));
        };
        self.write_chunk(&mut out, stored, index, true, &last)
            .await?;
        out.flush()
            .await
            .map_err(|e| anyhow::anyhow!("Failed to write an upload: {e}"))?;
        out.get_ref()
            .sync_all()
            .await
            .map_err(|e| anyhow::anyhow!("Failed to write an upload: {e}"))?;
        let kind = kind.ok_or_else(|| not_importable(name))?;
        Ok((size, hex::encode(digest.finalize()), kind))
    }

    async fn write_chunk(
        &self,
        out: &mut tokio::io::BufWriter<tokio::fs::File>,
        stored: &str,
        index: u64,
        last: bool,
        plain: &[u8],
    ) -> ServiceResult<()> {
        let sealed = self
            .cipher
            .seal_chunk(plain, &chunk_aad(stored, index, last))?;
        let len = u32::try_from(sealed.len()).map_err(|_| anyhow::anyhow!("chunk too large"))?;
        out.write_all(&len.to_be_bytes())
            .await
            .and(out.write_all(&sealed).await)
            .map_err(|e| anyhow::anyhow!("Failed to write an upload: {e}"))?;
        Ok(())
    }

    /// Refuses an upload the disk has no room for (507-like: try again later).
    fn check_free_space(&self, dir: &std::path::Path, size: u64) -> ServiceResult<()> {
        let Ok(stat) = rustix::fs::statvfs(dir) else {
            return Ok(());
        };
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        if free < size.saturating_add(SPARE_BYTES) {
            return Err(ServiceError::Unavailable {
                code: ErrorCode::InsufficientStorage,
                message: format!(
                    "Ferry's disk has {} MB free, too little for this file; try again once space is made.",
                    free / 1_000_000
                ),
            });
        }
        Ok(())
    }

    /// A ticket's contacts or calendar file made an upload to import (the customer
    /// sent it to the support address): the same checks as an upload.
    pub async fn upload_ticket_file(
        &self,
        actor: &Actor,
        ticket: crate::domain::TicketId,
        file: crate::domain::AttachmentId,
    ) -> ServiceResult<Upload> {
        let (meta, bytes) = self.ticket_file(ticket, file).await?;
        let Some(bytes) = bytes else {
            return Err(ServiceError::field(
                "file",
                format!(
                    "{} was erased with the retention; ask the customer to send it again",
                    meta.file_name
                ),
            ));
        };
        let incoming = IncomingFile {
            name: meta.file_name,
            declared: Some(bytes.len() as u64),
            body: bytes.as_slice(),
        };
        self.store_upload(actor, incoming).await
    }

    /// The whole text of an uploaded contacts or calendars file, checked chunk by
    /// chunk and against its recorded size and digest.
    pub async fn read_upload(&self, upload: &Upload) -> anyhow::Result<String> {
        let Some(stored) = &upload.stored else {
            anyhow::bail!("the upload {} holds no file to import", upload.id);
        };
        anyhow::ensure!(
            upload.purged_at.is_none(),
            "the uploaded file {} was deleted after the retention period; upload it again",
            upload.file_name
        );
        anyhow::ensure!(
            upload.size <= MAX_READ,
            "the file {} has {} bytes; a contacts or calendars file may have {MAX_READ} at most: split it",
            upload.file_name,
            upload.size
        );
        let bytes = tokio::fs::read(self.uploads_dir().join(stored))
            .await
            .map_err(|e| {
                anyhow::anyhow!("the uploaded file {} cannot be read: {e}", upload.file_name)
            })?;
        let mut plain = Vec::with_capacity(usize::try_from(upload.size).unwrap_or(0));
        let mut rest = bytes.as_slice();
        let mut index = 0u64;
        loop {
            anyhow::ensure!(
                rest.len() >= 4,
                "the uploaded file {} is cut short",
                upload.file_name
            );
            let (len, after) = rest.split_at(4);
            let len = u32::from_be_bytes(len.try_into()?) as usize;
            anyhow::ensure!(
                after.len() >= len,
                "the uploaded file {} is cut short",
                upload.file_name
            );
            let (blob, after) = after.split_at(len);
            let last = after.is_empty();
            plain.extend(
                self.cipher
                    .open_chunk(blob, &chunk_aad(stored, index, last))?,
            );
            if last {
                break;
            }
            rest = after;
            index += 1;
        }
        anyhow::ensure!(
            plain.len() as u64 == upload.size
                && hex::encode(Sha256::digest(&plain)) == upload.sha256,
            "the uploaded file {} does not match what was uploaded",
            upload.file_name
        );
        Ok(String::from_utf8_lossy(&plain).into_owned())
    }

    /// Deletes the files uploaded longer ago than `retention.upload_days`.
    pub async fn purge_uploaded_files(&self) -> ServiceResult<u64> {
        let now = self.now();
        let days = i64::from(self.settings().retention.upload_days);
        let before = now - chrono::Duration::days(days);
        let mut deleted = 0;
        for (id, stored) in self.store.stored_uploads_before(before).await? {
            match tokio::fs::remove_file(self.uploads_dir().join(&stored)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(upload = %id, error = %e, "Failed to delete an uploaded file");
                    continue;
                }
            }
            self.store.erased_upload(id, now).await?;
            deleted += 1;
        }
        if deleted > 0 {
            tracing::info!(n_uploads = deleted, "Uploaded files deleted");
        }
        Ok(deleted)
    }
}

/// What binds a chunk to its place.
fn chunk_aad(stored: &str, index: u64, last: bool) -> Vec<u8> {
    let mut aad = stored.as_bytes().to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

/// The file's own name, without any folder a client sent with it.
fn file_name(given: &str) -> ServiceResult<String> {
    let name = given
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>();
    if name.is_empty() {
        return Err(ServiceError::field(
            "file",
            "the file's name is required (the X-Filename header, or the file part's filename)",
        ));
    }
    if name.chars().count() > 255 {
        return Err(ServiceError::field(
            "file",
            "the file's name may have 255 characters at most",
        ));
    }
    Ok(name)
}

fn too_large(size: u64, max: u64) -> ServiceError {
    ServiceError::TooLarge(format!(
        "The file has {size} bytes or more; a file to import may have {max} at most (setting limits.import_bytes)."
    ))
}

fn not_importable(name: &str) -> ServiceError {
    ServiceError::Invalid(vec![FieldError::new(
        "file",
        format!(
            "{} is neither a vCard file (.vcf, starting BEGIN:VCARD) nor an iCalendar file (.ics, starting BEGIN:VCALENDAR); export the contacts or the calendar again and upload that file",
            crate::domain::quoted(name)
        ),
    )])
}
