//! `ferry migrate` against real Dovecot servers: every message byte for byte, flags,
//! keywords and dates, the folder tree across layouts, duplicates, resumption after
//! kill -9, and what the exit code and the report say.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use ferry_tests::app::ferry_binary;
use ferry_tests::corpus;
use ferry_tests::cutter::Cutter;
use ferry_tests::dovecot::{Dovecot, Layout, Options};
use ferry_tests::imap::{self, SeedMessage, StoredMessage};
use serde_json::Value;

pub(crate) const SRC_PW: &str = "source-secret";
pub(crate) const DST_PW: &str = "dest-secret";

/// Message content that must survive: bytes, flags, INTERNALDATE.
pub(crate) type Content = (Vec<u8>, Vec<String>, i64);

pub(crate) fn content(m: &StoredMessage) -> Content {
    (m.body.clone(), m.flags.clone(), m.internal_date.timestamp())
}

pub(crate) struct Pair {
    pub(crate) src: Dovecot,
    pub(crate) dst: Dovecot,
    /// Where Ferry connects: the servers' ports, or a cutter's in front of them.
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
}

impl Pair {
    pub(crate) async fn start(src_layout: Layout, dst_layout: Layout) -> Self {
        let src = Dovecot::start(src_layout).unwrap();
        let dst = Dovecot::start(dst_layout).unwrap();
        src.add_user("jane", SRC_PW).unwrap();
        dst.add_user("jane", DST_PW).unwrap();
        Pair::new(src, dst)
    }

    pub(crate) fn new(src: Dovecot, dst: Dovecot) -> Self {
        Pair {
            src_port: src.port,
            dst_port: dst.port,
            src,
            dst,
        }
    }

    pub(crate) async fn seed_source(&self, mailbox: &[(&str, Vec<SeedMessage>)]) {
        let mut s = imap::login(&self.src, "jane", SRC_PW).await.unwrap();
        imap::seed_mailbox(&self.src, &mut s, mailbox)
            .await
            .unwrap();
    }

    pub(crate) fn command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(ferry_binary());
        cmd.arg("migrate")
            .args(side("source", "127.0.0.1", self.src_port, "none", "jane"))
            .args(side("dest", "127.0.0.1", self.dst_port, "none", "jane"))
            .args(extra)
            .env("FERRY_SOURCE_PASSWORD", SRC_PW)
            .env("FERRY_DEST_PASSWORD", DST_PW)
            .env("RUST_LOG", "warn");
        cmd
    }

    pub(crate) fn migrate(&self, extra: &[&str]) -> (Output, Value) {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let out = self.command(&args).output().unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, report)
    }

    /// The same, without blocking the test's runtime (which drives the cutters).
    pub(crate) async fn migrate_async(&self, extra: &[&str]) -> (Output, Value) {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let out = tokio::process::Command::from(self.command(&args))
            .output()
            .await
            .unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, report)
    }

    /// Everything in a server's mailbox (either password: servers swap roles).
    pub(crate) async fn read(server: &Dovecot) -> BTreeMap<String, Vec<StoredMessage>> {
        let mut s = match imap::login(server, "jane", SRC_PW).await {
            Ok(s) => s,
            Err(_) => imap::login(server, "jane", DST_PW).await.unwrap(),
        };
        imap::read_all(&mut s).await.unwrap()
    }

    /// Asserts that every source folder's messages are in the destination folder the
    /// `map` names (several may merge), as a multiset, byte for byte.
    pub(crate) async fn assert_mirrored(&self, map: &dyn Fn(&str) -> String) {
        let source = Self::read(&self.src).await;
        let dest = Self::read(&self.dst).await;
        let mut expected: BTreeMap<String, Vec<Content>> = BTreeMap::new();
        for (folder, messages) in &source {
            expected
                .entry(map(folder))
                .or_default()
                .extend(messages.iter().map(content));
        }
        for (folder, mut want) in expected {
            let mut got: Vec<Content> = dest
                .get(&folder)
                .unwrap_or_else(|| panic!("{folder} missing at the destination: {:?}", dest.keys()))
                .iter()
                .map(content)
                .collect();
            want.sort();
            got.sort();
            assert_eq!(
                got.len(),
                want.len(),
                "{folder}: {} at the destination, {} expected",
                got.len(),
                want.len()
            );
            assert!(got == want, "{folder}: contents differ");
        }
    }
}

