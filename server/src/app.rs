//! The composition root: settings in; the store, renderer, dispatcher and HTTP server
//! built and started; everything stopped together on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Settings;
use crate::crypto::Cipher;
use crate::domain::EmailAddress;
use crate::metrics::Metrics;
use crate::notify::{Dispatcher, SmtpMailer};
use crate::render::Renderer;
use crate::service::{LiveSettings, Services};
use crate::store::Store;

/// The file in the data directory that holds the encryption key.
pub const KEY_FILE: &str = "secret.key";
/// How long in-flight requests get to finish on shutdown.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);
/// How often expired console sessions are deleted.
const SESSION_SWEEP: Duration = Duration::from_secs(3600);

/// Opens the data directory and the database, and builds the services. Every command
/// that touches Ferry's data starts here.
pub async fn open(settings: Settings) -> anyhow::Result<Services> {
    open_with_clock(settings, Arc::new(SystemClock)).await
}

/// [`open`] with the clock the services read (a test's clock that it moves forward).
pub async fn open_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Services> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "Failed to create the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let own_sqlite = settings
        .database_url
        .as_deref()
        .is_none_or(|url| url.trim().is_empty());
    keep_private(&settings.data_dir, own_sqlite)?;
    let cipher = Cipher::load_or_create(&settings.data_dir.join(KEY_FILE))?;
    let store = Store::connect(&settings.database_url()).await?;
    let mailer = SmtpMailer::from_settings(&settings.smtp, &settings.timeouts)?;
    let dispatcher = Dispatcher::new(store.clone(), mailer, &settings.smtp, clock.clone());
    let services = Services::new(
        store,
        Renderer::new()?,
        dispatcher,
        cipher,
        LiveSettings::new(settings),
        clock,
    );
    services.reload_settings().await?;
    Ok(services)
}

/// The data directory readable by Ferry's user only (0700), and the database and its
/// journals in it 0600: created so before SQLite opens it (SQLite gives the WAL and
/// shared-memory files the database's mode), tightened when an older Ferry left them
/// readable by others.
fn keep_private(data_dir: &std::path::Path, own_sqlite: bool) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let set = |path: &std::path::Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("Failed to make {} private", path.display()))
        };
        set(data_dir, 0o700)?;
        let db = data_dir.join("ferry.db");
        if own_sqlite && !db.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&db)
                .with_context(|| format!("Failed to create {}", db.display()))?;
        }
        for name in ["ferry.db", "ferry.db-wal", "ferry.db-shm", KEY_FILE] {
            let path = data_dir.join(name);
            if path.exists() {
                set(&path, 0o600)?;
            }
        }
    }
    Ok(())
}

/// A running Ferry: its address, its first admin when this start created one, and the
/// handle that stops it.
pub struct Running {
    pub addr: SocketAddr,
    pub services: Services,
    /// The first admin's email when this start created it, with its password when
    /// Ferry generated it (one set in the settings is never repeated).
    pub first_admin: Option<(EmailAddress, Option<SecretString>)>,
    shutdown: CancellationToken,
    /// Each background task with the name a stop that waits too long reports.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    server: JoinHandle<std::io::Result<()>>,
}

/// How long a stop waits for each background task once the HTTP server has stopped.
/// The workers stop at their next await (within about two seconds); one that does not
/// is a defect, reported by name instead of a stop that never returns.
const TASK_STOP_WAIT: Duration = Duration::from_secs(30);

impl Running {
    /// Stops serving, lets in-flight requests finish, and stops the background tasks.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await.context("The HTTP server panicked")??;
        for (name, task) in self.tasks {
            let abort = task.abort_handle();
            match tokio::time::timeout(TASK_STOP_WAIT, task).await {
                Ok(ended) => ended.with_context(|| format!("The {name} task panicked"))?,
                Err(_) => {
                    abort.abort();
                    anyhow::bail!(
                        "The {name} task did not stop within {TASK_STOP_WAIT:?} of shutdown"
                    );
                }
            }
        }
        Ok(())
    }

    /// Waits until the server stops by itself (it does not, unless `shutdown` fires).
    pub async fn wait(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        shutdown.cancelled().await;
        self.stop().await
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Starts everything `ferry serve` runs and returns once the port is bound.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    start_with_clock(settings, Arc::new(SystemClock)).await
}

/// [`start`] with the clock the services read.
pub async fn start_with_clock(
    mut settings: Settings,
    clock: SharedClock,
) -> anyhow::Result<Running> {
    let bind = settings.bind;
    let acceptor = TcpListener::bind(bind)
        .into_acceptor()
        .await
        .with_context(|| format!("Failed to listen on {bind}"))?;
    let addr = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .context("The listener has no socket address")?;
    // With port 0 the real port is known only now; links in emails need it.
    settings.bind = addr;
    let services = open_with_clock(settings, clock).await?;
    let first_admin = services.ensure_first_admin().await?;
    let shutdown = CancellationToken::new();

    let mut tasks = vec![
        (
            "outbox",
            tokio::spawn(services.dispatcher().clone().run(shutdown.clone())),
        ),
        (
            "session sweep",
            tokio::spawn(sweep_sessions(services.clone(), shutdown.clone())),
        ),
        (
            "support mailbox",
            tokio::spawn(crate::intake::support::run(
                services.clone(),
                shutdown.clone(),
            )),
        ),
    ];
    tasks.extend(crate::scheduler::start(services.clone(), shutdown.clone()).await?);

    let routes = crate::intake::http::routes(services.clone(), Metrics::new());
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(routes, stop.cancelled_owned(), Some(GRACEFUL_SHUTDOWN))
            .await
    });
    tracing::info!(%addr, database = services.store().backend_name(), "Ferry is serving");
    Ok(Running {
        addr,
        services,
        first_admin,
        shutdown,
        tasks,
        server,
    })
}

async fn sweep_sessions(services: Services, shutdown: CancellationToken) {
    loop {
        match services
            .store()
            .delete_expired_sessions(services.now())
            .await
        {
            Ok(n) if n > 0 => tracing::info!(n_sessions = n, "Expired sessions deleted"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "Failed to delete expired sessions"),
        }
        // Failed sign-ins whose window has passed count for nothing any more.
        let window = services.settings().console.login_window_seconds;
        let before = services.now()
            - chrono::Duration::seconds(i64::try_from(window).unwrap_or(i64::MAX / 1000));
        if let Err(err) = services.store().prune_login_failures(before).await {
            tracing::warn!(error = %err, "Failed to forget old failed sign-ins");
        }
        if let Err(err) = services.forget_old_idempotency_keys().await {
            tracing::warn!(error = %err, "Failed to forget old idempotency keys");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SESSION_SWEEP) => {}
        }
    }
}
