//! A migration's whole life through the API, with `ferry serve` as its own process:
//! real Dovecot on both sides, aiosmtpd for the emails, dnsmasq for the MX answer.
//! Request → scheduled → pre-MX pass → MX instructions → new mail → the MX flips →
//! post-MX pass copies exactly the new mail → completion email; then a sync pass and
//! "delete migrated items". Also: Ferry killed mid-pass, and a password refused.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use ferry_tests::corpus;
use ferry_tests::cutter::Cutter;
use ferry_tests::dns::Dns;
use ferry_tests::dovecot::{Dovecot, Layout, Options};
use ferry_tests::imap::{self, SeedMessage};
use ferry_tests::serve::FerryProcess;
use ferry_tests::smtp::{Received, SmtpSink};
use serde_json::{Value, json};

const SRC_PW: &str = "old-provider-pw-5310";
const DST_PW: &str = "new-provider-pw-8142";
const SRC_USER: &str = "jane@old.example";
const DST_USER: &str = "jane@new.example";
const STAFF: &str = "support@provider.test";

struct Life {
    src: Dovecot,
    /// Where Ferry reaches the source: the server, or a slow link in front of it.
    src_port: u16,
    dst: Dovecot,
    smtp: SmtpSink,
    dns: Dns,
    ferry: FerryProcess,
    token: String,
    client: reqwest::Client,
}

fn messages(from: usize, n: usize, size: usize) -> Vec<SeedMessage> {
    (from..from + n)
        .map(|i| SeedMessage {
            body: corpus::message(i, i % 9 != 4, size),
            flags: if i % 2 == 0 {
                vec!["\\Seen".into()]
            } else {
                vec![]
            },
            internal_date: None,
        })
        .collect()
}

impl Life {
    async fn start(mailbox: &[(&str, Vec<SeedMessage>)], extra: &[(&str, String)]) -> Self {
        ferry_tests::init_crypto();
        // The source's durability is not under test: no fsync, so seeding is quick.
        let src = Dovecot::start_with(Options {
            layout: Layout::Slash,
            fsync: false,
            ..Default::default()
        })
        .unwrap();
        src.add_user(SRC_USER, SRC_PW).unwrap();
        let dst = Dovecot::start(Layout::Slash).unwrap();
        dst.add_user(DST_USER, DST_PW).unwrap();
        let mut s = imap::login(&src, SRC_USER, SRC_PW).await.unwrap();
        imap::seed_mailbox(&src, &mut s, mailbox).await.unwrap();
        s.logout().await.unwrap();
        let smtp = SmtpSink::start().unwrap();
        let dns = Dns::start(&[("new.example", 10, "mx.old-provider.example")])
            .await
            .unwrap();
        let mut env: Vec<(&str, String)> = vec![
            ("FERRY_ALLOW_PRIVATE_TARGETS", "true".into()),
            ("FERRY_SMTP_URL", smtp.url()),
            ("FERRY_SMTP_FROM", "Ferry <ferry@provider.test>".into()),
            ("FERRY_SMTP__STAFF_ADDRESS", STAFF.into()),
            ("FERRY_SMTP__POLL_SECONDS", "1".into()),
            ("FERRY_MX__NAMESERVER", dns.addr().to_string()),
            ("FERRY_MX__GRACE_SECONDS", "0".into()),
            ("FERRY_MX__CHECK_SECONDS", "1".into()),
            ("FERRY_WORKERS__POLL_SECONDS", "1".into()),
            ("FERRY_WORKERS__LEASE_SECONDS", "3".into()),
            (
                "FERRY_PROVIDER__MX_HOSTS",
                r#"["10 mx1.provider.test"]"#.into(),
            ),
            (
                "FERRY_PROVIDER__MX_PATTERNS",
                r#"["*.provider.test"]"#.into(),
            ),
            // Any hour, no notice: the test's window is the next minute.
            ("FERRY_SCHEDULE__NOTICE_HOURS", "0".into()),
            ("FERRY_SCHEDULE__WEEKEND_NOTICE_HOURS", "0".into()),
            ("FERRY_SCHEDULE__OFF_HOURS_START", "00:00".into()),
            ("FERRY_SCHEDULE__OFF_HOURS_END", "00:00".into()),
        ];
        env.extend(extra.iter().cloned());
        let ferry = FerryProcess::start(&env).unwrap();
        let token = ferry
            .token(&["migrations:read", "migrations:write", "migrations:override"])
            .unwrap();
        Self {
            src_port: src.port,
            src,
            dst,
            smtp,
            dns,
            ferry,
            token,
            client: reqwest::Client::new(),
        }
    }

