//! `ferry migrate` with Cyrus IMAP on either side: a second implementation with its own
//! namespace (`INBOX.` and `.`), a new mailbox that has INBOX alone, special folders
//! created with CREATE-SPECIAL-USE. The same fidelity as with Dovecot: every message
//! byte for byte with its flags and INTERNALDATE, and a later pass that brings the
//! customer's changes.

use std::collections::BTreeMap;
use std::process::Output;

use ferry_tests::app::ferry_binary;
use ferry_tests::corpus;
use ferry_tests::cyrus::Cyrus;
use ferry_tests::dovecot::{Dovecot, Layout};
use ferry_tests::imap::{self, ImapSession};
use serde_json::Value;

use crate::engine::{CHANGED, customer_changes_in};
use crate::migrate::{Content, DST_PW, SRC_PW, content, side, total};

async fn migrate(src_port: u16, dst_port: u16, extra: &[&str]) -> (Output, Value) {
    let mut cmd = std::process::Command::new(ferry_binary());
    cmd.arg("migrate")
        .args(side("source", "127.0.0.1", src_port, "none", "jane"))
        .args(side("dest", "127.0.0.1", dst_port, "none", "jane"))
        .arg("--json")
        .args(extra)
        .env("FERRY_SOURCE_PASSWORD", SRC_PW)
        .env("FERRY_DEST_PASSWORD", DST_PW)
        .env("RUST_LOG", "warn");
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

async fn read(s: &mut ImapSession) -> BTreeMap<String, Vec<Content>> {
    imap::read_all(s)
        .await
        .unwrap()
        .into_iter()
        .map(|(folder, messages)| {
            let mut c: Vec<Content> = messages.iter().map(content).collect();
            c.sort();
            (folder, c)
        })
        .collect()
}

/// Every source folder's messages are in the destination folder `map` names.
fn assert_mirrored(
    source: &BTreeMap<String, Vec<Content>>,
    dest: &BTreeMap<String, Vec<Content>>,
    map: impl Fn(&str) -> String,
) {
    for (folder, want) in source {
        let target = map(folder);
        let got = dest
            .get(&target)
            .unwrap_or_else(|| panic!("{folder} → {target} missing: {:?}", dest.keys()));
        assert_eq!(
            got.len(),
            want.len(),
            "{folder} → {target}: {} at the destination for {} at the source",
            got.len(),
            want.len()
        );
        assert!(got == want, "{folder} → {target}: contents differ");
    }
}

/// Dovecot's `Projects/2019` is Cyrus's `INBOX.Projects.2019`.
fn to_cyrus(folder: &str) -> String {
    if folder == "INBOX" {
        folder.into()
    } else {
        format!("INBOX.{}", folder.replace('/', "."))
    }
}

#[tokio::test]
async fn a_dovecot_mailbox_lands_in_a_new_cyrus_mailbox_that_has_only_inbox() {
    let src = Dovecot::start(Layout::Slash).unwrap();
    src.add_user("jane", SRC_PW).unwrap();
    let mut s = imap::login(&src, "jane", SRC_PW).await.unwrap();
    imap::seed_mailbox(&src, &mut s, &corpus::mailbox())
        .await
        .unwrap();
    let dst = Cyrus::start().unwrap();
    dst.add_user("jane", DST_PW, &[]).await.unwrap();
    let mut d = dst.login("jane", DST_PW).await.unwrap();
    assert_eq!(imap::folders(&mut d).await.unwrap(), ["INBOX"]);

    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.json");
    let args = ["--state", state_file.to_str().unwrap()];
    let (out, report) = migrate(src.port, dst.port, &args).await;
    assert!(
        out.status.success(),
        "{}\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr),
        dst.log()
    );
    assert_eq!(total(&report, "copied"), 31, "{report}");
    assert_mirrored(&read(&mut s).await, &read(&mut d).await, to_cyrus);

    customer_changes_in(&mut s, "Projects").await;
    let (out, report) = migrate(src.port, dst.port, &args).await;
    assert!(out.status.success(), "{report}");
    assert_eq!(total(&report, "copied"), 2, "{report}");
    assert_eq!(total(&report, "flags_updated"), CHANGED, "{report}");
    assert_mirrored(&read(&mut s).await, &read(&mut d).await, to_cyrus);
}

#[tokio::test]
async fn a_cyrus_mailbox_lands_in_dovecot_with_its_special_folders_by_attribute() {
    let src = Cyrus::start().unwrap();
    src.add_user(
        "jane",
        SRC_PW,
        &[
            ("Sent", Some("\\Sent")),
            ("Drafts", Some("\\Drafts")),
            ("Trash", Some("\\Trash")),
        ],
    )
    .await
    .unwrap();
    let mut s = src.login("jane", SRC_PW).await.unwrap();
    for (path, messages) in corpus::mailbox() {
        let folder = src.folder(path);
        imap::seed(&mut s, &folder, &messages).await.unwrap();
    }
    // Cyrus's "Sent" carries \Sent; Dovecot's has it too: the two meet by attribute.
    imap::seed(&mut s, "INBOX.Sent", &corpus::mailbox()[1].1[..2])
        .await
        .unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    dst.add_user("jane", DST_PW).unwrap();

    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.json");
    let args = ["--state", state_file.to_str().unwrap()];
    let (out, report) = migrate(src.port, dst.port, &args).await;
    assert!(
        out.status.success(),
        "{}\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr),
        src.log()
    );
    assert_eq!(total(&report, "copied"), 33, "{report}");
    let from_cyrus = |f: &str| -> String {
        f.strip_prefix("INBOX.")
            .map(|rest| rest.replace('.', "/"))
            .unwrap_or_else(|| f.to_owned())
    };
    let mut d = imap::login(&dst, "jane", DST_PW).await.unwrap();
    assert_mirrored(&read(&mut s).await, &read(&mut d).await, from_cyrus);
    let sent = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == "INBOX.Sent")
        .unwrap();
    assert_eq!(
        (sent["dest"].as_str(), sent["mapped_by"].as_str()),
        (Some("Sent"), Some("attribute")),
        "{sent}"
    );

    customer_changes_in(&mut s, "INBOX.Projects").await;
    let (out, report) = migrate(src.port, dst.port, &args).await;
    assert!(out.status.success(), "{report}");
    assert_eq!(total(&report, "flags_updated"), CHANGED, "{report}");
    assert_mirrored(&read(&mut s).await, &read(&mut d).await, from_cyrus);
}
