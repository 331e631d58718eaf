//! The claimer and the task of each claim: leases due migrations within capacity, and
//! runs each one's work (`runner`) with a heartbeat beside it that renews the lease,
//! stops the work when the migration is cancelled, the lease is taken over or the work
//! shows no sign of life.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::RETRY_AFTER_ERROR;
use super::runner::Runner;
use crate::connectors::net::Pulse;
use crate::domain::{MigrationId, MigrationStatus};
use crate::service::Services;

/// Leases due work until shutdown; each claim runs in its own task.
///
/// Each claim holds the lease under a token of its own (`owner:n`), not the process's
/// name: when a claim's lease runs out (its heartbeat starved) and this same process
/// claims the migration again, the first claim's heartbeat and checkpoint writes find
/// the token changed and stop, instead of both copying the same folders.
pub(super) async fn claim_loop(services: Services, owner: Arc<str>, shutdown: CancellationToken) {
    let mut running: Vec<(MigrationId, JoinHandle<()>)> = Vec::new();
    let mut claims = 0u64;
    tracing::info!(%owner, "Workers started");
    loop {
        running.retain(|(_, task)| !task.is_finished());
        // A claim that waits on a busy database (a lock, a full pool) must not hold up
        // a shutdown: the round is dropped then; a lease it took meanwhile runs out.
        let round = claim_round(&services, &owner, &mut claims, &mut running, &shutdown);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = round => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = services.work_ready() => {}
        }
    }
    // Running work stops at its next await; its lease is released so that the next
    // start resumes it at once from its checkpoints. Work that does not stop in time
    // is abandoned and named: its lease runs out and the next start resumes it.
    let aborts: Vec<_> = running
        .iter()
        .map(|(id, task)| (*id, task.abort_handle()))
        .collect();
    let all = futures::future::join_all(running.into_iter().map(|(_, task)| task));
    if tokio::time::timeout(STOP_WAIT, all).await.is_err() {
        for (id, abort) in aborts.iter().filter(|(_, a)| !a.is_finished()) {
            tracing::error!(migration = %id, "Work did not stop within {STOP_WAIT:?} of shutdown; abandoned to its lease");
            abort.abort();
        }
    }
}

/// Leases due work until none is left or capacity is reached; each claim runs in its
/// own task, pushed to `running`.
async fn claim_round(
    services: &Services,
    owner: &str,
    claims: &mut u64,
    running: &mut Vec<(MigrationId, JoinHandle<()>)>,
    shutdown: &CancellationToken,
) {
    let lease = chrono::Duration::seconds(
        i64::try_from(services.settings().workers.lease_seconds).unwrap_or(60),
    );
    loop {
        let now = services.now();
        let capacity = services.settings().capacity.clone();
        let limits = match services
            .store()
            .claim_limits(
                now,
                u64::from(capacity.max_concurrent),
                u64::from(capacity.per_source_host),
            )
            .await
        {
            Ok(limits) => limits,
            Err(err) => {
                tracing::warn!(error = %err, "Failed to count running passes");
                break;
            }
        };
        let token: Arc<str> = Arc::from(format!("{owner}:{claims}"));
        match services
            .store()
            .claim_due_migration(&token, now, now + lease, &limits)
            .await
        {
            Ok(Some(m)) => {
                *claims += 1;
                let (services, stop) = (services.clone(), shutdown.child_token());
                // Every line the work logs carries its migration, work and (once
                // known) pass; the engine adds the folder.
                let span = tracing::info_span!(
                    "work",
                    migration = %m.id,
                    work = %m.next_work.map_or_else(String::new, |w| w.to_string()),
                    pass = tracing::field::Empty,
                );
                let id = m.id;
                let task = tokio::spawn(run_one(services, m, token, stop).instrument(span));
                running.push((id, task));
            }
            Ok(None) => break,
            Err(err) => {
                tracing::warn!(error = %err, "Failed to claim due work");
                break;
            }
        }
    }
}

/// How long a shutdown waits for running work (which stops within about two seconds).
const STOP_WAIT: Duration = Duration::from_secs(20);

