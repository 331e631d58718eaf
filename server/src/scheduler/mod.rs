//! Runs migrations' work in this process. Work lives in the database (`next_work`,
//! `next_run_at`); a claimer leases due rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`;
//! SQLite: compare-and-set) within `capacity.max_concurrent`, and each leased
//! migration runs in its own task with a heartbeat that renews the lease and stops the
//! work when the migration is cancelled or the lease is lost.
//!
//! The periodic work ticks on tokio-cron-scheduler in UTC: the look for due work, MX
//! checks, projects' digests and completion reports, a reload of the settings changed
//! in the console, an outbox round, the credential purge. Windows themselves are UTC instants
//! computed with chrono-tz when a request is made, so no cron job runs in a local zone.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::service::Services;

mod claim;
mod delete;
mod pass;
mod progress;
mod runner;

pub use runner::{Runner, WorkOutcome};

/// The credential purge runs at this minute of every hour (UTC).
const PURGE_CRON: &str = "0 17 * * * *";
/// After a work fails with an error of Ferry's own, it is tried again this much later.
pub(crate) const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// Starts the cron jobs and the claimer, each named; both stop when `shutdown` fires.
pub async fn start(
    services: Services,
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<(&'static str, JoinHandle<()>)>> {
    let owner = format!("{}-{}", hostname(), uuid::Uuid::now_v7());
    let cron = JobScheduler::new().await?;
    let s = services.settings();
    let wake = services.clone();
    cron.add(Job::new_repeated_async(
        Duration::from_secs(s.workers.poll_seconds),
        move |_, _| {
            let services = wake.clone();
            Box::pin(async move { services.wake_workers() })
        },
    )?)
    .await?;
    cron.add(every(
        Duration::from_secs(s.mx.check_seconds),
        &services,
        "MX checks failed",
        |services| async move { services.check_mx().await },
    )?)
    .await?;
    // Projects: a finished one's completion report, a running one's daily digest.
    cron.add(every(
        Duration::from_secs(s.workers.poll_seconds.max(1)),
        &services,
        "Project reports failed",
        |services| async move { services.project_reports().await },
    )?)
    .await?;
    cron.add(every(
        crate::service::RELOAD_EVERY,
        &services,
        "Reloading the settings failed",
        |services| async move { services.reload_settings().await },
    )?)
    .await?;
    let outbox = services.clone();
    cron.add(Job::new_repeated_async(
        Duration::from_secs(s.smtp.poll_seconds.max(1)),
        move |_, _| {
            let services = outbox.clone();
            Box::pin(async move { services.dispatcher().wake() })
        },
    )?)
    .await?;
    let purge = services.clone();
    cron.add(Job::new_async(PURGE_CRON, move |_, _| {
        let services = purge.clone();
        Box::pin(async move {
            if let Err(err) = services.purge_credentials().await {
                tracing::warn!(error = %err, "Credential purge failed");
            }
        })
    })?)
    .await?;
    cron.start().await?;

    // A purge at start too: a Ferry that was down at the hour still purges.
    let first = services.clone();
    tokio::spawn(async move {
        if let Err(err) = first.purge_credentials().await {
            tracing::warn!(error = %err, "Credential purge failed");
        }
    });

    let stop_cron = shutdown.clone();
    let cron_task = tokio::spawn(async move {
        stop_cron.cancelled().await;
        let mut cron = cron;
        if let Err(err) = cron.shutdown().await {
            tracing::warn!(error = %err, "The cron scheduler did not stop cleanly");
        }
    });
    let claimer = tokio::spawn(claim::claim_loop(services, Arc::from(owner), shutdown));
    Ok(vec![("cron", cron_task), ("workers", claimer)])
}

/// A job that runs `work` every `period` and logs its failure as `failed`.
fn every<W, F, T, E>(
    period: Duration,
    services: &Services,
    failed: &'static str,
    work: W,
) -> anyhow::Result<Job>
where
    W: Fn(Services) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let services = services.clone();
    Ok(Job::new_repeated_async(period, move |_, _| {
        let run = work(services.clone());
        Box::pin(async move {
            if let Err(err) = run.await {
                tracing::warn!(error = %err, "{failed}");
            }
        })
    })?)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ferry".into())
}
