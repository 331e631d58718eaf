//! Ferry on port 0 with a fresh database (SQLite in a temporary data directory, or a
//! fresh PostgreSQL database), and an HTTP client that keeps cookies.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use anyhow::Context;
use ferry::clock::OffsetClock;
use ferry::config::Settings;
use secrecy::SecretString;

use crate::postgres::PgDatabase;

pub const ADMIN_EMAIL: &str = "admin@ferry.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub backend: Backend,
    pub smtp_url: Option<String>,
    pub login_max_failures: u32,
    /// Let migrations name loopback servers (the test Dovecots); on unless a test
    /// checks the refusal.
    pub allow_private_targets: bool,
    /// `capacity.max_active`, when a test needs a small limit.
    pub max_active: Option<u32>,
    /// Any other change to the settings (timeouts, the nameserver, …).
    pub tweak: Option<fn(&mut Settings)>,
    /// `mx.nameserver`: the DNS server Ferry asks.
    pub nameserver: Option<std::net::SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            smtp_url: None,
            login_max_failures: 5,
            allow_private_targets: true,
            max_active: None,
            tweak: None,
            nameserver: None,
        }
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// A client that keeps cookies and does not follow redirects.
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    pub services: ferry::service::Services,
    /// The time Ferry reads: a test moves it forward to see days pass.
    pub clock: Arc<OffsetClock>,
    running: Option<ferry::app::Running>,
    _pg: Option<PgDatabase>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        crate::init_crypto();
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let pg = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().expect("a PostgreSQL database")),
        };
        let mut settings = Settings {
            bind: "127.0.0.1:0".parse().expect("an address"),
            data_dir: data_dir.path().to_path_buf(),
            database_url: pg.as_ref().map(PgDatabase::url),
            allow_private_targets: options.allow_private_targets,
            ..Default::default()
        };
        settings.admin.email = ADMIN_EMAIL.into();
        settings.admin.password = Some(SecretString::from(ADMIN_PASSWORD));
        settings.smtp.url = options.smtp_url.map(SecretString::from);
        settings.smtp.from = "Ferry <ferry@provider.test>".into();
        settings.console.login_max_failures = options.login_max_failures;
        if let Some(n) = options.max_active {
            settings.capacity.max_active = n;
        }
        settings.mx.nameserver = options.nameserver.map(|a| a.to_string());
        if let Some(tweak) = options.tweak {
            tweak(&mut settings);
        }
        Self::start(settings, data_dir, pg, Arc::default()).await
    }

    async fn start(
        settings: Settings,
        data_dir: tempfile::TempDir,
        pg: Option<PgDatabase>,
        clock: Arc<OffsetClock>,
    ) -> Self {
        let database_url = settings.database_url();
        let running = ferry::app::start_with_clock(settings, clock.clone())
            .await
            .expect("Ferry starts");
        let base = format!("http://{}", running.addr);
        let services = running.services.clone();
        Self {
            base,
            client: Self::new_client(),
            data_dir,
            database_url,
            services,
            clock,
            running: Some(running),
            _pg: pg,
        }
    }

    /// A second Ferry instance on this one's data directory (its key) and database,
    /// with its own connection pool, workers and port: what a provider running two
    /// processes has.
    pub async fn spawn_beside(&self) -> Self {
        let settings = Settings {
            bind: "127.0.0.1:0".parse().expect("an address"),
            ..(*self.services.settings()).clone()
        };
        Self::start(
            settings,
            tempfile::tempdir().expect("a temporary directory"),
            None,
            self.clock.clone(),
        )
        .await
    }

    /// Another browser: its own cookies.
    pub fn new_client() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs `client` in through the login form; returns the response to the POST.
    pub async fn sign_in(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        let form = client
            .get(self.url("/login"))
            .send()
            .await
            .expect("GET /login");
        let html = form.text().await.expect("the login page");
        let csrf = csrf_from(&html).expect("a CSRF token in the login form");
        client
            .post(self.url("/login"))
            .form(&[("email", email), ("password", password), ("csrf", &csrf)])
            .send()
            .await
            .expect("POST /login")
    }

    /// GETs a console page and returns its HTML, asserting a 200.
    pub async fn page(&self, client: &reqwest::Client, path: &str) -> String {
        let resp = client.get(self.url(path)).send().await.expect("GET");
        let status = resp.status();
        let body = resp.text().await.expect("a body");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Posts a console form with the CSRF token of the page at `page`.
    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let html = self.page(client, page).await;
        let csrf = csrf_from(&html).expect("a CSRF token on the page");
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        client
            .post(self.url(action))
            .form(&form)
            .send()
            .await
            .expect("POST")
    }

    /// A new API token named `name` with `scopes`, as `ferry token create` makes one.
    pub async fn token(&self, name: &str, scopes: &[ferry::domain::Scope]) -> String {
        use secrecy::ExposeSecret;
        let (_, secret) = self
            .services
            .create_token(
                &ferry::domain::Actor::Cli,
                name,
                ferry::domain::Scopes::new(scopes.iter().copied()),
            )
            .await
            .expect("a token");
        secret.expose_secret().to_owned()
    }

    /// Every email in the outbox (at most 500), as queued.
    pub async fn outbox(&self) -> Vec<ferry::domain::OutboxMessage> {
        self.services
            .store()
            .list_outbox(&ferry::store::OutboxFilter {
                limit: 500,
                ..Default::default()
            })
            .await
            .expect("the outbox")
    }

    /// The link to the customer's page (`/track/…`) in the latest email to `to`.
    pub async fn customer_path(&self, to: &str) -> Option<String> {
        self.outbox()
            .await
            .iter()
            .filter(|m| m.to == [to])
            .flat_map(|m| m.body_text.split_whitespace())
            .find_map(|w| w.split_once("/track/"))
            .map(|(_, token)| format!("/track/{}", token.trim_end_matches(['.', ','])))
    }

    /// The audit events whose action starts with `prefix`, newest first (at most 50).
    pub async fn audit(&self, prefix: &str) -> Vec<ferry::domain::AuditEvent> {
        self.services
            .store()
            .list_audit(&ferry::store::AuditFilter {
                limit: 50,
                action_prefix: Some(prefix.into()),
                ..Default::default()
            })
            .await
            .expect("the audit log")
    }

    /// The `ferry` binary, set to this app's data directory and database.
    pub fn ferry_command(&self) -> Command {
        let mut cmd = Command::new(ferry_binary());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FERRY_DATA_DIR", self.data_dir.path())
            .env("DATABASE_URL", &self.database_url)
            .env("FERRY_LOG__FILTER", "warn");
        cmd
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("Ferry stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.shutdown_token().cancel();
        }
    }
}

/// The value of the first `name="csrf"` hidden field in a page.
pub fn csrf_from(html: &str) -> Option<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The `ferry` binary that `scripts/test` builds before the suite, with the `failpoints`
/// feature the crash tests need.
pub fn ferry_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    let path = target.join("debug").join("ferry");
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--quiet",
                "-p",
                "ferry",
                "--features",
                "failpoints",
                "--bin",
                "ferry",
            ])
            .current_dir(crate::workspace_root())
            .status()
            .context("cargo build -p ferry")
            .expect("cargo runs");
        assert!(status.success(), "the ferry binary builds");
    }
    path
}

/// One side of a migration request for a test server on 127.0.0.1 without TLS.
pub fn plain_side(port: u16, user: &str, password: &str) -> ferry::domain::ServerInput {
    ferry::domain::ServerInput {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: Some(Ok(ferry::domain::Security::None)),
        username: user.into(),
        password: Some(secrecy::SecretString::from(password.to_owned())),
        authuser: None,
        dav_url: None,
        upload_id: None,
    }
}