/// `--source-host H --source-port P --source-security S --source-user U` (or `dest`).
pub(crate) fn side(which: &str, host: &str, port: u16, security: &str, user: &str) -> Vec<String> {
    vec![
        format!("--{which}-host"),
        host.into(),
        format!("--{which}-port"),
        port.to_string(),
        format!("--{which}-security"),
        security.into(),
        format!("--{which}-user"),
        user.into(),
    ]
}

/// Where the corpus's folders land with no mapping: each keeps its own name. The
/// source's `Sent` and `Trash` carry the SPECIAL-USE attributes, so "Sent Items" and
/// "Deleted Items" are only names there and are not merged into them.
pub(crate) fn own_names(folder: &str) -> String {
    folder.into()
}

/// Where they land with `--map "Sent Items=Sent" --map "Deleted Items=Trash"`.
fn outlook_names(folder: &str) -> String {
    match folder {
        "Sent Items" => "Sent".into(),
        "Deleted Items" => "Trash".into(),
        other => other.into(),
    }
}

const OUTLOOK_MAP: [&str; 4] = ["--map", "Sent Items=Sent", "--map", "Deleted Items=Trash"];

pub(crate) fn total(report: &Value, key: &str) -> u64 {
    report["totals"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no totals.{key} in {report}"))
}

#[tokio::test]
async fn copies_every_folder_and_message_byte_for_byte_then_only_what_is_new() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    pair.seed_source(&corpus::mailbox()).await;
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.json");
    let state_arg = state_file.to_str().unwrap();

    let args = |extra: &[&'static str]| -> Vec<&str> {
        let mut a = vec!["--state", state_arg];
        a.extend_from_slice(&OUTLOOK_MAP);
        a.extend_from_slice(extra);
        a
    };
    let (out, report) = pair.migrate(&args(&["--count-first"]));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        report
    );
    assert_eq!(total(&report, "copied"), 31, "{report}");
    assert_eq!(total(&report, "failed"), 0);
    pair.assert_mirrored(&outlook_names).await;
    let dest = Pair::read(&pair.dst).await;
    assert_eq!(
        dest["INBOX"].len(),
        14,
        "the message that is twice in INBOX is twice at the destination"
    );
    assert!(
        dest.contains_key("Caf&AOk- &- Cr&AOg-me"),
        "{:?}",
        dest.keys()
    );
    let folders: Vec<_> = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["source_path"].as_str().unwrap().to_owned(),
                f["dest_path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        folders.contains(&("Café & Crème".into(), "Café & Crème".into())),
        "{folders:?}"
    );
    assert!(folders.contains(&("Sent Items".into(), "Sent".into())));
    let sent = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source_path"] == "Sent Items")
        .unwrap();
    assert_eq!(sent["mapped_by"], "user", "{sent}");

    // Again, unchanged: nothing copied.
    let (out, report) = pair.migrate(&args(&[]));
    assert!(out.status.success());
    assert_eq!(total(&report, "copied"), 0, "{report}");
    assert_eq!(total(&report, "expected"), 0, "{report}");

    // New mail: exactly the new messages.
    let mut s = imap::login(&pair.src, "jane", SRC_PW).await.unwrap();
    let new: Vec<SeedMessage> = (100..103)
        .map(|n| SeedMessage {
            body: corpus::message(n, true, 900),
            flags: vec![],
            internal_date: None,
        })
        .collect();
    imap::seed(&mut s, "INBOX", &new).await.unwrap();
    imap::seed(&mut s, "Projects/2019", &new[..1])
        .await
        .unwrap();
    let (out, report) = pair.migrate(&args(&[]));
    assert!(out.status.success());
    assert_eq!(total(&report, "copied"), 4, "{report}");
    pair.assert_mirrored(&outlook_names).await;
}

