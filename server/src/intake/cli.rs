//! `ferry migrate`: one mailbox from the command line, the way imapsync is used. Turns
//! flags into a [`MailJob`], shows progress (bars on a terminal, log lines elsewhere),
//! prints the report, and maps the outcome to an exit code.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use chrono::NaiveDate;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use secrecy::SecretString;

use crate::clock::SystemClock;
use crate::connectors::imap::ConnectError;
use crate::connectors::net::Reach;
use crate::domain::{DuplicatePolicy, FolderStrategy, ImapEndpoint, Mode, Security};
use crate::planner::folders::{FolderMap, FolderPlan, Selection};
use crate::sync::checkpoint::{FileCheckpoints, MemoryCheckpoints};
use crate::sync::mail::{
    self, FolderReport, MailJob, MigrateError, Outcome, Progress, Report, Side,
};

/// Exit codes of `ferry migrate`.
pub mod exit {
    /// Every message copied or deliberately skipped.
    pub const OK: u8 = 0;
    /// Bad arguments or an unexpected error.
    pub const ERROR: u8 = 1;
    pub const AUTH_FAILED: u8 = 2;
    pub const CONNECTION_FAILED: u8 = 3;
    /// Some messages could not be copied (see the report).
    pub const PARTIAL: u8 = 4;
    /// The pass does not add up: source messages neither copied, skipped nor failed.
    /// Never a success, whatever else the report says; run again, and report it.
    pub const INCOMPLETE: u8 = 5;
}

/// `ferry migrate`'s flags, parsed by clap into Ferry's own types: a wrong word is
/// refused before anything connects, with the values it may take.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    #[arg(long)]
    pub source_host: String,
    /// Default: 993 with ssl, 143 otherwise.
    #[arg(long)]
    pub source_port: Option<u16>,
    #[arg(long, value_enum, default_value_t = Security::Ssl)]
    pub source_security: Security,
    #[arg(long)]
    pub source_user: String,
    /// Log in as this admin/master user on behalf of --source-user (SASL PLAIN authzid).
    #[arg(long)]
    pub source_authuser: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub source_password_file: Option<PathBuf>,
    #[arg(long)]
    pub dest_host: String,
    #[arg(long)]
    pub dest_port: Option<u16>,
    #[arg(long, value_enum, default_value_t = Security::Ssl)]
    pub dest_security: Security,
    #[arg(long)]
    pub dest_user: String,
    #[arg(long)]
    pub dest_authuser: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub dest_password_file: Option<PathBuf>,
    /// Folders and messages, or the folder tree only.
    #[arg(long, value_enum, default_value_t = Mode::Full)]
    pub mode: Mode,
    /// When the destination folder already has the message.
    #[arg(long, value_enum, default_value_t = DuplicatePolicy::Skip)]
    pub duplicates: DuplicatePolicy,
    /// Delete each source message once its copy is confirmed at the destination.
    #[arg(long)]
    pub delete_source: bool,
    /// Only messages received on or after this day.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub since: Option<NaiveDate>,
    /// Only this folder and its subfolders (repeatable), e.g. "Archive/2024".
    #[arg(long = "folder", value_name = "NAME")]
    pub folders: Vec<String>,
    /// Not this folder nor its subfolders (repeatable).
    #[arg(long = "exclude", value_name = "NAME")]
    pub excludes: Vec<String>,
    /// Which folders: all, standard (INBOX and the special folders) or inbox-only.
    #[arg(long, value_enum, default_value_t = FolderStrategy::All)]
    pub strategy: FolderStrategy,
    /// Send a source folder (and its subfolders) to a destination folder of your
    /// choice, before any special-folder rule (repeatable), e.g. "Sent Items=Archive/Sent".
    #[arg(long = "map", value_name = "SRC=DST", value_parser = FolderMap::parse)]
    pub maps: Vec<FolderMap>,
    /// Remove at the destination the copies of messages expunged at the source since an
    /// earlier run (only copies this migration made).
    #[arg(long)]
    pub sync_deletions: bool,
    /// Count every folder's messages first, so the total and ETA are known.
    #[arg(long)]
    pub count_first: bool,
    /// Folders copied at once, each with its own connection to either server (1-16).
    #[arg(long, default_value_t = mail::DEFAULT_CONNECTIONS,
          value_parser = parse_connections)]
    pub connections: usize,
    /// Keep checkpoints in this file: run the same command again to resume or to copy
    /// only what is new.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Print the final report as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    /// Do not verify the servers' TLS certificates.
    #[arg(long)]
    pub insecure_skip_verify: bool,
}

