//! The engine against servers that are not as obliging as a default Dovecot: servers
//! that leave out what RFC 3501 lets them leave out (one capability or optional answer
//! at a time, through `strip::Strip`), a fresh destination whose folders live under
//! `INBOX.` and that lists INBOX alone, a source with an attribute-marked special folder
//! beside a localised one, a pass that cannot count what it copied, and the changes a
//! customer makes between two passes (flags, keywords, expunges).

use std::collections::BTreeMap;

use ferry_tests::corpus;
use ferry_tests::dovecot::{Dovecot, Layout, Options};
use ferry_tests::imap::{self, SeedMessage};
use ferry_tests::strip::{Rules, Strip};

use crate::migrate::{Content, DST_PW, Pair, SRC_PW, content, own_names, total};

/// A pair whose every connection goes through a relay that applies `rules`, on both
/// sides (the source and the destination each offer less).
async fn stripped_pair(rules: &Rules) -> (Pair, Strip, Strip) {
    let mut pair = Pair::start(Layout::Slash, Layout::Slash).await;
    let src = Strip::start(pair.src.port, rules.clone()).await.unwrap();
    let dst = Strip::start(pair.dst.port, rules.clone()).await.unwrap();
    pair.src_port = src.port;
    pair.dst_port = dst.port;
    (pair, src, dst)
}

/// Messages whose flags `customer_changes` changes.
pub(crate) const CHANGED: u64 = 8;

fn new_messages(from: usize, n: usize) -> Vec<SeedMessage> {
    (from..from + n)
        .map(|i| SeedMessage {
            body: corpus::message(i, true, 1200),
            flags: vec![],
            internal_date: None,
        })
        .collect()
}

/// What a customer does at the old provider between two passes: flags some mail and
/// tags it with a keyword, answers some, marks some unread, takes a keyword away, and
/// new mail arrives. Eight messages change (`CHANGED`), two arrive.
async fn customer_changes(server: &Dovecot) {
    let mut s = imap::login(server, "jane", SRC_PW).await.unwrap();
    customer_changes_in(&mut s, "Projects").await;
}

/// The same on any server, `projects` being its name for the Projects folder.
pub(crate) async fn customer_changes_in(s: &mut imap::ImapSession, projects: &str) {
    imap::store(s, "INBOX", "1:4", "+FLAGS (\\Flagged $Work)")
        .await
        .unwrap();
    imap::store(s, "INBOX", "13", "-FLAGS (\\Seen)")
        .await
        .unwrap();
    imap::store(s, "INBOX", "5,7", "+FLAGS (\\Seen \\Answered)")
        .await
        .unwrap();
    imap::store(s, projects, "1", "-FLAGS ($Important)")
        .await
        .unwrap();
    imap::seed(s, "INBOX", &new_messages(300, 2)).await.unwrap();
}

#[tokio::test]
async fn a_server_that_leaves_out_an_optional_capability_or_answer_still_gets_every_message() {
    let cases: [(&str, Rules); 8] = [
        (
            "no UIDNEXT in SELECT",
            Rules {
                uidnext: true,
                ..Default::default()
            },
        ),
        (
            "no UIDPLUS",
            Rules {
                capabilities: vec!["UIDPLUS"],
                ..Default::default()
            },
        ),
        (
            "no LITERAL+",
            Rules {
                capabilities: vec!["LITERAL+", "LITERAL-"],
                ..Default::default()
            },
        ),
        (
            "no MULTIAPPEND",
            Rules {
                capabilities: vec!["MULTIAPPEND"],
                ..Default::default()
            },
        ),
        (
            "no SPECIAL-USE",
            Rules {
                capabilities: vec!["SPECIAL-USE"],
                special_use_attributes: true,
                ..Default::default()
            },
        ),
        (
            "no CONDSTORE",
            Rules {
                capabilities: vec!["CONDSTORE", "QRESYNC"],
                ..Default::default()
            },
        ),
        (
            "no NAMESPACE",
            Rules {
                capabilities: vec!["NAMESPACE"],
                ..Default::default()
            },
        ),
        (
            "none of them",
            Rules {
                capabilities: vec![
                    "UIDPLUS",
                    "LITERAL+",
                    "LITERAL-",
                    "MULTIAPPEND",
                    "SPECIAL-USE",
                    "CONDSTORE",
                    "QRESYNC",
                    "NAMESPACE",
                    "ESEARCH",
                    "ID",
                    "ENABLE",
                ],
                uidnext: true,
                special_use_attributes: true,
                ..Default::default()
            },
        ),
    ];
    // The cases run side by side, each with its own pair of servers.
    futures::future::join_all(cases.into_iter().map(|(case, rules)| one_case(case, rules))).await;
}

