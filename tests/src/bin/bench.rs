//! `scripts/bench`: Ferry against Dovecot's own migrator (doveadm backup through imapc)
//! and mbsync, on the same deterministic corpus, in the same run. Prints wall time,
//! messages/s, MB/s and peak RSS per tool, the ratios, and checks every destination
//! against the source byte for byte.
//!
//! BENCH_MESSAGES (default 20000; `scripts/bench --scale N`) sets the corpus size; the
//! mix of sizes stays the same. The corpus is planned in memory and its bodies made as
//! they are loaded, and mailboxes are compared as SHA-256 fingerprints read a few
//! hundred messages at a time, so a 100,000-message run fits in memory.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::dovecot::{Dovecot, Layout, Options};
use ferry_tests::imap::{self, Digest, SeedMessage};

const USER: &str = "bench";
const PW: &str = "bench-password";

/// One message of the corpus, before its body is made.
#[derive(Clone)]
struct Planned {
    n: usize,
    size: usize,
    flags: Vec<String>,
    date: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl Planned {
    fn seed(&self) -> SeedMessage {
        SeedMessage {
            body: ferry_tests::corpus::message(self.n, self.n % 50 != 7, self.size),
            flags: self.flags.clone(),
            internal_date: self.date,
        }
    }
}

/// The corpus: folder → messages, deterministic (an LCG, no clock).
fn corpus(total: usize) -> Vec<(String, Vec<Planned>)> {
    let folders = [
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
        "Junk",
        "Archive",
        "Archive/2019",
        "Archive/2020",
        "Archive/2021",
        "Clients",
        "Clients/Acme",
        "Clients/Globex",
        "Reçus & Factures",
        "日本語",
        "Lists/rust-users",
        "Lists/dovecot",
    ];
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut out: Vec<(String, Vec<Planned>)> = folders
        .iter()
        .map(|f| ((*f).to_owned(), Vec::new()))
        .collect();
    let tz = chrono::FixedOffset::east_opt(0).expect("utc");
    for n in 0..total {
        let r = next();
        let size = match r % 1000 {
            0..=1 => 20_000_000 + (r as usize % 1000), // 0.2 %: ~20 MB
            2..=11 => 1_000_000 + (r as usize % 4_000_000), // 1 %: 1–5 MB
            _ => 2_000 + (r as usize % 18_000),        // 2–20 KB
        };
        let folder = (next() as usize) % folders.len();
        let flags: Vec<String> = match next() % 6 {
            0 => vec![],
            1 => vec!["\\Seen".into(), "\\Answered".into()],
            2 => vec!["\\Seen".into(), "$Label1".into()],
            3 => vec!["\\Flagged".into()],
            _ => vec!["\\Seen".into()],
        };
        let date =
            chrono::TimeZone::timestamp_opt(&tz, 1_300_000_000 + (next() as i64 % 400_000_000), 0)
                .single();
        let planned = Planned {
            n,
            size,
            flags,
            date,
        };
        if n % 997 == 0 {
            out[folder].1.push(planned.clone());
        }
        out[folder].1.push(planned);
    }
    out
}

fn start() -> Dovecot {
    let d = Dovecot::start_with(Options {
        layout: Layout::Slash,
        fsync: false,
        mail_max_userip_connections: 100,
        ..Default::default()
    })
    .expect("dovecot");
    d.add_user(USER, PW).expect("user");
    d
}

/// Runs a command, sampling its peak RSS from /proc; returns (wall, peak KiB).
fn measure(cmd: &mut Command) -> (Duration, u64) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut peak = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let elapsed = started.elapsed();
            if !status.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("{cmd:?} failed: {status}\n{err}");
            }
            return (elapsed, peak);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn ferry(src: &Dovecot, dst: &Dovecot, state: &Path) -> Command {
    let mut c = Command::new(ferry_tests::workspace_root().join("target/release/ferry"));
    c.args([
        "migrate",
        "--source-host",
        "127.0.0.1",
        "--source-port",
        &src.port.to_string(),
        "--source-security",
        "none",
        "--source-user",
        USER,
    ])
    .args([
        "--dest-host",
        "127.0.0.1",
        "--dest-port",
        &dst.port.to_string(),
        "--dest-security",
        "none",
        "--dest-user",
        USER,
    ])
    .arg("--state")
    .arg(state)
    .env("FERRY_SOURCE_PASSWORD", PW)
    .env("FERRY_DEST_PASSWORD", PW)
    .env("RUST_LOG", "warn");
    c
}

