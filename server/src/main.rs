//! The `ferry` command: parses arguments and calls the library. No logic here.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ferry::config::{Overrides, Settings};
use ferry::domain::{Actor, Role, Scope, Scopes};
use ferry::service::{NewStaff, ServiceError};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

/// Ferry: bring customers' mail, contacts and calendars over from their old provider.
///
/// Settings come from defaults, then a config file, then FERRY_* environment variables,
/// then these flags (docs/config.md lists them all).
#[derive(Parser)]
#[command(name = "ferry", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct GlobalArgs {
    /// A TOML config file (default: ./ferry.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and the encryption key [env: FERRY_DATA_DIR] [default: data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… [env: DATABASE_URL] [default: SQLite in the data directory].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the console, the API and the background work. Creates the data directory,
    /// the database and the first admin account (printed once) at first start.
    Serve {
        /// Address to listen on [env: FERRY_BIND] [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        bind: Option<std::net::SocketAddr>,
    },
    /// Manage staff accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Add the demo data in seeds/ (demo staff accounts); safe to run again.
    Seed,
    /// Copy one mailbox from a source IMAP server to a destination IMAP server, like
    /// imapsync: every folder, message, flag and date. Passwords come from
    /// FERRY_SOURCE_PASSWORD / FERRY_DEST_PASSWORD, --*-password-file, or a prompt.
    /// Exit codes: 0 all accounted for, 2 login refused, 3 cannot connect, 4 some
    /// messages failed (see the report), 1 anything else.
    Migrate(Box<ferry::intake::cli::MigrateArgs>),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a staff account. The password comes from FERRY_USER_PASSWORD, or a prompt on a
    /// terminal, or is generated and printed once.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin (also manages accounts and settings) or staff.
        #[arg(long, default_value = "staff")]
        role: String,
    },
    /// List staff accounts.
    List,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token and print it, alone on standard output, once.
    Create {
        /// A name that says who or what uses the token.
        #[arg(long)]
        name: String,
        /// A scope the token grants; repeat for several: migrations:read,
        /// migrations:write, migrations:override, audit:read, settings:admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List API tokens (names, scopes, last use; never the secrets).
    List,
}

fn main() -> ExitCode {
    // clap's own exit status for a bad flag is 2, which `ferry migrate` gives to a
    // refused login: a bad flag is "anything else", 1, like every usage error here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(ferry::intake::cli::exit::ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Command::Migrate(args) = cli.command {
        return migrate(*args);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("Another TLS provider was installed first"))?;
    let mut overrides = Overrides {
        data_dir: cli.global.data_dir,
        database_url: cli.global.database_url,
        ..Default::default()
    };
    if let Command::Serve { bind } = &cli.command {
        overrides.bind = *bind;
    }
    let settings = Settings::load(cli.global.config.as_deref(), &overrides)?;
    init_tracing(&settings)?;
    match cli.command {
        Command::Serve { .. } => serve(settings).await,
        Command::User(UserCommand::Add { email, name, role }) => {
            user_add(settings, &email, &name, &role).await
        }
        Command::User(UserCommand::List) => user_list(settings).await,
        Command::Token(TokenCommand::Create { name, scopes }) => {
            token_create(settings, &name, &scopes).await
        }
        Command::Token(TokenCommand::List) => token_list(settings).await,
        Command::Seed => seed(settings).await,
        Command::Migrate(_) => Ok(()),
    }
}