/// A full pass and a second pass after `customer_changes`, through relays that apply
/// `rules` on both sides: byte for byte with flags, each time.
async fn one_case(case: &str, rules: Rules) {
    {
        let (pair, src_strip, dst_strip) = stripped_pair(&rules).await;
        pair.seed_source(&corpus::mailbox()).await;
        let state = tempfile::tempdir().unwrap();
        let state_file = state.path().join("state.json");
        let state_arg = state_file.to_str().unwrap();

        let (out, report) = pair.migrate_async(&["--state", state_arg]).await;
        assert!(
            out.status.success(),
            "{case}: {}\n{report}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(total(&report, "copied"), 31, "{case}: {report}");
        assert_eq!(total(&report, "source_messages"), 31, "{case}: {report}");
        assert_eq!(total(&report, "unaccounted"), 0, "{case}: {report}");
        pair.assert_mirrored(&own_names).await;

        // A second pass brings what the customer changed, whatever the server lacks.
        customer_changes(&pair.src).await;
        let (out, report) = pair.migrate_async(&["--state", state_arg]).await;
        assert!(
            out.status.success(),
            "{case}, second pass: {}\n{report}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(total(&report, "copied"), 2, "{case}: {report}");
        assert_eq!(total(&report, "flags_updated"), CHANGED, "{case}: {report}");
        pair.assert_mirrored(&own_names).await;
        assert!(
            src_strip.changed() > 0 && dst_strip.changed() > 0,
            "{case}: the relay took nothing away"
        );
    }
}

#[tokio::test]
async fn a_pass_that_cannot_account_for_every_message_fails_loudly_and_the_next_run_copies_them() {
    // The source's index answers the copy loop without two of INBOX's messages, while
    // SEARCH and EXISTS still count them.
    let rules = Rules {
        hide_uids: vec![3, 8],
        ..Default::default()
    };
    let (mut pair, _src, _dst) = stripped_pair(&rules).await;
    pair.seed_source(&corpus::mailbox()).await;
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.json");
    let state_arg = state_file.to_str().unwrap();
    let (out, report) = pair.migrate_async(&["--state", state_arg]).await;
    assert_eq!(
        out.status.code(),
        Some(5),
        "a pass that does not add up has its own exit code: {report}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not add up"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Message 3 of every folder that has one, and message 8 of INBOX.
    assert_eq!(total(&report, "unaccounted"), 6, "{report}");
    let inbox = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == "INBOX")
        .unwrap();
    assert_eq!(
        inbox["unaccounted_uids"],
        serde_json::json!([3, 8]),
        "{inbox}"
    );
    assert_eq!(inbox["source_messages"], 14, "{inbox}");

    // Straight to the server: the two are copied, nothing twice.
    pair.src_port = pair.src.port;
    pair.dst_port = pair.dst.port;
    let (out, report) = pair.migrate_async(&["--state", state_arg]).await;
    assert!(out.status.success(), "{report}");
    assert_eq!(total(&report, "copied"), 6, "{report}");
    pair.assert_mirrored(&own_names).await;
}

#[tokio::test]
async fn a_fresh_destination_under_inbox_dot_that_lists_only_inbox_gets_the_whole_tree() {
    let src = Dovecot::start(Layout::Slash).unwrap();
    let dst = Dovecot::start_with(Options {
        layout: Layout::DotInboxPrefix,
        auto_special_folders: false,
        ..Default::default()
    })
    .unwrap();
    src.add_user("jane", SRC_PW).unwrap();
    dst.add_user("jane", DST_PW).unwrap();
    let pair = Pair::new(src, dst);
    pair.seed_source(&corpus::mailbox()).await;
    let mut d = imap::login(&pair.dst, "jane", DST_PW).await.unwrap();
    assert_eq!(imap::folders(&mut d).await.unwrap(), ["INBOX"]);

    let (out, report) = pair.migrate_async(&[]).await;
    assert!(
        out.status.success(),
        "{}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(total(&report, "copied"), 31, "{report}");
    pair.assert_mirrored(&|f: &str| {
        if f == "INBOX" {
            f.to_owned()
        } else {
            format!("INBOX.{}", f.replace('/', "."))
        }
    })
    .await;
}

#[tokio::test]
async fn an_attribute_marked_drafts_folder_and_a_localised_one_both_keep_their_messages() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    // Dovecot marks Drafts \Drafts; a German client kept its drafts in "Entwürfe".
    pair.seed_source(&[
        ("Drafts", new_messages(400, 2)),
        ("Entwürfe", new_messages(410, 3)),
        ("Gesendete Elemente", new_messages(420, 1)),
    ])
    .await;
    let (out, report) = pair.migrate_async(&[]).await;
    assert!(out.status.success(), "{report}");
    let dest = Pair::read(&pair.dst).await;
    assert_eq!(dest["Drafts"].len(), 2, "{:?}", dest.keys());
    assert_eq!(dest["Entw&APw-rfe"].len(), 3, "{:?}", dest.keys());
    let by_source: BTreeMap<&str, (&str, &str)> = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["source_path"].as_str().unwrap(),
                (
                    f["dest_path"].as_str().unwrap(),
                    f["mapped_by"].as_str().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(by_source["Drafts"], ("Drafts", "attribute"));
    assert_eq!(by_source["Entwürfe"], ("Entwürfe", "name"));
    // The source's Sent is marked \Sent too: the German name is only a name.
    assert_eq!(
        by_source["Gesendete Elemente"],
        ("Gesendete Elemente", "name")
    );

    // The user decides otherwise: merged into Drafts on purpose.
    let (out, report) = pair
        .migrate_async(&["--map", "Entwürfe=Drafts", "--folder", "Entwürfe"])
        .await;
    assert!(out.status.success(), "{report}");
    assert_eq!(report["folders"][0]["mapped_by"], "user", "{report}");
    let dest = Pair::read(&pair.dst).await;
    assert_eq!(dest["Drafts"].len(), 5);
}

#[tokio::test]
async fn flags_keywords_and_expunges_between_passes_are_brought_over_and_nothing_else_is_removed() {
    let pair = Pair::start(Layout::Slash, Layout::Slash).await;
    pair.seed_source(&corpus::mailbox()).await;
    // A message the destination had before: not Ferry's to remove.
    let mut d = imap::login(&pair.dst, "jane", DST_PW).await.unwrap();
    imap::seed(&mut d, "INBOX", &new_messages(500, 1))
        .await
        .unwrap();
    let own: Content = content(&imap::read_folder(&mut d, "INBOX").await.unwrap()[0]);
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.json");
    let state_arg = state_file.to_str().unwrap();
    let args = ["--state", state_arg, "--sync-deletions"];
    let (out, report) = pair.migrate_async(&args).await;
    assert!(out.status.success(), "{report}");

    customer_changes(&pair.src).await;
    let mut s = imap::login(&pair.src, "jane", SRC_PW).await.unwrap();
    imap::expunge(&mut s, "INBOX", "9:11").await.unwrap();
    imap::expunge(&mut s, "Projects/2019", "1").await.unwrap();
    let (out, report) = pair.migrate_async(&args).await;
    assert!(
        out.status.success(),
        "{}\n{report}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(total(&report, "flags_updated"), CHANGED, "{report}");
    assert_eq!(total(&report, "removed"), 4, "{report}");
    assert_eq!(total(&report, "copied"), 2, "{report}");

    // The destination is the source again, plus its own message.
    let source = Pair::read(&pair.src).await;
    let mut dest = Pair::read(&pair.dst).await;
    let inbox = dest.get_mut("INBOX").unwrap();
    let before = inbox.len();
    inbox.retain(|m| content(m) != own);
    assert_eq!(
        inbox.len(),
        before - 1,
        "the destination's own message stays"
    );
    for (folder, messages) in &source {
        let mut want: Vec<Content> = messages.iter().map(content).collect();
        let mut got: Vec<Content> = dest[folder].iter().map(content).collect();
        want.sort();
        got.sort();
        assert!(got == want, "{folder} differs from the source");
    }

    // Without --sync-deletions, an expunge at the source leaves the copy alone.
    imap::expunge(&mut s, "INBOX", "12").await.unwrap();
    let (out, report) = pair.migrate_async(&["--state", state_arg]).await;
    assert!(out.status.success(), "{report}");
    assert_eq!(total(&report, "removed"), 0, "{report}");
    assert_eq!(
        Pair::read(&pair.dst).await["INBOX"].len(),
        before,
        "{report}"
    );
}

#[tokio::test]
async fn killed_twice_at_random_moments_it_ends_byte_for_byte_every_time() {
    // A new series of moments on every run; the seed is printed, and `KILL_SEED=N` in
    // the environment replays it. scripts/kill-loop runs fifty trials and more.
    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        });
    let series = ferry_tests::killloop::KillLoop::start().await.unwrap();
    for n in 0..4 {
        let delays = ferry_tests::killloop::kill_delays(seed, n, 1000);
        let verdict = series.trial(n, delays).await.unwrap();
        assert!(
            verdict.problems.is_empty(),
            "KILL_SEED={seed} trial {n}, kills at {delays:?}: {:?}",
            verdict.problems
        );
    }
}