fn parse_connections(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|n| (1..=16).contains(n))
        .ok_or_else(|| format!("{text:?} is not a number from 1 to 16"))
}

/// One side's flags, as they are named on the command line.
struct SideArgs<'a> {
    host: &'a str,
    port: Option<u16>,
    security: Security,
    user: &'a str,
    authuser: Option<&'a String>,
    password_file: Option<&'a PathBuf>,
}

fn password(side: &str, env: &str, file: Option<&PathBuf>) -> anyhow::Result<SecretString> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--{side}-password-file: cannot read {}", path.display()))?;
        return Ok(SecretString::from(
            text.trim_end_matches(['\r', '\n']).to_owned(),
        ));
    }
    if let Ok(value) = std::env::var(env) {
        return Ok(SecretString::from(value));
    }
    if std::io::stdin().is_terminal() {
        let value = rpassword::prompt_password(format!("{side} password: "))?;
        return Ok(SecretString::from(value));
    }
    anyhow::bail!(
        "No {side} password: set {env}, give --{side}-password-file, or run on a terminal to be asked"
    )
}

fn endpoint(
    side: &str,
    env: &str,
    args: SideArgs<'_>,
    verify_tls: bool,
) -> anyhow::Result<ImapEndpoint> {
    anyhow::ensure!(!args.host.trim().is_empty(), "--{side}-host is required");
    anyhow::ensure!(!args.user.trim().is_empty(), "--{side}-user is required");
    Ok(ImapEndpoint {
        host: args.host.trim().to_owned(),
        port: args.port.unwrap_or(args.security.default_port()),
        security: args.security,
        username: args.user.trim().to_owned(),
        authuser: args.authuser.cloned().filter(|a| !a.trim().is_empty()),
        password: password(side, env, args.password_file)?,
        verify_tls,
    })
}

pub fn job_from_args(args: &MigrateArgs) -> anyhow::Result<MailJob> {
    let source = SideArgs {
        host: &args.source_host,
        port: args.source_port,
        security: args.source_security,
        user: &args.source_user,
        authuser: args.source_authuser.as_ref(),
        password_file: args.source_password_file.as_ref(),
    };
    let dest = SideArgs {
        host: &args.dest_host,
        port: args.dest_port,
        security: args.dest_security,
        user: &args.dest_user,
        authuser: args.dest_authuser.as_ref(),
        password_file: args.dest_password_file.as_ref(),
    };
    let verify_tls = !args.insecure_skip_verify;
    Ok(MailJob {
        source: endpoint("source", "FERRY_SOURCE_PASSWORD", source, verify_tls)?,
        dest: endpoint("dest", "FERRY_DEST_PASSWORD", dest, verify_tls)?,
        // The operator names both servers on the command line: loopback and private
        // addresses are theirs to reach (the console's check is for customers' names).
        reach: Reach {
            allow_private: true,
            ..Reach::default()
        },
        mode: args.mode,
        duplicates: args.duplicates,
        delete_source: args.delete_source,
        since: args.since,
        selection: Selection {
            strategy: args.strategy,
            include: args.folders.clone(),
            exclude: args.excludes.clone(),
            map: args.maps.clone(),
        },
        count_first: args.count_first,
        connections: args.connections,
        pass: 0,
        sync_deletions: args.sync_deletions,
        clock: std::sync::Arc::new(SystemClock),
    })
}

