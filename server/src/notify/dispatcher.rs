//! The outbox's sender: claims due rows by compare-and-set, sends them over SMTP, retries with backoff.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clock::SharedClock;
use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{SmtpSettings, TimeoutSettings};
use crate::domain::OutboxMessage;
use crate::store::Store;

/// Messages claimed per round; a round ends before the next is claimed.
const BATCH: u64 = 20;
/// How long a claimed message is ours; a crash mid-send retries it after this.
const LEASE: Duration = Duration::from_secs(300);
/// Backoff before attempt n+1 is `BASE_BACKOFF * 2^(n-1)`, capped at `MAX_BACKOFF`.
const BASE_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Sends one email over SMTP.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// `None` when no SMTP URL is configured.
    pub fn from_settings(
        settings: &SmtpSettings,
        timeouts: &TimeoutSettings,
    ) -> anyhow::Result<Option<Self>> {
        let Some(url) = &settings.url else {
            return Ok(None);
        };
        Self::new(url, &settings.from, timeouts).map(Some)
    }

    /// Every SMTP exchange gives up after `timeouts.smtp_seconds`.
    pub fn new(url: &SecretString, from: &str, timeouts: &TimeoutSettings) -> anyhow::Result<Self> {
        // The URL may carry a password: the error names neither.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| anyhow::anyhow!("smtp.url is not a valid smtp:// or smtps:// URL"))?
            .timeout(Some(Duration::from_secs(timeouts.smtp_seconds)))
            .build();
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("smtp.from {from:?} is not an email address"))?;
        Ok(Self { transport, from })
    }

    pub async fn send(&self, message: &OutboxMessage) -> anyhow::Result<()> {
        // Every email of Ferry's says a program sent it (RFC 3834), so that a
        // customer's vacation responder does not answer it and start a loop.
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(message.subject.clone())
            .header(AutoSubmitted)
            .message_id(message.message_id.as_ref().map(|id| format!("<{id}>")));
        if let Some(to) = message
            .reply_to
            .as_deref()
            .and_then(|a| a.parse::<Mailbox>().ok())
        {
            builder = builder.reply_to(to);
        }
        if let Some(id) = &message.in_reply_to {
            builder = builder.in_reply_to(format!("<{id}>"));
        }
        if !message.references.is_empty() {
            let ids: Vec<String> = message
                .references
                .iter()
                .map(|id| format!("<{id}>"))
                .collect();
            builder = builder.references(ids.join(" "));
        }
        for to in &message.to {
            builder = builder.to(to
                .parse()
                .with_context(|| format!("Bad recipient {to:?}"))?);
        }
        let body =
            MultiPart::alternative_plain_html(message.body_text.clone(), message.body_html.clone());
        let body = match &message.attachment {
            None => body,
            Some((name, bytes)) => MultiPart::mixed().multipart(body).singlepart(
                lettre::message::Attachment::new(name.clone()).body(
                    bytes.clone(),
                    lettre::message::header::ContentType::parse("application/octet-stream")
                        .context("a content type")?,
                ),
            ),
        };
        let email = builder
            .multipart(body)
            .context("Failed to build the email")?;
        self.transport
            .send(email)
            .await
            .context("SMTP delivery failed")?;
        Ok(())
    }
}

/// `Auto-Submitted: auto-replied`; lettre has no type for this header (RFC 3834).
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-replied".to_owned())
    }
}

/// Delivers the outbox: woken when a message is written, and every `poll` anyway.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    store: Store,
    /// Replaced when an admin changes the SMTP settings in the console.
    mailer: Arc<RwLock<Option<SmtpMailer>>>,
    wake: Arc<Notify>,
    poll: Duration,
    max_attempts: u32,
    clock: SharedClock,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        mailer: Option<SmtpMailer>,
        settings: &SmtpSettings,
        clock: SharedClock,
    ) -> Self {
        Self {
            clock,
            store,
            mailer: Arc::new(RwLock::new(mailer)),
            wake: Arc::new(Notify::new()),
            poll: Duration::from_secs(settings.poll_seconds.max(1)),
            max_attempts: settings.max_attempts.max(1),
        }
    }

    pub fn is_configured(&self) -> bool {
        self.mailer().is_some()
    }

    fn mailer(&self) -> Option<SmtpMailer> {
        self.mailer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends the next round through `mailer` (`None`: notifications wait in the outbox).
    pub fn set_mailer(&self, mailer: Option<SmtpMailer>) {
        *self
            .mailer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = mailer;
        self.wake();
    }

    /// Asks the loop to deliver now (after a transaction wrote to the outbox).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        if !self.is_configured() {
            tracing::warn!("No SMTP server configured; notifications stay in the outbox");
        }
        while !shutdown.is_cancelled() {
            if let Some(mailer) = self.mailer() {
                match self.deliver_due(&mailer).await {
                    Ok(n) if n as u64 == BATCH => continue,
                    Ok(_) => {}
                    Err(err) => {
                        tracing::error!(error = %format!("{err:#}"), "Outbox round failed");
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// One round: claim due messages and try each once. Returns how many were claimed.
    pub async fn deliver_due(&self, mailer: &SmtpMailer) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(LEASE)?;
        let claimed = self.store.claim_due_outbox(now, now + lease, BATCH).await?;
        let n = claimed.len();
        for message in claimed {
            match mailer.send(&message).await {
                Ok(()) => {
                    self.store
                        .mark_outbox_sent(message.id, self.clock.now())
                        .await?;
                    tracing::info!(outbox_id = %message.id, template = %message.template, "Notification sent");
                }
                Err(err) => {
                    let reason = format!("{err:#}");
                    let attempts = u32::try_from(message.attempts).unwrap_or(u32::MAX);
                    let retry_at = (attempts < self.max_attempts).then(|| {
                        let backoff = BASE_BACKOFF
                            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
                            .min(MAX_BACKOFF);
                        self.clock.now() + chrono::Duration::from_std(backoff).unwrap_or_default()
                    });
                    tracing::warn!(outbox_id = %message.id, attempts, error = %reason, "Notification not delivered");
                    self.store
                        .mark_outbox_attempt_failed(message.id, &reason, retry_at)
                        .await?;
                }
            }
        }
        Ok(n)
    }
}