/// Runs one migration's work with a heartbeat beside it.
async fn run_one(
    services: Services,
    m: crate::domain::Migration,
    owner: Arc<str>,
    stop: CancellationToken,
) {
    let id = m.id;
    services.register_running(id, stop.clone());
    let lease_seconds = services.settings().workers.lease_seconds;
    let every = Duration::from_secs((lease_seconds / 3).max(1));
    // Every wait for a server keeps the pulse going for its deadline; before the first
    // one, the database steps get the time of a connection. The heartbeat gives one
    // more deadline of slack before it calls the work stuck.
    let timeouts = services.settings().timeouts.clone();
    let pulse = Pulse::new(Duration::from_secs(timeouts.connect_seconds * 2));
    let slack = Duration::from_secs(timeouts.connect_seconds.max(timeouts.io_seconds));
    // The claim's own lease ends here at the latest (it began a moment before).
    let held_until =
        services.now() + chrono::Duration::seconds(i64::try_from(lease_seconds).unwrap_or(60));
    let heartbeat = Heartbeat {
        services: services.clone(),
        id,
        owner: owner.clone(),
        stop: stop.clone(),
        pulse: pulse.clone(),
        every,
        slack,
    };
    let heartbeat = tokio::spawn(heartbeat.run(held_until).in_current_span());
    let outcome = Runner::new(services.clone())
        .run_work(m, &owner, stop.clone(), &pulse)
        .await;
    stop.cancel();
    services.unregister_running(id);
    heartbeat.await.ok();
    match outcome {
        Ok(outcome) => tracing::info!(migration = %id, ?outcome, "Work ended"),
        Err(err) => {
            // An error of Ferry's own (a database conflict, a damaged checkpoint): the
            // work has stopped, so its lease is cut to a short backoff and the work is
            // tried again then, not a whole lease later (nor at once, in a loop).
            tracing::error!(migration = %id, error = %format!("{err:#}"), retry_in_s = RETRY_AFTER_ERROR.as_secs(), "Work failed; it will be tried again");
            let until = services.now()
                + chrono::Duration::from_std(RETRY_AFTER_ERROR).unwrap_or(chrono::Duration::zero());
            if let Err(err) = services.store().renew_lease(id, &owner, until).await {
                tracing::warn!(migration = %id, error = %err, "Failed to shorten the lease");
            }
        }
    }
    services.wake_workers();
}

/// How often a running work looks whether its migration was cancelled elsewhere.
const STOP_CHECK: Duration = Duration::from_secs(1);

/// What keeps a held migration's lease: every third of the lease it checks the work's
/// pulse, renews the lease and looks whether the migration was cancelled; any of these
/// failing stops the work.
struct Heartbeat {
    services: Services,
    id: MigrationId,
    owner: Arc<str>,
    stop: CancellationToken,
    pulse: Pulse,
    every: Duration,
    slack: Duration,
}

impl Heartbeat {
    /// Renews the lease every `every`, and in between looks every second whether the
    /// migration was cancelled (by a person on another Ferry process: this one's
    /// cancel reaches the work at once through `Services::stop_running`).
    async fn run(self, mut held_until: DateTime<Utc>) {
        let tick = self.every.min(STOP_CHECK);
        let mut renewed_at = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(tick) => {}
            }
            let go_on = if renewed_at.elapsed() >= self.every {
                renewed_at = tokio::time::Instant::now();
                self.beat(&mut held_until).await
            } else {
                !self.told_to_stop().await
            };
            if !go_on {
                self.stop.cancel();
                return;
            }
        }
    }

    /// Whether the migration was cancelled or paused (an unanswered look counts as
    /// not).
    async fn told_to_stop(&self) -> bool {
        let look = self.services.store().get_migration(self.id);
        let cancelled = matches!(
            tokio::time::timeout(self.every, look).await,
            Ok(Ok(Some(m))) if matches!(m.status, MigrationStatus::Cancelled | MigrationStatus::Paused)
        );
        if cancelled {
            tracing::info!(migration = %self.id, "Cancelled or paused; stopping at once");
        }
        cancelled
    }

    /// One beat; false when the work must stop.
    async fn beat(&self, held_until: &mut DateTime<Utc>) -> bool {
        let (services, id, every) = (&self.services, self.id, self.every);
        if self.pulse.stalled(self.slack) {
            // Stuck outside any wait (every wait has its own deadline): let the lease
            // run out so the work is taken up again, fenced from whatever this stuck
            // step might still write.
            tracing::error!(
                migration = %id,
                "No sign of life from the work for longer than its deadlines; no longer renewing its lease"
            );
            return false;
        }
        let until = services.now()
            + chrono::Duration::seconds(
                i64::try_from(services.settings().workers.lease_seconds).unwrap_or(60),
            );
        // The renewal has a deadline too: a held row must not stop the heartbeat from
        // seeing a stalled work at its next beat.
        let renewed =
            match tokio::time::timeout(every, services.store().renew_lease(id, &self.owner, until))
                .await
            {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer from the database within {every:?}")),
            };
        match renewed {
            Ok(true) => *held_until = until,
            Ok(false) => {
                // Released by the work's own last step, or taken over.
                if let Ok(Some(m)) = services.store().get_migration(id).await
                    && m.lease_owner.is_some()
                {
                    tracing::warn!(migration = %id, "Lease taken over; stopping");
                }
                return false;
            }
            Err(err) if services.now() >= *held_until => {
                // Not renewed in time: another worker may claim it any moment.
                tracing::warn!(migration = %id, error = %err, "Lease ran out unrenewed; stopping");
                return false;
            }
            Err(err) => tracing::warn!(migration = %id, error = %err, "Failed to renew a lease"),
        }
        !self.told_to_stop().await
    }
}