/// Bars on a terminal: one overall, one for each folder being copied.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    folders: Mutex<HashMap<String, ProgressBar>>,
    bytes: std::sync::atomic::AtomicU64,
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {pos}/{len} messages ({per_sec}) {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix("total");
        Self {
            multi,
            overall,
            folders: Mutex::new(HashMap::new()),
            bytes: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Progress for Bars {
    fn planned(&self, folders: &[(&FolderPlan, Option<u64>)]) {
        if folders.iter().all(|(_, n)| n.is_some()) {
            self.overall
                .set_length(folders.iter().filter_map(|(_, n)| *n).sum());
        }
    }

    fn folder_started(&self, folder: &str, pending: u64) {
        let bar = self.multi.add(ProgressBar::new(pending));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix("folder");
        bar.set_message(folder.to_owned());
        if self.overall.length().unwrap_or(0) < self.overall.position() + pending {
            self.overall.inc_length(pending);
        }
        if let Some(old) = self
            .folders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(folder.to_owned(), bar)
        {
            old.finish_and_clear();
        }
    }

    fn message(&self, folder: &str, bytes: u64, _outcome: Outcome) {
        let total = self
            .bytes
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed)
            + bytes;
        self.overall
            .set_message(indicatif::HumanBytes(total).to_string());
        self.overall.inc(1);
        if let Some(bar) = self
            .folders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(folder)
        {
            bar.inc(1);
        }
    }

    fn folder_done(&self, report: &FolderReport) {
        if let Some(bar) = self
            .folders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&report.source_path)
        {
            bar.finish_and_clear();
        }
        let _ = self.multi.println(format!(
            "{} → {}: {} copied, {} skipped, {} failed",
            report.source_path, report.dest_path, report.copied, report.skipped, report.failed
        ));
    }
}

/// Log lines when not on a terminal.
struct Lines;

impl Progress for Lines {
    fn folder_started(&self, folder: &str, pending: u64) {
        tracing::info!(folder, n_messages = pending, "Copying folder");
    }

    fn folder_done(&self, r: &FolderReport) {
        tracing::info!(folder = %r.source_path, dest = %r.dest_path, copied = r.copied, skipped = r.skipped, failed = r.failed, bytes = r.bytes, "Folder done");
    }
}

/// Runs `ferry migrate`; returns the exit code.
pub async fn migrate(args: MigrateArgs) -> u8 {
    let job = match job_from_args(&args) {
        Ok(job) => job,
        Err(err) => {
            eprintln!("error: {err:#}");
            return exit::ERROR;
        }
    };
    let progress: Box<dyn Progress> = if std::io::stderr().is_terminal() && !args.json {
        Box::new(Bars::new())
    } else {
        Box::new(Lines)
    };
    let result = match &args.state {
        Some(path) => mail::run(&job, &FileCheckpoints::new(path.clone()), progress.as_ref()).await,
        None => mail::run(&job, &MemoryCheckpoints::default(), progress.as_ref()).await,
    };
    match result {
        Ok(report) => {
            print_report(&report, args.json);
            if !report.adds_up() {
                eprintln!(
                    "error: the copy does not add up: {}",
                    report.unaccounted_summary()
                );
                exit::INCOMPLETE
            } else if report.complete() {
                exit::OK
            } else {
                exit::PARTIAL
            }
        }
        Err(MigrateError::Connect(side, err @ ConnectError::Auth(..))) => {
            eprintln!("error: the {} server: {err}", side_name(side));
            exit::AUTH_FAILED
        }
        Err(MigrateError::Connect(side, err)) => {
            eprintln!("error: the {} server: {err}", side_name(side));
            exit::CONNECTION_FAILED
        }
        Err(err) => {
            eprintln!("error: {err}");
            exit::ERROR
        }
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Destination => "destination",
    }
}

fn print_report(report: &Report, json: bool) {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            Err(err) => eprintln!("error: cannot print the report: {err}"),
        }
        return;
    }
    println!("{} → {}", report.source, report.dest);
    for f in &report.folders {
        println!(
            "  {:<30} → {:<30} {:>6} copied {:>6} skipped {:>4} failed{}",
            f.source_path,
            f.dest_path,
            f.copied,
            f.skipped,
            f.failed,
            if f.already_done > 0 {
                format!(" ({} done before)", f.already_done)
            } else {
                String::new()
            }
        );
        for failure in &f.failures {
            println!("      UID {}: {}", failure.uid, failure.reason);
        }
    }
    for s in &report.skipped_folders {
        println!("  {:<30} left out: {}", s.source, s.reason);
    }
    let t = &report.totals;
    if t.flags_updated > 0 || t.removed > 0 {
        println!(
            "{} copies had their flags updated, {} removed (expunged at the source)",
            t.flags_updated, t.removed
        );
    }
    if t.unaccounted > 0 {
        println!(
            "DOES NOT ADD UP: {} of {} source messages were neither copied, skipped nor failed",
            t.unaccounted, t.source_messages
        );
    }
    println!(
        "{} source messages: {} copied, {} skipped, {} failed, {:.1} MB in {:.1} s",
        t.source_messages,
        t.copied,
        t.skipped,
        t.failed,
        t.bytes as f64 / 1e6,
        report.elapsed_ms as f64 / 1000.0
    );
}
