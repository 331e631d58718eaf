//! The support mailbox's reader, a task of `ferry serve`: while `support.enabled` is
//! on, it logs in to the support mailbox (`sync::support`), reads each waiting email
//! (`inbound`), finds the lists of mailboxes it carries (attachments read by `lists`,
//! or a request written in its text), hands it to the desk (`Services::receive_email`)
//! and only then moves it to the processed folder. A crash between the two reads the
//! email again at the next start; the desk finds it stored (by folder, UIDVALIDITY and
//! UID) and it is only moved. It waits with IDLE where the server has it (re-issued
//! every `support.poll_seconds`, never near the 29 minutes after which a server may
//! drop an idle client), reconnects with backoff, and tells the dashboard how it is.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{inbound, lists};
use crate::domain::{
    Actor, AttachmentId, AttachmentKind, Direction, ImapEndpoint, ListedRequest, TicketAttachment,
    TicketId,
};
use crate::service::{
    FoundList, IncomingEmail, RowReport, ServiceError, ServiceResult, Services, SupportState,
    TicketView,
};
use crate::store::MailSource;
use crate::sync::support::{SupportError, SupportMailbox};

/// The longest IDLE: servers may drop a client idle for 30 minutes (RFC 2177).
const MAX_IDLE: Duration = Duration::from_secs(28 * 60);
/// The longest wait between two tries to reach a failing server.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often a switched-off reader looks whether it was switched on.
const OFF_LOOK: Duration = Duration::from_secs(1);

/// Reads the support mailbox until `shutdown`.
pub async fn run(services: Services, shutdown: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    while !shutdown.is_cancelled() {
        if !services.settings().support.enabled {
            services.set_support_state(SupportState::Off);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(OFF_LOOK) => continue,
            }
        }
        let tried = services.settings();
        match read(&services, &shutdown).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(err) => {
                let error = err.to_string();
                tracing::warn!(%error, retry_in = ?backoff, "The support mailbox could not be read");
                services.set_support_state(SupportState::Failing {
                    error,
                    since: services.now(),
                });
                // Settings changed meanwhile (a corrected password) are tried at once.
                let until = tokio::time::Instant::now() + backoff;
                while tokio::time::Instant::now() < until
                    && Arc::ptr_eq(&tried, &services.settings())
                {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(OFF_LOOK) => {}
                    }
                }
                backoff = if Arc::ptr_eq(&tried, &services.settings()) {
                    (backoff * 2).min(MAX_BACKOFF)
                } else {
                    Duration::from_secs(1)
                };
            }
        }
    }
}

/// Reads until the settings change or `shutdown`; an error ends the session.
async fn read(services: &Services, shutdown: &CancellationToken) -> Result<(), SupportError> {
    let settings = services.settings();
    let support = &settings.support;
    let endpoint = ImapEndpoint {
        host: support.host.clone(),
        port: support.port,
        security: support.security,
        username: support.username.clone(),
        authuser: None,
        password: support
            .password
            .clone()
            .unwrap_or_else(|| secrecy::SecretString::from("")),
        verify_tls: true,
    };
    // The support mailbox is the provider's own server, which may be on its private
    // network: the customer-target rule is not for it.
    let reach = crate::connectors::net::Reach {
        allow_private: true,
        ..services.reach()
    };
    services.set_support_state(SupportState::Connecting);
    let opened = tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        opened = SupportMailbox::open(&endpoint, &reach, &support.folder, &support.processed_folder) => opened?,
    };
    let mut mailbox = opened;
    services.set_support_state(SupportState::Reading {
        since: services.now(),
    });
    tracing::info!(server = %support.host, folder = %support.folder, "Reading the support mailbox");
    let wait = Duration::from_secs(support.poll_seconds.max(1)).min(MAX_IDLE);
    loop {
        for uid in mailbox.waiting().await? {
            if shutdown.is_cancelled() {
                break;
            }
            take(services, &mut mailbox, uid).await?;
        }
        if shutdown.is_cancelled() || !Arc::ptr_eq(&settings, &services.settings()) {
            mailbox.close().await;
            return Ok(());
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            waited = mailbox.wait(wait) => waited?,
        }
    }
}

