//! `ferry migrate`: one mailbox from the command line, the way imapsync is used. Turns
//! flags into a [`MailJob`], shows progress (bars on a terminal, log lines elsewhere),
//! prints the report, and maps the outcome to an exit code.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use secrecy::SecretString;

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

/// One side's flags.
#[derive(Debug, Clone)]
pub struct SideArgs {
    pub host: String,
    pub port: Option<u16>,
    pub security: String,
    pub user: String,
    pub authuser: Option<String>,
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct MigrateArgs {
    pub source: SideArgs,
    pub dest: SideArgs,
    pub mode: String,
    pub duplicates: String,
    pub delete_source: bool,
    pub since: Option<String>,
    pub folders: Vec<String>,
    pub excludes: Vec<String>,
    pub strategy: String,
    pub maps: Vec<String>,
    pub sync_deletions: bool,
    pub count_first: bool,
    pub connections: usize,
    pub state: Option<PathBuf>,
    pub json: bool,
    pub insecure_skip_verify: bool,
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
    args: &SideArgs,
    verify_tls: bool,
) -> anyhow::Result<ImapEndpoint> {
    let security: Security = args
        .security
        .parse()
        .map_err(|e: crate::domain::FieldError| {
            anyhow::anyhow!("--{side}-security: {}", e.message)
        })?;
    anyhow::ensure!(!args.host.trim().is_empty(), "--{side}-host is required");
    anyhow::ensure!(!args.user.trim().is_empty(), "--{side}-user is required");
    Ok(ImapEndpoint {
        host: args.host.trim().to_owned(),
        port: args.port.unwrap_or(security.default_port()),
        security,
        username: args.user.trim().to_owned(),
        authuser: args.authuser.clone().filter(|a| !a.trim().is_empty()),
        password: password(side, env, args.password_file.as_ref())?,
        verify_tls,
    })
}

pub fn job_from_args(args: &MigrateArgs) -> anyhow::Result<MailJob> {
    fn field(flag: &'static str) -> impl Fn(crate::domain::FieldError) -> anyhow::Error {
        move |e| anyhow::anyhow!("--{flag}: {}", e.message)
    }
    let since = args
        .since
        .as_deref()
        .map(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d"))
        .transpose()
        .map_err(|_| anyhow::anyhow!("--since: use a date like 2024-01-31"))?;
    Ok(MailJob {
        source: endpoint(
            "source",
            "FERRY_SOURCE_PASSWORD",
            &args.source,
            !args.insecure_skip_verify,
        )?,
        dest: endpoint(
            "dest",
            "FERRY_DEST_PASSWORD",
            &args.dest,
            !args.insecure_skip_verify,
        )?,
        // The operator names both servers on the command line: loopback and private
        // addresses are theirs to reach (the console's check is for customers' names).
        reach: Reach {
            allow_private: true,
            ..Reach::default()
        },
        mode: args.mode.parse::<Mode>().map_err(field("mode"))?,
        duplicates: args
            .duplicates
            .parse::<DuplicatePolicy>()
            .map_err(field("duplicates"))?,
        delete_source: args.delete_source,
        since,
        selection: Selection {
            strategy: args
                .strategy
                .parse::<FolderStrategy>()
                .map_err(field("strategy"))?,
            include: args.folders.clone(),
            exclude: args.excludes.clone(),
            map: args
                .maps
                .iter()
                .map(|m| FolderMap::parse(m).map_err(|e| anyhow::anyhow!("--map: {e}")))
                .collect::<anyhow::Result<_>>()?,
        },
        count_first: args.count_first,
        connections: args.connections,
        pass: 0,
        sync_deletions: args.sync_deletions,
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