#[tokio::test]
async fn a_courier_style_source_lands_in_a_slash_destination_and_back() {
    let pair = Pair::start(Layout::DotInboxPrefix, Layout::Slash).await;
    pair.seed_source(&corpus::mailbox()).await;
    let (out, report) = pair.migrate(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(total(&report, "copied"), 31);
    pair.assert_mirrored(&|f: &str| {
        let path = f.strip_prefix("INBOX.").unwrap_or(f).replace('.', "/");
        own_names(&path)
    })
    .await;

    // And back: from the slash server into a fresh Courier-style one.
    let back = Pair::new(pair.dst, Dovecot::start(Layout::DotInboxPrefix).unwrap());
    back.dst.add_user("jane", DST_PW).unwrap();
    // The first destination is the source now; its password is still DST_PW.
    let out = back
        .command(&["--json"])
        .env("FERRY_SOURCE_PASSWORD", DST_PW)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(total(&report, "copied"), 31);
    back.assert_mirrored(&|f: &str| {
        if f == "INBOX" {
            f.to_owned()
        } else {
            format!("INBOX.{}", f.replace('/', "."))
        }
    })
    .await;
}

#[tokio::test]
async fn killed_at_any_point_it_resumes_with_nothing_lost_and_nothing_doubled() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    let mut mailbox = corpus::mailbox();
    mailbox.push((
        "Newsletters",
        (200..1200)
            .map(|n| SeedMessage {
                body: corpus::message(n, n % 5 != 0, 2000),
                flags: vec!["\\Seen".into()],
                internal_date: None,
            })
            .collect(),
    ));
    pair.seed_source(&mailbox).await;
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.json");
    let state_arg = state_file.to_str().unwrap();

    // The worst moments: right after an APPEND, before its checkpoint; two folders
    // at once, so the other one is cut wherever it is.
    for after in [1, 37, 120, 200] {
        let out = pair
            .command(&["--state", state_arg, "--connections", "2"])
            .env("FERRY_TEST_ABORT_AFTER_APPENDS", after.to_string())
            .output()
            .unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(6),
            "aborted after {after} appends (is the binary built with --features failpoints?)"
        );
    }
    // And kill -9 at moments the test does not choose.
    for delay_ms in [150, 400] {
        let mut child = pair
            .command(&["--state", state_arg, "--connections", "2"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    let (out, report) = pair.migrate(&["--state", state_arg, "--connections", "2"]);
    assert!(
        out.status.success(),
        "{}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    pair.assert_mirrored(&own_names).await;
    let dest = Pair::read(&pair.dst).await;
    assert_eq!(dest["Newsletters"].len(), 1000, "nothing doubled");
}

#[tokio::test]
async fn a_batch_the_destination_gets_after_the_crash_is_claimed_not_copied_again() {
    let mut pair = Pair::start(Layout::Slash, Layout::Slash).await;
    let inbox: Vec<SeedMessage> = (0..600)
        .map(|n| SeedMessage {
            body: corpus::message(n, n % 7 != 0, 1500),
            flags: vec![],
            internal_date: None,
        })
        .collect();
    pair.seed_source(&[("INBOX", inbox)]).await;
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.json");
    let state_arg = state_file.to_str().unwrap();

    // A long link to the destination: past the login and the folder listing, what
    // Ferry sends arrives 4 s late, and arrives even if Ferry is dead by then.
    let lag = Cutter::lagging(pair.dst.port, 8 * 1024, Duration::from_secs(4))
        .await
        .unwrap();
    pair.dst_port = lag.port;
    let mut first =
        tokio::process::Command::from(pair.command(&["--state", state_arg, "--connections", "1"]))
            .spawn()
            .unwrap();
    // Killed once its first batch is on the way (saved as in flight, sent whole).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        // The state file is a log of saves, one JSON line each: INBOX's last one.
        let in_flight = std::fs::read_to_string(&state_file)
            .unwrap_or_default()
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["save"]["folder"] == "INBOX")
            .and_then(|v| v["save"]["head"]["in_flight"].as_object().map(|o| o.len()))
            .unwrap_or(0);
        if in_flight > 0 && lag.lagged() > 200 * 1500 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no batch in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill().await.unwrap();

    // Run again at once, straight to the server: the batch lands while it runs.
    pair.dst_port = pair.dst.port;
    let (out, report) = pair
        .migrate_async(&["--state", state_arg, "--connections", "1"])
        .await;
    assert!(
        out.status.success(),
        "{}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dest = Pair::read(&pair.dst).await;
    assert_eq!(dest["INBOX"].len(), 600, "nothing doubled: {report}");
    pair.assert_mirrored(&|f: &str| f.to_owned()).await;
}

#[tokio::test]
async fn duplicates_are_skipped_overwritten_or_created_as_asked() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    let msgs: Vec<SeedMessage> = (0..4)
        .map(|n| SeedMessage {
            body: corpus::message(n, n != 3, 700),
            flags: vec!["\\Seen".into()],
            internal_date: None,
        })
        .collect();
    pair.seed_source(&[("INBOX", msgs.clone())]).await;
    // The destination already has two of them (one without a Message-ID), unflagged.
    let mut d = imap::login(&pair.dst, "jane", DST_PW).await.unwrap();
    let pre: Vec<SeedMessage> = [0, 3]
        .iter()
        .map(|&i| SeedMessage {
            flags: vec![],
            ..msgs[i].clone()
        })
        .collect();
    imap::seed(&mut d, "INBOX", &pre).await.unwrap();

    let (out, report) = pair.migrate(&["--folder", "INBOX"]);
    assert!(out.status.success());
    assert_eq!(
        (total(&report, "copied"), total(&report, "skipped")),
        (2, 2),
        "{report}"
    );
    assert_eq!(imap::read_folder(&mut d, "INBOX").await.unwrap().len(), 4);

    let (_, report) = pair.migrate(&["--folder", "INBOX", "--duplicates", "overwrite"]);
    assert_eq!(total(&report, "copied"), 4, "{report}");
    let after = imap::read_folder(&mut d, "INBOX").await.unwrap();
    assert_eq!(after.len(), 4, "replaced, not added");
    assert!(
        after.iter().all(|m| m.flags.contains(&"\\Seen".to_owned())),
        "the source's copies are there now"
    );

    let (_, report) = pair.migrate(&["--folder", "INBOX", "--duplicates", "create"]);
    assert_eq!(total(&report, "copied"), 4);
    assert_eq!(imap::read_folder(&mut d, "INBOX").await.unwrap().len(), 8);
}

#[tokio::test]
async fn folders_only_since_strategy_and_exclusions_choose_what_is_copied() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    pair.seed_source(&corpus::mailbox()).await;
    let with_map = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut a = OUTLOOK_MAP.to_vec();
        a.extend_from_slice(extra);
        a
    };
    let (out, report) = pair.migrate(&with_map(&["--mode", "folders-only"]));
    assert!(out.status.success());
    assert_eq!(total(&report, "copied"), 0);
    let dest = Pair::read(&pair.dst).await;
    for f in [
        "Projects",
        "Projects/2019",
        "Caf&AOk- &- Cr&AOg-me",
        "Empty",
        "Sent",
        "Trash",
    ] {
        assert!(
            dest.get(f).is_some_and(Vec::is_empty),
            "{f} created empty: {:?}",
            dest.keys()
        );
    }
    assert!(!dest.contains_key("Sent Items"));

    let (_, report) = pair.migrate(&with_map(&[
        "--exclude",
        "Projects",
        "--since",
        "2023-01-01",
    ]));
    let dest = Pair::read(&pair.dst).await;
    assert!(
        dest["Projects"].is_empty() && dest["Projects/2019"].is_empty(),
        "excluded with its subfolder"
    );
    assert_eq!(
        dest["INBOX"].len(),
        12,
        "INBOX's 2024 mail, not the 2021 pair"
    );
    assert_eq!(dest["Sent"].len(), 6);
    assert!(dest["Trash"].is_empty(), "2022 is before --since");
    assert!(total(&report, "skipped") >= 5, "{report}");

    let (_, report) = pair.migrate(&with_map(&["--strategy", "inbox-only"]));
    let names: Vec<_> = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["INBOX"]);
}

