//! The steps of a migration's life that are not a worker's: the MX checks (a cron job
//! that moves a switched domain towards its post-MX pass), the credential purge, and the
//! one way every step is written (`Step`, `Services::write_step`: a compare-and-set on
//! the status, its audit event and its email in one transaction). The worker's side
//! (validate, a pass, delete migrated) is in `scheduler::runner`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{ServiceResult, Services};
use crate::domain::{
    Actor, EmailAddress, Migration, MigrationId, MigrationStatus, NewAuditEvent, mx_answer,
    mx_switched,
};
use crate::render::emails::{MigrationEmail, MigrationFacts, MigrationNews};
use crate::store::{StatusChange, Tx};

/// Who the MX checks and the purge are in the audit trail.
const SYSTEM: Actor = Actor::System;

impl Services {
    /// Looks up the MX of every migration waiting for it; a switched domain gets its
    /// post-MX pass after the grace period.
    pub async fn check_mx(&self) -> ServiceResult<()> {
        let nameserver = self.settings().mx_nameserver();
        let dns_timeout = std::time::Duration::from_secs(self.settings().timeouts.dns_seconds);
        for m in self.store.migrations_watching_mx().await? {
            let hosts = match crate::connectors::dns::lookup_mx(
                &m.mx_domain,
                nameserver,
                dns_timeout,
            )
            .await
            {
                Ok(hosts) => hosts,
                Err(err) => {
                    tracing::warn!(migration = %m.id, domain = %m.mx_domain, error = %err, "MX check failed");
                    continue;
                }
            };
            let now = self.now();
            let answer = mx_answer(&hosts);
            self.store.record_mx_check(m.id, &answer, now).await?;
            if mx_switched(&self.settings().provider.mx_patterns, &hosts) {
                self.mark_mx_switched(
                    &SYSTEM,
                    &m,
                    &format!("the MX of {} is now {answer}", m.mx_domain),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Records the MX switch and sets the post-MX pass after the grace period.
    pub(super) async fn mark_mx_switched(
        &self,
        actor: &Actor,
        m: &Migration,
        why: &str,
    ) -> ServiceResult<bool> {
        let now = self.now();
        let grace = self.settings().mx.grace();
        let tx = self.store.begin().await?;
        // A sync pass may be running: it resumes the post-MX pass when it ends, from
        // the switch time recorded here.
        let waiting = m.status == MigrationStatus::WaitingForMx;
        let step = Step {
            from: m.status,
            to: m.status,
            change: StatusChange {
                mx_switched_at: Some(Some(now)),
                next_run_at: waiting.then_some(Some(now + grace)),
                ..Default::default()
            },
            action: "migration.mx_switched",
            detail: json!({ "why": why, "post_mx_at": now + grace }),
            email: None,
        };
        if !self.write_step(&tx, actor, m, step, now).await? {
            return Ok(false);
        }
        tx.commit().await?;
        tracing::info!(migration = %m.id, why, "MX switched");
        self.wake_workers();
        Ok(true)
    }

    /// Erases the passwords of migrations finished longer ago than the retention, and
    /// the bytes of uploaded lists older than it.
    pub async fn purge_credentials(&self) -> ServiceResult<u64> {
        let now = self.now();
        let before =
            now - chrono::Duration::days(i64::from(self.settings().retention.credential_days));
        let mut purged = 0;
        for id in self.store.migrations_to_purge(before).await? {
            let tx = self.store.begin().await?;
            if tx.purge_credentials(id, now).await? {
                audit(&tx, id, "migration.credentials_purged", json!({}), now).await?;
                purged += 1;
            }
            tx.commit().await?;
        }
        if purged > 0 {
            tracing::info!(n_migrations = purged, "Stored passwords erased");
        }
        // Uploaded lists hold passwords too: bytes never used go with the same rule.
        let uploads = self.store.purge_uploads(before, now).await?;
        if uploads > 0 {
            tracing::info!(n_uploads = uploads, "Uploaded lists erased");
        }
        // Files uploaded to import go after their own retention.
        self.purge_uploaded_files().await?;
        // So do the emails and files of closed tickets.
        let tickets = self.store.purge_tickets(before, now).await?;
        if tickets > 0 {
            tracing::info!(
                n_items = tickets,
                "Emails and files of closed tickets erased"
            );
        }
        Ok(purged)
    }

    /// Renders the emails about `m` and queues them in `tx`: the customer's copy (with
    /// the link to their page) when the news is for them and is not what they were
    /// last told, and staff's copy (with the console link, saying whether the customer
    /// got one). News that is the last one sent about `m` is not sent again.
    pub(crate) async fn enqueue(
        &self,
        tx: &Tx,
        m: &Migration,
        news: &MigrationNews,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let key = news.key(m.window_start);
        let (last_news, customer_told) = tx.news_of(m.id).await?;
        if last_news.as_deref() == Some(key.as_str()) {
            tracing::debug!(migration = %m.id, news = %key, "Not sent twice");
            return Ok(());
        }
        // A project's mailbox tells its customer only what they must act on: the
        // project's own emails (created, digest, completion) report the rest, and its
        // staff are not told of each of its mailboxes' arrival.
        let in_project = m.project.is_some();
        if in_project && matches!(news, MigrationNews::Received {}) {
            tx.record_news(m.id, &key, false).await?;
            return Ok(());
        }
        let to_customer = news.for_customer(m.notify_customer)
            && (!in_project || news.is_action_needed())
            && customer_told.as_deref() != Some(key.as_str());
        let about = || Some(("migration", m.id.to_string()));
        let staff_facts = MigrationFacts {
            customer_copy: to_customer,
            ..self.migration_facts(m)
        };
        if to_customer {
            let requester = EmailAddress::parse("requester_email", &m.requester_email)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let facts = MigrationFacts {
                url: self
                    .customer_url(m)
                    .unwrap_or_else(|| staff_facts.url.clone()),
                for_staff: false,
                ..staff_facts.clone()
            };
            let email = MigrationEmail {
                facts: &facts,
                news,
            };
            let mut email = self.renderer.email(vec![requester], &email, about())?;
            // A migration made from a ticket tells the customer in that conversation.
            if let Some(ticket) = m.ticket {
                email = self
                    .threaded(tx, ticket, email)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            tx.enqueue_email(email, now).await?;
        }
        if let Some(staff) = self.staff_address() {
            let email = MigrationEmail {
                facts: &staff_facts,
                news,
            };
            tx.enqueue_email(self.renderer.email(vec![staff], &email, about())?, now)
                .await?;
        }
        tx.record_news(m.id, &key, to_customer).await?;
        Ok(())
    }
}

/// One step of a migration's life: its status moved by compare-and-set from `from`,
/// the audit event, and the email about it when one is due.
pub(crate) struct Step {
    pub from: MigrationStatus,
    pub to: MigrationStatus,
    pub change: StatusChange,
    pub action: &'static str,
    pub detail: Value,
    /// The email about it, when one is due.
    pub email: Option<MigrationNews>,
}

impl Services {
    /// Writes `step` of `m` in `tx`, as `actor`. False when the migration had moved on
    /// meanwhile: nothing is written, and the caller drops (or commits) `tx`.
    pub(crate) async fn write_step(
        &self,
        tx: &Tx,
        actor: &Actor,
        m: &Migration,
        step: Step,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        if !tx
            .change_migration_status(m.id, step.from, step.to, step.change, now)
            .await?
        {
            return Ok(false);
        }
        audit_as(tx, actor, m.id, step.action, step.detail, now).await?;
        if let Some(news) = step.email {
            let mut after = m.clone();
            after.status = step.to;
            self.enqueue(tx, &after, &news, now).await?;
        }
        Ok(true)
    }
}

pub(super) async fn audit(
    tx: &Tx,
    id: MigrationId,
    action: &'static str,
    detail: Value,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    audit_as(tx, &SYSTEM, id, action, detail, now).await
}

pub(super) async fn audit_as(
    tx: &Tx,
    actor: &Actor,
    id: MigrationId,
    action: &'static str,
    detail: Value,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut event = NewAuditEvent::new(actor, action);
    event.subject = Some(("migration", id.to_string()));
    event.detail = detail;
    tx.audit(event, now).await?;
    Ok(())
}