fn dsync(src: &Dovecot, dst: &Dovecot) -> Command {
    let mut c = Command::new("doveadm");
    c.arg("-c")
        .arg(dst.dir().join("dovecot.conf"))
        .args([
            "-o",
            "imapc_host=127.0.0.1",
            "-o",
            &format!("imapc_port={}", src.port),
            "-o",
            &format!("imapc_user={USER}"),
            "-o",
            &format!("imapc_password={PW}"),
        ])
        .args([
            "-o",
            "imapc_features=rfc822.size fetch-headers",
            "-o",
            "mail_prefetch_count=20",
            "-o",
            "imapc_ssl=no",
        ])
        .args(["backup", "-R", "-u", USER, "imapc:"]);
    c
}

fn mbsync(src: &Dovecot, dst: &Dovecot, dir: &Path) -> Command {
    let conf = dir.join("mbsyncrc");
    let text = format!(
        "IMAPAccount src\nHost 127.0.0.1\nPort {}\nUser {USER}\nPass {PW}\nSSLType None\nAuthMechs LOGIN\n\n\
         IMAPStore src\nAccount src\n\n\
         IMAPAccount dst\nHost 127.0.0.1\nPort {}\nUser {USER}\nPass {PW}\nSSLType None\nAuthMechs LOGIN\n\n\
         IMAPStore dst\nAccount dst\n\n\
         Channel bench\nFar :src:\nNear :dst:\nPatterns *\nCreate Near\nSync Pull\nCopyArrivalDate yes\nSyncState {}/\n",
        src.port,
        dst.port,
        dir.display()
    );
    std::fs::write(&conf, text).expect("mbsyncrc");
    let mut c = Command::new("mbsync");
    c.arg("-c").arg(&conf).arg("-a").arg("-q");
    c
}

async fn read(server: &Dovecot) -> BTreeMap<String, Vec<Digest>> {
    let mut s = imap::login(server, USER, PW).await.expect("login");
    imap::digest_all(&mut s).await.expect("read")
}

/// Whether `dest` holds exactly the source's messages, folder by folder, byte for byte
/// (and with flags and INTERNALDATE when `strict`).
fn compare(
    source: &BTreeMap<String, Vec<Digest>>,
    dest: &BTreeMap<String, Vec<Digest>>,
    strict: bool,
) -> String {
    let mut problems = Vec::new();
    for (folder, msgs) in source {
        let key = |m: &Digest| {
            if strict {
                m.clone()
            } else {
                (m.0, Vec::new(), 0)
            }
        };
        let mut want: Vec<_> = msgs.iter().map(key).collect();
        let mut got: Vec<_> = dest
            .get(folder)
            .map(|v| v.iter().map(key).collect())
            .unwrap_or_default();
        want.sort();
        got.sort();
        if want != got {
            problems.push(format!(
                "{folder}: {} of {} match",
                got.iter().filter(|g| want.contains(g)).count(),
                want.len()
            ));
        }
    }
    if problems.is_empty() {
        "byte-exact".into()
    } else {
        format!("DIFFERS ({})", problems.join("; "))
    }
}

const TOOLS: [&str; 3] = ["ferry", "dsync", "mbsync"];

/// One pass of every tool into its own destination: (tool, wall, peak KiB, check).
async fn pass(
    src: &Dovecot,
    dests: &[Dovecot],
    work: &Path,
    source: &BTreeMap<String, Vec<Digest>>,
) -> Vec<(&'static str, Duration, u64, String)> {
    let mut results = Vec::new();
    for (tool, dst) in TOOLS.iter().zip(dests) {
        let mut cmd = match *tool {
            "ferry" => ferry(src, dst, &work.join("ferry.state")),
            "dsync" => dsync(src, dst),
            _ => mbsync(src, dst, work),
        };
        let (wall, rss) = measure(&mut cmd);
        let check = compare(source, &read(dst).await, *tool != "mbsync");
        results.push((*tool, wall, rss, check));
    }
    results
}