/// One email: read, kept in its ticket, then moved to the processed folder.
async fn take(
    services: &Services,
    mailbox: &mut SupportMailbox,
    uid: u32,
) -> Result<(), SupportError> {
    let Some(raw) = mailbox.fetch(uid).await? else {
        return Ok(());
    };
    // Where it was read, with the account and server: two servers' folders may share
    // a UIDVALIDITY (both are often the second they were made).
    let support = &services.settings().support;
    let source = MailSource {
        folder: format!(
            "{}@{}:{}/{}",
            support.username,
            support.host,
            support.port,
            mailbox.folder()
        ),
        uidvalidity: mailbox.uidvalidity(),
        uid,
    };
    let email = read_email(raw, Some(source), services.settings().limits.upload_bytes);
    let received = services.receive_email(email).await.map_err(|e| {
        SupportError::Imap(crate::connectors::imap::OpError::Refused(format!(
            "the email could not be kept: {e}"
        )))
    })?;
    crash_point::after_store();
    mailbox.file_away(uid).await?;
    services.note_support_email(services.now());
    tracing::debug!(ticket = %received.ticket, stored = received.stored, "Support email filed away");
    Ok(())
}

/// An email read into what the desk keeps: its facts, and the lists of mailboxes in
/// its attachments (files over `max_bytes` are kept but not read) or in its text.
pub fn read_email(raw: Vec<u8>, source: Option<MailSource>, max_bytes: usize) -> IncomingEmail {
    let mail = inbound::read(&raw);
    let defaults = lists::RowDefaults {
        requester_email: mail.from.clone(),
        time_zone: None,
    };
    let mut found = Vec::new();
    for (index, file) in mail.attachments.iter().enumerate() {
        if AttachmentKind::of(&file.file_name, &file.content_type) != AttachmentKind::List {
            continue;
        }
        let rows = if file.bytes.len() > max_bytes {
            Err(format!(
                "the file has {} bytes, more than the {max_bytes} Ferry reads (limits.upload_bytes); split it into smaller files",
                file.bytes.len()
            ))
        } else {
            lists::read(&file.file_name, &file.bytes)
                .map(|list| list.requests(&defaults))
                .map_err(|e| e.to_string())
        };
        found.push(FoundList {
            attachment: Some(index),
            rows,
        });
    }
    if found.is_empty()
        && mail.automatic.is_none()
        && let Some(csv) = request_in_text(&mail.text)
        && let Ok(list) = lists::read("request.csv", csv.as_bytes())
    {
        found.push(FoundList {
            attachment: None,
            rows: Ok(list.requests(&defaults)),
        });
    }
    IncomingEmail {
        raw,
        mail,
        source,
        lists: found,
    }
}

/// The three facts the support guide asks for (source email, password, IMAP
/// server), written as `label: value` lines in an email's text, as a one-row CSV list
/// in the short template's columns; `None` unless each is there exactly once (two
/// mailboxes in prose are for a person to read). No crate reads free text into a
/// request: the labels are the guide's and their usual variants.
pub fn request_in_text(text: &str) -> Option<String> {
    const EMAIL: &[&str] = &[
        "sourceemail",
        "email",
        "emailaddress",
        "mailbox",
        "login",
        "sourcelogin",
        "username",
        "user",
    ];
    const PASSWORD: &[&str] = &["sourcepassword", "password", "passwort", "motdepasse"];
    const SERVER: &[&str] = &[
        "imapserver",
        "sourceimapserver",
        "server",
        "sourceserver",
        "imaphost",
        "host",
        "incomingserver",
    ];
    let mut facts: [Vec<String>; 3] = Default::default();
    for line in text.lines() {
        let line = line.trim().trim_start_matches(['-', '*', '>']).trim();
        let Some((label, value)) = line.split_once(':') else {
            continue;
        };
        let label: String = label
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        for (slot, names) in [EMAIL, PASSWORD, SERVER].iter().enumerate() {
            if names.contains(&label.as_str()) && !facts[slot].iter().any(|v| v == value) {
                facts[slot].push(value.to_owned());
            }
        }
    }
    if facts.iter().any(|f| f.len() != 1) {
        return None;
    }
    let mut csv = csv::WriterBuilder::new().from_writer(Vec::new());
    csv.write_record(["source email", "source password", "source IMAP server"])
        .ok()?;
    csv.write_record([&facts[0][0], &facts[1][0], &facts[2][0]])
        .ok()?;
    String::from_utf8(csv.into_inner().ok()?).ok()
}

/// A list of mailboxes a ticket holds: an attached file, or a request written in an
/// email's text, with each row checked now (the mailboxes taken meanwhile, the notice
/// rule as it stands).
#[derive(Debug)]
pub struct TicketRequest {
    pub attachment: Option<TicketAttachment>,
    /// The email whose text held it, for a request written in the text.
    pub message: Option<i64>,
    /// The list read, or why it could not be.
    pub list: Result<lists::MailboxList, String>,
    pub rows: Vec<ListedRequest>,
    pub reports: Vec<RowReport>,
}

impl TicketRequest {
    pub fn ready(&self) -> usize {
        self.reports.iter().filter(|r| r.ready()).count()
    }
}