fn init_tracing(settings: &Settings) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log.filter))
        .context("log.filter is not a valid tracing filter")?;
    ferry::logging::init(filter, settings.log.format == "json")
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let base_url = settings.base_url();
    let running = ferry::app::start(settings).await?;
    if let Some((email, password)) = &running.first_admin {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "\nFerry created the first admin account. Sign in at {base_url}/login with"
        )?;
        writeln!(out, "  email:    {email}")?;
        match password {
            Some(password) => {
                writeln!(out, "  password: {}", password.expose_secret())?;
                writeln!(
                    out,
                    "This password is shown once; change it under \"Your account\".\n"
                )?;
            }
            None => writeln!(
                out,
                "  password: the one set in admin.password (FERRY_ADMIN_PASSWORD)\n"
            )?,
        }
        out.flush()?;
    }
    println!("Ferry is listening on http://{}", running.addr);
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutting down");
        trigger.cancel();
    });
    running.wait(shutdown).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn read_new_password() -> anyhow::Result<(SecretString, bool)> {
    if let Ok(p) = std::env::var("FERRY_USER_PASSWORD") {
        return Ok((SecretString::from(p), false));
    }
    if std::io::stdin().is_terminal() {
        eprint!(
            "Password for the new account (at least {} characters): ",
            ferry::service::MIN_PASSWORD_LEN
        );
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok((
            SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned()),
            false,
        ));
    }
    Ok((ferry::crypto::random_password()?, true))
}

fn explain(err: ServiceError) -> anyhow::Error {
    match err {
        ServiceError::Invalid(errors) => anyhow::anyhow!(
            "{}",
            errors
                .iter()
                .map(|e| format!("--{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => other.into(),
    }
}

async fn user_add(settings: Settings, email: &str, name: &str, role: &str) -> anyhow::Result<()> {
    let role: Role = role
        .parse()
        .map_err(|e: ferry::domain::FieldError| anyhow::anyhow!("--role: {}", e.message))?;
    let (password, generated) = read_new_password()?;
    let services = ferry::app::open(settings).await?;
    let new = NewStaff {
        email,
        name,
        role,
        password: password.clone(),
    };
    let user = services
        .create_user(&Actor::Cli, new, None)
        .await
        .map_err(explain)?;
    println!("Added {} ({}).", user.email, user.role);
    if generated {
        println!("Password (shown once): {}", password.expose_secret());
    }
    Ok(())
}

async fn user_list(settings: Settings) -> anyhow::Result<()> {
    let services = ferry::app::open(settings).await?;
    for user in services.store().list_users().await? {
        println!(
            "{}\t{}\t{}\t{}",
            user.email,
            user.role,
            if user.disabled { "disabled" } else { "active" },
            user.name
        );
    }
    Ok(())
}

async fn token_create(settings: Settings, name: &str, scopes: &[String]) -> anyhow::Result<()> {
    let scopes = scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--scope: {}", e.message))?;
    let services = ferry::app::open(settings).await?;
    let (token, secret) = services
        .create_token(&Actor::Cli, name, Scopes::new(scopes))
        .await
        .map_err(explain)?;
    eprintln!(
        "Created token {:?} with scopes {}; it is printed once:",
        token.name, token.scopes
    );
    println!("{}", secret.expose_secret());
    Ok(())
}

async fn token_list(settings: Settings) -> anyhow::Result<()> {
    let services = ferry::app::open(settings).await?;
    for token in services.store().list_tokens().await? {
        println!(
            "{}\t{}…\t{}\t{}\tlast used {}",
            token.name,
            token.prefix,
            token.scopes,
            if token.revoked { "revoked" } else { "active" },
            token
                .last_used_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "never".into())
        );
    }
    Ok(())
}

async fn seed(settings: Settings) -> anyhow::Result<()> {
    let services = ferry::app::open(settings).await?;
    for line in ferry::seed::apply(&services).await? {
        match line {
            ferry::seed::Seeded::Created {
                email,
                role,
                password,
            } => {
                println!(
                    "created {email} ({role}), password: {}",
                    password.expose_secret()
                );
            }
            ferry::seed::Seeded::AlreadyThere { email } => {
                println!("kept    {email} (already there)")
            }
        }
    }
    Ok(())
}

/// `ferry migrate` needs no data directory or database: the administrator's own tool.
fn migrate(args: ferry::intake::cli::MigrateArgs) -> ExitCode {
    use ferry::intake::cli::exit;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,ferry=info"));
    if let Err(err) = ferry::logging::init(filter, false) {
        eprintln!("warning: no log: {err}");
    }
    match tokio::runtime::Runtime::new() {
        Ok(rt) => ExitCode::from(rt.block_on(ferry::intake::cli::migrate(args))),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::from(exit::ERROR)
        }
    }
}