#[tokio::main]
async fn main() {
    ferry_tests::init_crypto();
    let total: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    println!(
        "Generating and loading {total} messages into the source Dovecot (mail_fsync = never)…"
    );
    let src = start();
    let corpus = corpus(total);
    let mut session = imap::login(&src, USER, PW).await.expect("login");
    let loaded = Instant::now();
    let (mut n_messages, mut n_bytes) = (0usize, 0usize);
    for (folder, planned) in &corpus {
        let name = imap::encode_path(&src, folder);
        for chunk in planned.chunks(200) {
            let messages: Vec<SeedMessage> = chunk.iter().map(Planned::seed).collect();
            n_messages += messages.len();
            n_bytes += messages.iter().map(|m| m.body.len()).sum::<usize>();
            imap::seed(&mut session, &name, &messages)
                .await
                .expect("seed");
        }
    }
    println!(
        "Loaded {n_messages} messages, {:.0} MB, {} folders in {:.1} s",
        n_bytes as f64 / 1e6,
        corpus.len(),
        loaded.elapsed().as_secs_f64()
    );
    let source = read(&src).await;

    let work = tempfile::tempdir().expect("tmp");
    let dests: Vec<Dovecot> = TOOLS.iter().map(|_| start()).collect();
    let first = pass(&src, &dests, work.path(), &source).await;

    // 200 new messages, then a second pass of each.
    let extra: Vec<SeedMessage> = (0..200)
        .map(|n| SeedMessage {
            body: ferry_tests::corpus::message(1_000_000 + n, true, 4000),
            flags: vec![],
            internal_date: None,
        })
        .collect();
    imap::seed(&mut session, "INBOX", &extra[..150])
        .await
        .expect("seed");
    imap::seed(&mut session, "Clients/Acme", &extra[150..])
        .await
        .expect("seed");
    // And the customer read or flagged 50 messages meanwhile: a second pass brings it.
    imap::store(&mut session, "INBOX", "1:50", "+FLAGS ($Bench \\Flagged)")
        .await
        .expect("store");
    let source = read(&src).await;
    let second = pass(&src, &dests, work.path(), &source).await;

    println!(
        "\nFull pass: {n_messages} messages, {:.0} MB",
        n_bytes as f64 / 1e6
    );
    println!(
        "{:<8} {:>9} {:>10} {:>8} {:>10}  check",
        "tool", "wall s", "msg/s", "MB/s", "peak RSS"
    );
    for (tool, wall, rss, check) in &first {
        let s = wall.as_secs_f64();
        println!(
            "{tool:<8} {s:>9.2} {:>10.0} {:>8.1} {:>7.1} MiB  {check}",
            n_messages as f64 / s,
            n_bytes as f64 / 1e6 / s,
            *rss as f64 / 1024.0
        );
    }
    println!("\nSecond pass after 200 new messages and 50 flag changes:");
    for (tool, wall, rss, check) in &second {
        println!(
            "{tool:<8} {:>9.3} s  peak RSS {:>7.1} MiB  {check}",
            wall.as_secs_f64(),
            *rss as f64 / 1024.0
        );
    }
    let t = |v: &[(&str, Duration, u64, String)], name: &str| {
        v.iter()
            .find(|x| x.0 == name)
            .map(|x| x.1.as_secs_f64())
            .unwrap_or(f64::NAN)
    };
    println!(
        "\nratio full pass:   Ferry/dsync {:.2}  Ferry/mbsync {:.2}",
        t(&first, "ferry") / t(&first, "dsync"),
        t(&first, "ferry") / t(&first, "mbsync")
    );
    println!(
        "ratio second pass: Ferry/dsync {:.2}  Ferry/mbsync {:.2}",
        t(&second, "ferry") / t(&second, "dsync"),
        t(&second, "ferry") / t(&second, "mbsync")
    );
    println!(
        "(mbsync is checked on bytes only, without flags and dates: it drops keywords, and it adds an X-TUID header to every message, so its copies are expected to differ)"
    );
}