    /// Calls the API; no answer may hold a password.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        ferry_tests::api::call(
            &self.client,
            &self.ferry.base(),
            &self.token,
            method,
            path,
            body,
            &[SRC_PW, DST_PW],
        )
        .await
    }

    fn request(&self, window: Option<String>, two_pass: bool, dst_pw: &str) -> Value {
        let mut body = json!({
            "source": {"host": "127.0.0.1", "port": self.src_port, "security": "none",
                       "username": SRC_USER, "password": SRC_PW},
            "destination": {"host": "127.0.0.1", "port": self.dst.port, "security": "none",
                            "username": DST_USER, "password": dst_pw},
            "two_pass": two_pass,
            "requester_email": DST_USER,
        });
        if let Some(w) = window {
            body["window"] = json!({"start": w, "time_zone": "UTC"});
        }
        body
    }

    /// Requests a one-pass migration without a window (staff override); its id.
    async fn start_now(&self, dst_pw: &str) -> i64 {
        let (status, m) = self
            .call(
                "POST",
                "/migrations",
                Some(self.request(None, false, dst_pw)),
            )
            .await;
        assert_eq!(status, 201, "{m}");
        m["id"].as_i64().unwrap()
    }

    /// Puts a slow link (about `bytes_per_second`) between Ferry and the source.
    async fn slow_source(&mut self, bytes_per_second: u64) -> Cutter {
        let slow = Cutter::slow(self.src.port, bytes_per_second).await.unwrap();
        self.src_port = slow.port;
        slow
    }

    async fn get(&self, id: i64) -> Value {
        let (status, body) = self.call("GET", &format!("/migrations/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls until the migration is in `status` (a final status other than the one
    /// awaited fails at once).
    async fn wait_status(&self, id: i64, status: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.get(id).await;
            if m["status"] == status {
                return m;
            }
            let finished =
                ["completed", "failed", "cancelled"].contains(&m["status"].as_str().unwrap_or(""));
            assert!(
                !finished && Instant::now() < deadline,
                "waiting for {status}, got {}: {m:#}\n{}",
                m["status"],
                self.ferry.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The email with this subject to `to`.
    async fn email_to(&self, subject: &str, to: &str) -> Received {
        let found = self
            .smtp
            .wait_for(Duration::from_secs(30), |m| {
                m.subject().contains(subject) && m.to().iter().any(|t| t == to)
            })
            .await;
        found.unwrap_or_else(|e| panic!("{e}: {subject:?} to {to}"))
    }

    async fn email(&self, subject: &str) -> Received {
        let found = self
            .smtp
            .wait_for(Duration::from_secs(30), |m| m.subject().contains(subject))
            .await;
        found.unwrap_or_else(|e| {
            let got: Vec<String> = self.smtp.messages().iter().map(Received::subject).collect();
            panic!("{e}: {subject:?}; received {got:?}")
        })
    }

    async fn read(server: &Dovecot, user: &str, pw: &str) -> BTreeMap<String, Vec<Vec<u8>>> {
        let mut s = imap::login(server, user, pw).await.unwrap();
        let all = imap::read_all(&mut s).await.unwrap();
        s.logout().await.ok();
        all.into_iter()
            .map(|(f, ms)| {
                let mut bodies: Vec<Vec<u8>> = ms.into_iter().map(|m| m.body).collect();
                bodies.sort();
                (f, bodies)
            })
            .collect()
    }

    /// The destination holds exactly the source's messages, folder by folder, plus
    /// `extra` in INBOX.
    async fn assert_mirrored(&self, extra_inbox: &[Vec<u8>]) {
        let mut want = Self::read(&self.src, SRC_USER, SRC_PW).await;
        let inbox = want.entry("INBOX".into()).or_default();
        inbox.extend(extra_inbox.iter().cloned());
        inbox.sort();
        let got = Self::read(&self.dst, DST_USER, DST_PW).await;
        for (folder, bodies) in &want {
            let dest = got.get(folder).cloned().unwrap_or_default();
            assert!(
                &dest == bodies,
                "{folder}: {} at the destination, {} expected\n{}",
                dest.len(),
                bodies.len(),
                self.explain(&want, &got)
            );
        }
    }

    /// What a failed comparison needs to be understood: each destination folder's
    /// count, its copies counted twice, where its strangers come from, and what Ferry
    /// logged about its work.
    fn explain(
        &self,
        want: &BTreeMap<String, Vec<Vec<u8>>>,
        got: &BTreeMap<String, Vec<Vec<u8>>>,
    ) -> String {
        let source_of: std::collections::HashMap<&Vec<u8>, &str> = want
            .iter()
            .flat_map(|(f, bodies)| bodies.iter().map(move |b| (b, f.as_str())))
            .collect();
        let mut out = String::new();
        for (folder, bodies) in got {
            let distinct: std::collections::HashSet<&Vec<u8>> = bodies.iter().collect();
            let mut from: BTreeMap<&str, usize> = BTreeMap::new();
            for body in &distinct {
                let source = source_of.get(body).copied().unwrap_or("nowhere");
                *from.entry(source).or_default() += 1;
            }
            out += &format!(
                "destination {folder}: {} messages, {} distinct, from {from:?}\n",
                bodies.len(),
                distinct.len()
            );
        }
        let log = self.ferry.log();
        let work: Vec<&str> = log
            .lines()
            .filter(|l| {
                [
                    "WARN", "ERROR", "work", "Work", "pass", "Pass", "Lease", "lease",
                ]
                .iter()
                .any(|w| l.contains(w))
            })
            .collect();
        out + &work.join("\n")
    }

    /// A log filtered by one migration tells its whole story: its work starting and
    /// ending, each pass, and each folder the engine copied, every line carrying the
    /// migration (from the worker's span) and the engine's lines their folder too.
    fn assert_log_tells_the_story_of(&self, id: i64, folders: &[&str]) {
        let log = self.ferry.log();
        let mine: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("migration={id}")))
            .collect();
        let story = mine.join("\n");
        for needle in [
            "Starting work",
            "Work ended",
            "Pass finished",
            "pass=1",
            "pass=2",
        ] {
            assert!(
                story.contains(needle),
                "no {needle:?} among migration {id}'s lines:\n{story}"
            );
        }
        assert!(
            mine.iter().any(|l| l.contains("Migration requested")
                && l.contains("request{request=")
                && l.contains("path=/api/v1/migrations")),
            "the request's line does not carry the request's span:\n{story}"
        );
        for folder in folders {
            assert!(
                mine.iter().any(|l| l.contains("Folder done")
                    && l.contains(&format!("folder{{folder={folder}}}"))),
                "no \"Folder done\" line of {folder} carries migration {id}:\n{story}"
            );
        }
        let engine_lines = log.lines().filter(|l| l.contains("Folder done"));
        for line in engine_lines {
            assert!(
                line.contains("migration="),
                "an engine line without its migration: {line}"
            );
        }
    }

    /// Nothing Ferry wrote holds a password: its log, its emails, its database files.
    fn assert_no_password_anywhere(&self) {
        let log = self.ferry.log();
        assert!(
            log.contains("Pass finished"),
            "the log is the real one: {log}"
        );
        for (what, text) in std::iter::once(("the log".to_owned(), log.into_bytes()))
            .chain(
                self.smtp
                    .messages()
                    .into_iter()
                    .map(|m| (format!("email {:?}", m.subject()), m.raw)),
            )
            .chain(
                std::fs::read_dir(self.ferry.data_dir.path())
                    .unwrap()
                    .filter_map(Result::ok)
                    .map(|e| {
                        (
                            e.path().display().to_string(),
                            std::fs::read(e.path()).unwrap_or_default(),
                        )
                    }),
            )
        {
            for pw in [SRC_PW, DST_PW] {
                assert!(
                    !text.windows(pw.len()).any(|w| w == pw.as_bytes()),
                    "a password in {what}"
                );
            }
        }
    }
}

/// Messages copied so far in the current run of the pass, over all folders.
fn copied(m: &Value) -> u64 {
    m["folders"]
        .as_array()
        .map(|fs| fs.iter().map(|f| f["copied"].as_u64().unwrap_or(0)).sum())
        .unwrap_or(0)
}

/// Messages copied so far in one folder.
fn folder_copied(m: &Value, folder: &str) -> u64 {
    m["folders"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["source"] == folder))
        .and_then(|f| f["copied"].as_u64())
        .unwrap_or(0)
}

/// The next whole minute at least 5 s away, as typed in the UTC form.
fn next_minute() -> String {
    let now = Utc::now();
    let mut at =
        now.with_second(0).unwrap().with_nanosecond(0).unwrap() + chrono::Duration::minutes(1);
    if at - now < chrono::Duration::seconds(5) {
        at += chrono::Duration::minutes(1);
    }
    at.format("%Y-%m-%dT%H:%M").to_string()
}

#[tokio::test]
async fn a_migration_lives_from_request_to_completion_through_the_api() {
    let mailbox = vec![
        ("INBOX", messages(0, 40, 1500)),
        ("Archive/2023", messages(100, 25, 3000)),
        ("Sent", messages(200, 10, 800)),
    ];
    let mut life = Life::start(&mailbox, &[]).await;

    // Request, with a window in the next minute.
    let (status, m) = life
        .call(
            "POST",
            "/migrations",
            Some(life.request(Some(next_minute()), true, DST_PW)),
        )
        .await;
    assert_eq!(status, 201, "{m}");
    let id = m["id"].as_i64().unwrap();
    assert_eq!(m["status"], "pending");
    let received = life
        .email(&format!("Migration request #{id} received"))
        .await;
    // The customer's copy links to their own page, which opens without signing in.
    assert_eq!(received.to(), vec![DST_USER.to_owned()]);
    let track = received
        .text()
        .split_whitespace()
        .find(|w| w.contains("/track/"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no customer link: {}", received.text()));
    assert!(
        !received.text().contains("/migrations/"),
        "{}",
        received.text()
    );
    let page = reqwest::get(&track).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["referrer-policy"],
        "same-origin",
        "the token in the address never goes to another site"
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Your mail migration") && page.contains(&format!("#{id}")),
        "{page}"
    );
    assert!(!page.contains("Sign in"), "{page}");

    // Credentials checked: scheduled for the window, nothing copied yet.
    let m = life
        .wait_status(id, "scheduled", Duration::from_secs(20))
        .await;
    assert!(m["passes"].as_array().unwrap().is_empty(), "{m}");
    let scheduled = life.email(&format!("Migration #{id} is scheduled")).await;
    assert!(
        scheduled.text().contains("It starts"),
        "{}",
        scheduled.text()
    );

    // The window opens: the pre-MX pass copies everything, then the MX instructions.
    let m = life
        .wait_status(id, "waiting_for_mx", Duration::from_secs(150))
        .await;
    let passes = m["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 1, "{m}");
    assert_eq!(
        (passes[0]["kind"].as_str(), passes[0]["status"].as_str()),
        (Some("pre_mx"), Some("succeeded"))
    );
    assert_eq!(passes[0]["copied"], 75, "{m}");
    let inbox = m["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == "INBOX")
        .cloned()
        .unwrap();
    assert_eq!(
        (inbox["copied"].as_u64(), inbox["status"].as_str()),
        (Some(40), Some("done")),
        "{m}"
    );
    life.assert_mirrored(&[]).await;
    life.email(&format!("Migration #{id}: the first copy has started"))
        .await;
    let mx = life
        .email(&format!(
            "Migration #{id}: change the MX records of new.example now"
        ))
        .await;
    let text = mx.text();
    assert!(
        text.contains("new.example.  MX  10 mx1.provider.test."),
        "{text}"
    );
    assert!(text.contains("75 copied"), "{text}");
    assert!(mx.html().contains("mx1.provider.test"));

    // Mail keeps arriving at the old server while the MX still points there.
    let late = messages(300, 3, 1200);
    let mut s = imap::login(&life.src, SRC_USER, SRC_PW).await.unwrap();
    imap::seed(&mut s, "INBOX", &late).await.unwrap();
    imap::seed(&mut s, "Archive/2023", &messages(400, 1, 900))
        .await
        .unwrap();
    s.logout().await.ok();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = life.get(id).await;
    assert_eq!(m["status"], "waiting_for_mx", "{m}");
    assert_eq!(m["mx_answer"], "10 mx.old-provider.example", "{m}");

    // The customer changes the MX: the post-MX pass copies exactly the new mail.
    life.dns
        .set_mx(&[("new.example", 10, "mx1.provider.test")])
        .await
        .unwrap();
    let m = life
        .wait_status(id, "completed", Duration::from_secs(60))
        .await;
    let passes = m["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 2, "{m}");
    assert_eq!(passes[1]["kind"], "post_mx");
    assert_eq!(
        (passes[1]["copied"].as_u64(), passes[1]["failed"].as_u64()),
        (Some(4), Some(0)),
        "{m}"
    );
    assert!(m["mx_switched_at"].is_string());
    life.assert_mirrored(&[]).await;
    let done = life.email(&format!("Migration #{id} is complete")).await;
    let text = done.text();
    assert!(
        text.contains("4 copied, 0 already there or skipped, 0 failed"),
        "{text}"
    );
    assert!(text.contains("INBOX: 3 copied"), "{text}");
    assert!(
        text.contains("In all, over 2 passes: 79 messages copied"),
        "the totals of the whole migration: {text}"
    );

    // Another delta pass on demand: nothing new, nothing doubled.
    let (status, m) = life
        .call("POST", &format!("/migrations/{id}:sync"), None)
        .await;
    assert_eq!(status, 200, "{m}");
    life.email(&format!("Migration #{id}: the catch-up copy is done"))
        .await;
    let m = life
        .wait_status(id, "completed", Duration::from_secs(30))
        .await;
    let passes = m["passes"].as_array().unwrap();
    assert_eq!(
        (passes.len(), passes[2]["copied"].as_u64()),
        (3, Some(0)),
        "{m}"
    );
    life.assert_mirrored(&[]).await;

    // The customer's own new mail at the destination stays when the post-MX copies go.
    let own = corpus::message(900, true, 700);
    let mut d = imap::login(&life.dst, DST_USER, DST_PW).await.unwrap();
    imap::seed(
        &mut d,
        "INBOX",
        &[SeedMessage {
            body: own.clone(),
            flags: vec![],
            internal_date: None,
        }],
    )
    .await
    .unwrap();
    d.logout().await.ok();
    let (status, body) = life
        .call(
            "POST",
            &format!("/migrations/{id}:delete-migrated?from_pass=2"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while life.get(id).await["next_run_at"].is_string() {
        assert!(Instant::now() < deadline, "delete-migrated did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = Life::read(&life.dst, DST_USER, DST_PW).await;
    assert_eq!(
        got["INBOX"].len(),
        40 + 1,
        "the pre-MX copies and the customer's own message stay"
    );
    assert!(got["INBOX"].contains(&own));
    assert!(
        late.iter().all(|m| !got["INBOX"].contains(&m.body)),
        "the post-MX copies are gone"
    );
    assert_eq!(got["Archive/2023"].len(), 25);

    // The whole life's emails, and no more: the customer's for each step they follow,
    // staff's for the same and the staff-only sync pass (not sent to the customer by
    // default), never the same news twice.
    let subjects = [
        format!("Migration request #{id} received"),
        format!("Migration #{id} is scheduled"),
        format!("Migration #{id}: the first copy has started"),
        format!("Migration #{id}: change the MX records of new.example now"),
        format!("Migration #{id}: the final copy has started"),
        format!("Migration #{id} is complete"),
        format!("Migration #{id}: the catch-up copy has started"),
        format!("Migration #{id}: the catch-up copy is done"),
    ];
    let mut expected: Vec<(String, String)> = Vec::new();
    for (n, subject) in subjects.iter().enumerate() {
        if n < 6 {
            expected.push((DST_USER.to_owned(), subject.clone()));
        }
        expected.push((STAFF.to_owned(), subject.clone()));
    }
    expected.sort();
    // Settled: the dispatcher has sent everything queued.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got: Vec<(String, String)> = life
        .smtp
        .messages()
        .iter()
        .filter(|m| m.subject().contains(&format!("#{id}")))
        .flat_map(|m| m.to().into_iter().map(move |to| (to, m.subject())))
        .collect();
    got.sort();
    assert_eq!(got, expected);

    life.assert_no_password_anywhere();
    life.assert_log_tells_the_story_of(id, &["INBOX", "Archive/2023", "Sent"]);
}

#[tokio::test]
async fn killed_mid_pass_ferry_resumes_with_nothing_lost_and_nothing_doubled() {
    let mailbox = vec![
        ("INBOX", messages(0, 1000, 3000)),
        ("Newsletters", messages(10_000, 4000, 3000)),
    ];
    let mut life = Life::start(&mailbox, &[("FERRY_WORKERS__CONNECTIONS", "2".into())]).await;
    // An old provider's slow link (about 10 s for the whole mailbox), so that the
    // kills land mid-pass.
    let _slow = life.slow_source(1_500_000).await;
    // No window: staff start it at once (override).
    let id = life.start_now(DST_PW).await;

    // kill -9 twice: once 800 messages are copied, then once 600 more are.
    let mut at_kill = 0;
    let mut folders_at_kill: Vec<(&str, u64)> = Vec::new();
    for (round, more) in [(0, 800), (1, 600)] {
        if round > 0 {
            // Wait until the restarted Ferry took the pass up again and its progress
            // rows are its own (written once a second).
            let deadline = Instant::now() + Duration::from_secs(30);
            while life
                .ferry
                .log()
                .matches("Resuming an interrupted pass")
                .count()
                < round
            {
                assert!(
                    Instant::now() < deadline,
                    "not resumed: {}",
                    life.ferry.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
            // The resumed pass's bars go on from where they were, not from zero: at
            // most the batches in flight at the kill (200 messages per connection)
            // wait to be confirmed again.
            let m = life.get(id).await;
            for (folder, before) in &folders_at_kill {
                let now = folder_copied(&m, folder);
                assert!(
                    now + 200 >= *before,
                    "{folder}: progress went back from {before} to {now}: {m}"
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = life.get(id).await;
            assert!(
                m["status"] != "completed",
                "finished before kill {round}: {m}"
            );
            if copied(&m) >= at_kill + more {
                if round == 0 {
                    // Mid-pass: its pace, and the time left at that pace.
                    let rate = m["pace"]["messages_per_second"].as_f64().unwrap_or(0.0);
                    assert!(rate > 0.0, "a running pass has a pace: {m}");
                    let left = m["pace"]["seconds_left"].as_u64().expect("time left");
                    assert!((1..600).contains(&left), "{left} s left: {m}");
                }
                at_kill = copied(&m);
                folders_at_kill = ["INBOX", "Newsletters"]
                    .map(|f| (f, folder_copied(&m, f)))
                    .to_vec();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no progress: {m}\n{}",
                life.ferry.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        life.ferry.kill();
        life.ferry.restart().unwrap();
        // The old connections died with the process.
        life.client = reqwest::Client::new();
    }
    let m = life
        .wait_status(id, "completed", Duration::from_secs(120))
        .await;
    let passes = m["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 1, "one pass, resumed twice: {m}");
    assert_eq!(
        passes[0]["copied"], 5000,
        "the pass counts every copy once: {m}"
    );
    let log = life.ferry.log();
    assert_eq!(
        log.matches("Resuming an interrupted pass").count(),
        2,
        "both restarts resumed the pass: {log}"
    );
    life.assert_mirrored(&[]).await;
    let got = Life::read(&life.dst, DST_USER, DST_PW).await;
    assert_eq!(got["Newsletters"].len(), 4000, "nothing doubled");
    assert_eq!(got["INBOX"].len(), 1000, "nothing doubled");
    life.email(&format!("Migration #{id} is complete")).await;
}

#[tokio::test]
async fn a_worker_whose_lease_is_taken_over_stops_and_the_pass_resumes_once() {
    let mailbox = vec![("INBOX", messages(0, 1500, 3000))];
    let mut life = Life::start(&mailbox, &[("FERRY_WORKERS__CONNECTIONS", "1".into())]).await;
    // About 4.5 s for the mailbox: the takeover lands mid-pass.
    let _slow = life.slow_source(1_000_000).await;
    let id = life.start_now(DST_PW).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while copied(&life.get(id).await) < 300 {
        assert!(
            Instant::now() < deadline,
            "no progress: {}",
            life.ferry.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Another worker takes the migration over, as when this one's lease runs out
    // unrenewed: the lease freed and claimed under another name.
    let db = format!(
        "sqlite://{}?mode=rwc",
        life.ferry.data_dir.path().join("ferry.db").display()
    );
    let store = ferry::store::Store::connect(&db).await.unwrap();
    let m = store
        .get_migration(ferry::domain::MigrationId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.status, ferry::domain::MigrationStatus::Processing);
    let holder = m.lease_owner.expect("a running pass holds its lease");
    store
        .release_lease(ferry::domain::MigrationId(id), &holder)
        .await
        .unwrap();
    let now = Utc::now();
    let thief = store
        .claim_due_migration(
            "another-worker:0",
            now,
            now + chrono::Duration::seconds(300),
            &ferry::store::ClaimLimits {
                pass_allowed: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .expect("the pass is due to whoever holds no lease");
    assert_eq!(thief.id.0, id);

    // Ferry's worker stops at its next heartbeat or checkpoint, and appends nothing
    // more: the destination stays as it is while the other worker holds it.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !["Lease taken over", "Lease lost mid-"]
        .iter()
        .any(|w| life.ferry.log().contains(w))
    {
        assert!(
            Instant::now() < deadline,
            "still running: {}",
            life.ferry.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped_at = inbox_count(&life.dst).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        inbox_count(&life.dst).await,
        stopped_at,
        "appended after the takeover"
    );
    assert!(stopped_at < 1500, "taken over mid-pass: {stopped_at}");

    // The other worker goes away without a word: Ferry takes the same pass up again.
    store
        .release_lease(ferry::domain::MigrationId(id), "another-worker:0")
        .await
        .unwrap();
    let m = life
        .wait_status(id, "completed", Duration::from_secs(120))
        .await;
    let passes = m["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 1, "one pass, resumed: {m}");
    assert_eq!(passes[0]["copied"], 1500, "every copy counted once: {m}");
    life.assert_mirrored(&[]).await;
    let got = Life::read(&life.dst, DST_USER, DST_PW).await;
    assert_eq!(got["INBOX"].len(), 1500, "nothing doubled");
}

/// How many messages the destination's INBOX holds now.
async fn inbox_count(dst: &Dovecot) -> u32 {
    let mut s = imap::login(dst, DST_USER, DST_PW).await.unwrap();
    let n = s.examine("INBOX").await.unwrap().exists;
    s.logout().await.ok();
    n
}

mod a_refused_password_fails_the_migration_and_asks_for_action_then_retry_works {
    /// At TRACE, the most a log can say: no password may be in it.
    #[tokio::test]
    async fn sqlite_logged_at_trace() {
        super::refused_password_then_retry(None, true).await;
    }

    #[tokio::test]
    async fn postgres() {
        let pg = ferry_tests::postgres::PgDatabase::create().unwrap();
        super::refused_password_then_retry(Some(pg.url()), false).await;
    }
}

/// Every form a password could take in a log line: itself, and inside the base64 of
/// a SASL PLAIN answer (`\0user\0password`) at any of the three alignments.
fn password_forms(password: &str) -> Vec<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forms = vec![password.to_owned()];
    for pad in ["", "x", "xy"] {
        let encoded = b64.encode(format!("{pad}{password}"));
        // The characters that depend only on the password, away from both ends.
        let skip = if pad.is_empty() { 0 } else { 4 };
        forms.push(encoded[skip..encoded.len().saturating_sub(4)].to_owned());
    }
    forms
}

async fn refused_password_then_retry(database_url: Option<String>, trace: bool) {
    let mailbox = vec![("INBOX", messages(0, 5, 900))];
    let mut env = vec![("FERRY_RETENTION__CREDENTIAL_DAYS", "0".to_owned())];
    env.extend(database_url.map(|url| ("DATABASE_URL", url)));
    if trace {
        env.push(("FERRY_LOG__FILTER", "trace".to_owned()));
    }
    let mut life = Life::start(&mailbox, &env).await;
    let id = life.start_now("not-the-password").await;
    let m = life
        .wait_status(id, "failed", Duration::from_secs(30))
        .await;
    assert_eq!(m["error"]["code"], "auth", "{m}");
    let email = life
        .email(&format!("Migration #{id}: a password does not work"))
        .await;
    assert!(
        email
            .text()
            .contains("The destination server refused the password for jane@new.example"),
        "{}",
        email.text()
    );
    assert!(!email.text().contains("not-the-password"));

    // Staff put the right password in and retry.
    let (status, body) = life
        .call(
            "POST",
            &format!("/migrations/{id}/credentials"),
            Some(json!({ "destination_password": DST_PW })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, m) = life
        .call("POST", &format!("/migrations/{id}:retry"), None)
        .await;
    assert_eq!(
        (status, m["duplicates"].as_str()),
        (200, Some("skip")),
        "{m}"
    );
    life.wait_status(id, "completed", Duration::from_secs(60))
        .await;
    let mut d = imap::login(&life.dst, DST_USER, DST_PW).await.unwrap();
    assert_eq!(imap::read_folder(&mut d, "INBOX").await.unwrap().len(), 5);

    // Actions a migration's status does not allow are a 409 that says why.
    let (status, body) = life
        .call("POST", &format!("/migrations/{id}:mx-switched"), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_waiting_for_mx")),
        "{body}"
    );
    let (status, body) = life
        .call("POST", &format!("/migrations/{id}:retry"), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_retryable")),
        "{body}"
    );
    let (status, body) = life
        .call(
            "POST",
            &format!("/migrations/{id}:delete-migrated?from_pass=9"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );

    // Finished and past its retention (0 days here): the next purge, which also runs
    // at start, erases the stored passwords.
    life.ferry.kill();
    life.ferry.restart().unwrap();
    life.client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !life.get(id).await["credentials_purged_at"].is_string() {
        assert!(
            Instant::now() < deadline,
            "not purged: {}",
            life.ferry.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = life
        .call("POST", &format!("/migrations/{id}:delete-migrated"), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("credentials_purged")),
        "{body}"
    );

    // The log (stderr and stdout of both runs) holds none of the passwords.
    let log = life.ferry.log();
    if trace {
        assert!(log.contains("TRACE"), "the log is not at TRACE");
    }
    for password in [
        SRC_PW,
        DST_PW,
        "not-the-password",
        ferry_tests::app::ADMIN_PASSWORD,
    ] {
        for form in password_forms(password) {
            assert!(
                !log.contains(&form),
                "{password:?} is in the log as {form:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_cancelled_pass_stops_within_two_seconds_and_a_retry_finishes_it_without_doubles() {
    let mailbox = vec![("INBOX", messages(0, 1500, 3000))];
    // A lease of 30 s: its heartbeat (every 10 s) is not what stops the pass.
    let lease = [("FERRY_WORKERS__LEASE_SECONDS", "30".to_owned())];
    let mut life = Life::start(&mailbox, &lease).await;
    let _slow = life.slow_source(1_000_000).await;
    let id = life.start_now(DST_PW).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = life.get(id).await;
        assert!(
            m["status"] != "completed",
            "finished before the cancel: {m}"
        );
        if copied(&m) >= 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, m) = life
        .call(
            "POST",
            &format!("/migrations/{id}:cancel?reason=customer%20asked"),
            None,
        )
        .await;
    assert_eq!(
        (status, m["status"].as_str()),
        (200, Some("cancelled")),
        "{m}"
    );
    // Within two seconds nothing more reaches the destination.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let count = || async {
        let mut d = imap::login(&life.dst, DST_USER, DST_PW).await.unwrap();
        let n = imap::read_folder(&mut d, "INBOX").await.unwrap().len();
        d.logout().await.ok();
        n
    };
    let partial = count().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count().await, partial, "copying went on after the stop");
    assert!(partial < 1500, "stopped before the end: {partial}");
    // The stopped pass says what it did copy: every copy the destination confirmed
    // (the batch cut off in flight may have landed too; the retry claims it, never
    // copying it twice).
    let m = life.get(id).await;
    assert_eq!(m["passes"][0]["status"], "cancelled", "{m}");
    let confirmed = m["passes"][0]["copied"].as_u64().unwrap_or(0);
    assert!(
        confirmed > 0 && confirmed <= partial as u64 && partial as u64 - confirmed <= 200,
        "{confirmed} confirmed, {partial} at the destination: {m}"
    );

    let (status, m) = life
        .call("POST", &format!("/migrations/{id}:retry"), None)
        .await;
    assert_eq!(status, 200, "{m}");
    let m = life
        .wait_status(id, "completed", Duration::from_secs(90))
        .await;
    assert_eq!(m["passes"].as_array().unwrap().len(), 2, "{m}");
    life.assert_mirrored(&[]).await;
}

#[tokio::test]
async fn a_pass_that_does_not_add_up_fails_with_its_numbers_and_a_retry_copies_the_rest() {
    let mailbox = vec![("INBOX", messages(0, 30, 1200))];
    let mut life = Life::start(&mailbox, &[]).await;
    // The old server's index answers the copy loop without two messages that SEARCH
    // and EXISTS still count.
    let strip = ferry_tests::strip::Strip::start(
        life.src.port,
        ferry_tests::strip::Rules {
            hide_uids: vec![4, 9],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    life.src_port = strip.port;
    let id = life.start_now(DST_PW).await;
    let m = life
        .wait_status(id, "failed", Duration::from_secs(60))
        .await;
    assert_eq!(m["error"]["code"], "incomplete", "{m:#}");
    let message = m["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("does not add up") && message.contains("UIDs 4, 9"),
        "{message}"
    );
    assert_eq!(m["passes"][0]["status"], "incomplete", "{m:#}");
    assert_eq!(m["passes"][0]["copied"], 28, "{m:#}");
    // Staff read the numbers; the customer, plain words.
    let subject = format!("Migration #{id} has stopped");
    let staff = life.email_to(&subject, STAFF).await;
    assert!(staff.text().contains("does not add up"), "{}", staff.text());
    let customer = life.email_to(&subject, DST_USER).await;
    let text = customer.text();
    assert!(
        text.contains("A pass could not account for every message.") && !text.contains("UIDs"),
        "{text}"
    );

    // The server answers whole again: Retry copies the two, nothing twice.
    strip.set(ferry_tests::strip::Rules::default());
    let (status, m) = life
        .call("POST", &format!("/migrations/{id}:retry"), None)
        .await;
    assert_eq!(status, 200, "{m}");
    let _ = life
        .wait_status(id, "completed", Duration::from_secs(60))
        .await;
    life.assert_mirrored(&[]).await;
}

/// A step stuck where no server deadline reaches it (here: a database row another
/// session holds): the heartbeat stops renewing the lease instead of waiting with it
/// (before, its own renewal waited on the row forever, and so did the work), and once
/// the row is free the pass is taken up again and finishes with every message once.
#[tokio::test]
async fn a_work_stuck_on_a_held_row_loses_its_lease_and_resumes_with_nothing_doubled() {
    use std::io::Write;
    let pg = ferry_tests::postgres::PgDatabase::create().unwrap();
    let mailbox = vec![("INBOX", messages(0, 4000, 3000))];
    let env = [
        ("DATABASE_URL", pg.url()),
        ("FERRY_TIMEOUTS__IO_SECONDS", "5".to_owned()),
        ("FERRY_TIMEOUTS__CONNECT_SECONDS", "5".to_owned()),
    ];
    let mut life = Life::start(&mailbox, &env).await;
    let _slow = life.slow_source(2_000_000).await;
    let id = life.start_now(DST_PW).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while copied(&life.get(id).await) < 500 {
        assert!(
            Instant::now() < deadline,
            "no progress:\n{}",
            life.ferry.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Another session holds the migration's row: the next checkpoint waits on it.
    let mut holder = std::process::Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", &pg.url()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut sql = holder.stdin.take().unwrap();
    writeln!(
        sql,
        "BEGIN; SELECT id FROM migrations WHERE id = {id} FOR UPDATE;"
    )
    .unwrap();
    sql.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The heartbeat stops renewing: its renewal waits on the same row and gives up at
    // its deadline, or the work's pulse stops first.
    let stopped = |log: &str| {
        log.contains("Lease ran out unrenewed") || log.contains("No sign of life from the work")
    };
    while !stopped(&life.ferry.log()) {
        assert!(
            Instant::now() < deadline,
            "the heartbeat kept renewing:\n{}",
            life.ferry.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    writeln!(sql, "ROLLBACK;").unwrap();
    drop(sql);
    holder.wait().unwrap();
    life.wait_status(id, "completed", Duration::from_secs(120))
        .await;
    let mut d = imap::login(&life.dst, DST_USER, DST_PW).await.unwrap();
    let got = imap::read_folder(&mut d, "INBOX").await.unwrap();
    assert_eq!(got.len(), 4000, "every message once");
    let mut bodies: Vec<&[u8]> = got.iter().map(|m| m.body.as_slice()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 4000, "nothing doubled");
}

#[tokio::test]
async fn a_retry_after_a_stop_while_waiting_for_the_mx_waits_for_it_again() {
    let mailbox = vec![("INBOX", messages(0, 40, 2000))];
    let life = Life::start(&mailbox, &[]).await;
    let (status, m) = life
        .call(
            "POST",
            "/migrations",
            Some(life.request(None, true, DST_PW)),
        )
        .await;
    assert_eq!(status, 201, "{m}");
    let id = m["id"].as_i64().unwrap();
    life.wait_status(id, "waiting_for_mx", Duration::from_secs(90))
        .await;

    let life = &life;
    let act = |actions: &'static [&'static str]| async move {
        for action in actions {
            let (status, m) = life
                .call("POST", &format!("/migrations/{id}:{action}"), None)
                .await;
            assert_eq!(status, 200, "{action}: {m}");
        }
    };
    // A synchronisation pass while it waits, stopped at once, then Retry.
    act(&["sync", "cancel", "retry"]).await;
    // Back to waiting for the MX, which still names the old provider: the post-MX
    // pass has not run, and does not.
    life.wait_status(id, "waiting_for_mx", Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let m = life.get(id).await;
    assert_eq!(m["status"], "waiting_for_mx", "{m}");
    let kinds: Vec<&str> = m["passes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"post_mx"), "{kinds:?}");

    // A stop while waiting, and Retry: waiting again too.
    act(&["cancel", "retry"]).await;
    life.wait_status(id, "waiting_for_mx", Duration::from_secs(60))
        .await;

    // Once the MX is said to be switched, the post-MX pass runs and completes it.
    act(&["mx-switched"]).await;
    let m = life
        .wait_status(id, "completed", Duration::from_secs(90))
        .await;
    let last = m["passes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "post_mx", "{m}");
    life.assert_mirrored(&[]).await;
}