#[tokio::test]
async fn delete_source_removes_only_what_was_copied_and_confirmed() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    pair.seed_source(&corpus::mailbox()).await;
    let before = Pair::read(&pair.src).await;
    let (out, report) = pair.migrate(&["--delete-source", "--exclude", "Projects/2019"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(total(&report, "copied"), 29);
    let after = Pair::read(&pair.src).await;
    assert!(after["INBOX"].is_empty() && after["Sent Items"].is_empty());
    assert_eq!(
        after["Projects/2019"], before["Projects/2019"],
        "an excluded folder is untouched"
    );
    let dest = Pair::read(&pair.dst).await;
    assert_eq!(dest["INBOX"].len(), 14);
}

#[tokio::test]
async fn a_refused_message_is_a_failure_with_the_servers_words_and_the_rest_goes_on() {
    let src = Dovecot::start(Layout::Slash).unwrap();
    let dst = Dovecot::start_with(Options {
        max_mail_size: Some(100_000),
        ..Default::default()
    })
    .unwrap();
    src.add_user("jane", SRC_PW).unwrap();
    dst.add_user("jane", DST_PW).unwrap();
    let pair = Pair::new(src, dst);
    let msgs = vec![
        SeedMessage {
            body: corpus::message(1, true, 2000),
            flags: vec![],
            internal_date: None,
        },
        SeedMessage {
            body: corpus::message(2, true, 300_000),
            flags: vec![],
            internal_date: None,
        },
        SeedMessage {
            body: corpus::message(3, true, 2000),
            flags: vec![],
            internal_date: None,
        },
    ];
    pair.seed_source(&[("INBOX", msgs)]).await;
    let (out, report) = pair.migrate(&["--folder", "INBOX"]);
    assert_eq!(out.status.code(), Some(4), "partial failure");
    assert_eq!(
        (total(&report, "copied"), total(&report, "failed")),
        (2, 1),
        "{report}"
    );
    let failure = &report["folders"][0]["failures"][0];
    assert_eq!(failure["uid"], 2);
    assert!(
        failure["reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("too large")
            || failure["reason"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("size"),
        "{failure}"
    );
}

#[tokio::test]
async fn login_and_connection_failures_have_their_own_exit_codes() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    let out = pair
        .command(&[])
        .env("FERRY_SOURCE_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the login"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(DST_PW));

    let closed = ferry_tests::net::free_port();
    let out = Command::new(ferry_binary())
        .arg("migrate")
        .args(side("source", "127.0.0.1", closed, "none", "x"))
        .args(side("dest", "127.0.0.1", pair.dst.port, "none", "jane"))
        .env("FERRY_SOURCE_PASSWORD", "x")
        .env("FERRY_DEST_PASSWORD", DST_PW)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = pair
        .command(&[])
        .env_remove("FERRY_DEST_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("set FERRY_DEST_PASSWORD"));
}

#[tokio::test]
async fn implicit_tls_is_verified_and_a_master_user_logs_in_for_the_mailbox() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    pair.src.add_master_user("admin", "master-secret").unwrap();
    pair.seed_source(&[(
        "INBOX",
        vec![SeedMessage {
            body: corpus::message(1, true, 800),
            flags: vec![],
            internal_date: None,
        }],
    )])
    .await;
    let args = |tls_port: u16| {
        let mut cmd = Command::new(ferry_binary());
        cmd.args(["migrate", "--json"])
            .args(side("source", "localhost", tls_port, "ssl", "jane"))
            .args(["--source-authuser", "admin"])
            .args(side("dest", "127.0.0.1", pair.dst.port, "none", "jane"))
            .env("FERRY_SOURCE_PASSWORD", "master-secret")
            .env("FERRY_DEST_PASSWORD", DST_PW);
        cmd
    };
    let unknown_ca = args(pair.src.tls_port)
        .env("SSL_CERT_FILE", "/nonexistent")
        .env("SSL_CERT_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(
        unknown_ca.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&unknown_ca.stderr)
    );
    assert!(String::from_utf8_lossy(&unknown_ca.stderr).contains("TLS"));
    let trusted = args(pair.src.tls_port)
        .env("SSL_CERT_FILE", &pair.src.certs.ca_cert)
        .output()
        .unwrap();
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let report: Value = serde_json::from_slice(&trusted.stdout).unwrap();
    assert_eq!(total(&report, "copied"), 1);
}

#[tokio::test]
async fn a_folder_whose_uidvalidity_changed_is_matched_by_key_not_copied_again() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    pair.seed_source(&corpus::mailbox()).await;
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.json");
    let state_arg = state_file.to_str().unwrap();
    let mut args = vec!["--state", state_arg];
    args.extend_from_slice(&OUTLOOK_MAP);
    let (out, _) = pair.migrate(&args);
    assert!(out.status.success());

    // The source recreates "Sent Items" (a new UIDVALIDITY) with the same messages and one more.
    let mut s = imap::login(&pair.src, "jane", SRC_PW).await.unwrap();
    let old = imap::read_folder(&mut s, "Sent Items").await.unwrap();
    s.select("INBOX").await.unwrap(); // Dovecot disconnects a session whose selected folder is deleted
    s.delete("Sent Items").await.unwrap();
    let mut again: Vec<SeedMessage> = old
        .iter()
        .map(|m| SeedMessage {
            body: m.body.clone(),
            flags: m.flags.clone(),
            internal_date: Some(m.internal_date.into()),
        })
        .collect();
    again.push(SeedMessage {
        body: corpus::message(77, true, 1500),
        flags: vec![],
        internal_date: None,
    });
    imap::seed(&mut s, "Sent Items", &again).await.unwrap();

    args.extend_from_slice(&["--folder", "Sent Items"]);
    let (out, report) = pair.migrate(&args);
    assert!(out.status.success(), "{report}");
    let sent = &report["folders"][0];
    assert_eq!(
        (sent["copied"].as_u64(), sent["expected"].as_u64()),
        (Some(7), Some(7)),
        "{sent}"
    );
    let mut d = imap::login(&pair.dst, "jane", DST_PW).await.unwrap();
    assert_eq!(
        imap::read_folder(&mut d, "Sent").await.unwrap().len(),
        7,
        "six claimed by key, one new copied"
    );
}