/// Every list a ticket holds, newest first: its list files (until erased) and the
/// requests written in the text of its emails that have no list file.
pub async fn ticket_requests(
    services: &Services,
    actor: &Actor,
    view: &TicketView,
) -> ServiceResult<Vec<TicketRequest>> {
    let defaults = lists::RowDefaults {
        requester_email: view.ticket.requester.clone(),
        time_zone: None,
    };
    let max = services.settings().limits.upload_bytes;
    let mut found = Vec::new();
    for file in view
        .attachments
        .iter()
        .filter(|a| a.kind == AttachmentKind::List)
    {
        let (_, bytes) = services.ticket_file(view.ticket.id, file.id).await?;
        let list = match bytes {
            None => Err("the file was erased with the credential retention".to_owned()),
            Some(bytes) if bytes.len() > max => Err(format!(
                "the file has {} bytes, more than the {max} Ferry reads (limits.upload_bytes)",
                bytes.len()
            )),
            Some(bytes) => lists::read(&file.file_name, &bytes).map_err(|e| e.to_string()),
        };
        found.push((Some(file.clone()), None, list));
    }
    for (message, text) in &view.thread {
        let has_file = view
            .attachments
            .iter()
            .any(|a| a.message == message.id && a.kind == AttachmentKind::List);
        if message.direction != Direction::In || message.automatic.is_some() || has_file {
            continue;
        }
        if let Some(csv) = request_in_text(text)
            && let Ok(list) = lists::read("request.csv", csv.as_bytes())
        {
            found.push((None, Some(message.id), Ok(list)));
        }
    }
    let mut requests = Vec::new();
    for (attachment, message, list) in found.into_iter().rev() {
        let rows = match &list {
            Ok(list) => list.requests(&defaults),
            Err(_) => Vec::new(),
        };
        let reports = services.preview_list(actor, rows.clone()).await?;
        requests.push(TicketRequest {
            attachment,
            message,
            list,
            rows,
            reports,
        });
    }
    Ok(requests)
}

/// Makes the migrations of one of a ticket's lists (a file, or the request in an
/// email's text; without either, the newest request in a text) from its ready rows.
pub async fn make_migrations(
    services: &Services,
    actor: &Actor,
    ticket: TicketId,
    attachment: Option<AttachmentId>,
    message: Option<i64>,
) -> ServiceResult<Vec<RowReport>> {
    let view = services.ticket_view(ticket).await?;
    let requests = ticket_requests(services, actor, &view).await?;
    let Some(request) = requests.into_iter().find(|r| {
        r.attachment.as_ref().map(|a| a.id) == attachment
            && (attachment.is_some() || message.is_none() || r.message == message)
    }) else {
        return Err(ServiceError::NotFound("list"));
    };
    if let Err(why) = &request.list {
        return Err(ServiceError::field("attachment", why.clone()));
    }
    services
        .make_ticket_migrations(actor, ticket, attachment, request.rows)
        .await
}

/// A test hook for the crash tests, compiled only with the `failpoints` feature: with
/// `FERRY_TEST_ABORT_AFTER_TICKETS=N` in the environment, the process aborts right
/// after the Nth email is stored in its ticket, before it is moved out of the folder.
#[cfg(feature = "failpoints")]
mod crash_point {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    static STORED: AtomicU64 = AtomicU64::new(0);

    pub fn after_store() {
        let limit = LIMIT.get_or_init(|| {
            std::env::var("FERRY_TEST_ABORT_AFTER_TICKETS")
                .ok()
                .and_then(|v| v.parse().ok())
        });
        if let Some(limit) = limit
            && STORED.fetch_add(1, Ordering::SeqCst) + 1 >= *limit
        {
            std::process::abort();
        }
    }
}

#[cfg(not(feature = "failpoints"))]
mod crash_point {
    pub fn after_store() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_in_the_text_needs_each_fact_once() {
        let text = "Hello,\n\nplease move my mail.\n\nEmail: ana@old.example\nPassword: s3cr;et\nIMAP server: imap.old.example\n\nThanks";
        let csv = request_in_text(text).unwrap();
        let list = lists::read("request.csv", csv.as_bytes()).unwrap();
        let rows = list.requests(&lists::RowDefaults::default());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].request.source.username, "ana@old.example");
        assert_eq!(rows[0].request.source.host, "imap.old.example");
        assert!(rows[0].problems.is_empty(), "{:?}", rows[0].problems);
        // Two mailboxes, or a fact missing: a person reads it.
        let two = format!("{text}\nEmail: bob@old.example\n");
        assert_eq!(request_in_text(&two), None);
        assert_eq!(request_in_text("Email: a@b.example\nPassword: x\n"), None);
        assert_eq!(request_in_text("Can you call me?"), None);
    }
}