#[tokio::test]
async fn connections_dropped_mid_run_are_reopened_and_the_run_resumes() {
    let mut pair = Pair::start(Layout::Slash, Layout::Slash).await;
    let tz = chrono::FixedOffset::east_opt(0).unwrap();
    let many = |from: usize, n: usize| -> Vec<SeedMessage> {
        (from..from + n)
            .map(|i| SeedMessage {
                body: corpus::message(i, i % 9 != 4, 6_000 + (i * 131) % 6_000),
                flags: if i % 3 == 0 {
                    vec!["\\Seen".into()]
                } else {
                    vec![]
                },
                internal_date: chrono::TimeZone::with_ymd_and_hms(&tz, 2022, 5, 1, 8, 0, 0)
                    .single(),
            })
            .collect()
    };
    pair.seed_source(&[("INBOX", many(0, 450)), ("Archive", many(1000, 150))])
        .await;
    // The source link drops once after 1.5 MB, the destination's once after 2 MB.
    let src_cut = Cutter::start(pair.src.port, 1_500_000, 1).await.unwrap();
    let dst_cut = Cutter::start(pair.dst.port, 2_000_000, 1).await.unwrap();
    pair.src_port = src_cut.port;
    pair.dst_port = dst_cut.port;

    let (out, report) = pair.migrate_async(&["--connections", "1"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        (src_cut.cuts(), dst_cut.cuts()),
        (1, 1),
        "both links were cut"
    );
    assert!(stderr.contains("reconnecting"), "{stderr}");
    assert_eq!(total(&report, "copied"), 600, "{report}");
    assert_eq!(total(&report, "failed"), 0);
    pair.assert_mirrored(&|f| f.to_owned()).await;
}

#[tokio::test]
async fn large_messages_are_streamed_and_a_cut_inside_one_leaves_no_partial_copy() {
    let mut pair = Pair::start(Layout::Slash, Layout::Slash).await;
    let tz = chrono::FixedOffset::east_opt(0).unwrap();
    let at = chrono::TimeZone::with_ymd_and_hms(&tz, 2021, 2, 3, 4, 5, 6).single();
    let seed = |n: usize, size: usize| SeedMessage {
        body: corpus::message(n, true, size),
        flags: vec!["\\Seen".into(), "$Important".into()],
        internal_date: at,
    };
    pair.seed_source(&[(
        "INBOX",
        vec![
            seed(1, 3_000),
            seed(2, 12_000_000),
            seed(3, 5_000),
            seed(4, 6_500_000),
            seed(5, 2_000),
        ],
    )])
    .await;
    // Cut the destination link in the middle of the 12 MB literal.
    let dst_cut = Cutter::start(pair.dst.port, 7_000_000, 1).await.unwrap();
    pair.dst_port = dst_cut.port;
    let (out, report) = pair.migrate_async(&["--connections", "1"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(dst_cut.cuts(), 1);
    assert_eq!(total(&report, "copied"), 5, "{report}");
    pair.assert_mirrored(&|f| f.to_owned()).await;
}
