//! Projects through the bulk API, with `ferry serve` as its own process, real Dovecot
//! on both sides and aiosmtpd for the emails: a 25-row spreadsheet previewed (2 bad
//! rows named with their cells), made into a project, its 23 mailboxes copied never
//! more than 4 at once, paused mid-pass (nothing reaches the destination while
//! paused), resumed, every mailbox byte-exact with nothing doubled, and the completion
//! report emailed. Also: JSON rows, one Idempotency-Key making one project, 403
//! without the scope, whole-project actions' reports.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_tests::corpus;
use ferry_tests::cutter::Cutter;
use ferry_tests::dovecot::{Dovecot, Layout, Options};
use ferry_tests::imap::{self, SeedMessage};
use ferry_tests::serve::FerryProcess;
use ferry_tests::smtp::SmtpSink;
use serde_json::{Value, json};

const STAFF: &str = "support@provider.test";
const REQUESTER: &str = "it@acme.example";

fn pw(n: usize) -> String {
    format!("old-pw-{n:02}-x7")
}

fn dpw(n: usize) -> String {
    format!("new-pw-{n:02}-k3")
}

fn user(n: usize) -> String {
    format!("user{n:02}@acme.example")
}

/// A spreadsheet of 25 rows (the provider's long template's columns): rows 7 and 19
/// (file rows 8 and 20) are wrong, one without a password, one with a host that is
/// not one.
fn spreadsheet(src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let headers = [
        "Source server",
        "Source email",
        "Source password",
        "Source security",
        "Destination server",
        "Destination email",
        "Destination password",
        "Destination security",
    ];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for n in 1..=25usize {
        let row = n as u32;
        let src_host = if n == 19 {
            "not a host!".to_owned()
        } else {
            format!("127.0.0.1:{src_port}")
        };
        let src_pw = if n == 7 { String::new() } else { pw(n) };
        let cells = [
            src_host,
            user(n),
            src_pw,
            "none".into(),
            format!("127.0.0.1:{dst_port}"),
            user(n),
            dpw(n),
            "none".into(),
        ];
        for (c, v) in cells.iter().enumerate() {
            sheet.write_string(row, c as u16, v).unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

struct Setup {
    src: Dovecot,
    dst: Dovecot,
    smtp: SmtpSink,
    ferry: FerryProcess,
    token: String,
    client: reqwest::Client,
    _slow: Cutter,
    slow_port: u16,
}

impl Setup {
    async fn start(mailboxes: usize, messages: usize, extra: &[(&str, String)]) -> Self {
        ferry_tests::init_crypto();
        let src = Dovecot::start_with(Options {
            layout: Layout::Slash,
            fsync: false,
            ..Default::default()
        })
        .unwrap();
        let dst = Dovecot::start(Layout::Slash).unwrap();
        // Every account first: Dovecot reads its passwd-file again only when the
        // file's modification second changes, so users added after a login in the
        // same second would be unknown.
        for n in 1..=mailboxes {
            src.add_user(&user(n), &pw(n)).unwrap();
            dst.add_user(&user(n), &dpw(n)).unwrap();
        }
        for n in 1..=mailboxes {
            let mut s = imap::login(&src, &user(n), &pw(n)).await.unwrap();
            let seeded: Vec<SeedMessage> = (0..messages)
                .map(|i| SeedMessage {
                    body: corpus::message(n * 1000 + i, true, 12_000),
                    flags: if i % 3 == 0 {
                        vec!["\\Seen".into()]
                    } else {
                        vec![]
                    },
                    internal_date: None,
                })
                .collect();
            let folders = [
                ("INBOX", seeded[..messages / 2].to_vec()),
                ("Archive", seeded[messages / 2..].to_vec()),
            ];
            imap::seed_mailbox(&src, &mut s, &folders).await.unwrap();
            s.logout().await.unwrap();
        }
        // A slow link to the old server: each pass lasts long enough to be paused in.
        let slow = Cutter::slow(src.port, 150_000).await.unwrap();
        let smtp = SmtpSink::start().unwrap();
        let mut env: Vec<(&str, String)> = vec![
            ("FERRY_ALLOW_PRIVATE_TARGETS", "true".into()),
            ("FERRY_SMTP_URL", smtp.url()),
            ("FERRY_SMTP_FROM", "Ferry <ferry@provider.test>".into()),
            ("FERRY_SMTP__STAFF_ADDRESS", STAFF.into()),
            ("FERRY_SMTP__POLL_SECONDS", "1".into()),
            ("FERRY_WORKERS__POLL_SECONDS", "1".into()),
            ("FERRY_WORKERS__LEASE_SECONDS", "6".into()),
            ("FERRY_WORKERS__CONNECTIONS", "1".into()),
            // The project's own limit (4) is the one that binds: the whole capacity
            // and the per-server limit leave room for more.
            ("FERRY_CAPACITY__MAX_CONCURRENT", "12".into()),
            ("FERRY_CAPACITY__PER_SOURCE_HOST", "12".into()),
        ];
        env.extend(extra.iter().cloned());
        let ferry = FerryProcess::start(&env).unwrap();
        let token = ferry
            .token(&["projects:read", "projects:write", "migrations:override"])
            .unwrap();
        Self {
            slow_port: slow.port,
            _slow: slow,
            src,
            dst,
            smtp,
            ferry,
            token,
            client: reqwest::Client::new(),
        }
    }

    fn secrets(&self) -> Vec<String> {
        (1..=25).flat_map(|n| [pw(n), dpw(n)]).collect()
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let secrets = self.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        ferry_tests::api::call(
            &self.client,
            &self.ferry.base(),
            &self.token,
            method,
            path,
            body,
            &secrets,
        )
        .await
    }

    async fn upload(&self, path: &str, file: Vec<u8>, fields: &[(&str, &str)]) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(file)
                .file_name("mailboxes.xlsx")
                .mime_str("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
                .unwrap(),
        );
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let resp = self
            .client
            .post(format!("{}/api/v1{path}", self.ferry.base()))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        for secret in self.secrets() {
            assert!(!text.contains(&secret), "a password in an answer: {text}");
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn project(&self, id: &str) -> Value {
        let (status, p) = self.call("GET", &format!("/projects/{id}"), None).await;
        assert_eq!(status, 200, "{p}");
        p
    }

    async fn dest_count(&self, n: usize) -> usize {
        let mut s = imap::login(&self.dst, &user(n), &dpw(n)).await.unwrap();
        let all = imap::read_all(&mut s).await.unwrap();
        s.logout().await.ok();
        all.values().map(Vec::len).sum()
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
            .filter(|(_, b)| !b.is_empty())
            .collect()
    }
}

fn statuses(p: &Value) -> Vec<String> {
    p["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap().to_owned())
        .collect()
}

fn count(p: &Value, status: &str) -> usize {
    statuses(p).iter().filter(|s| *s == status).count()
}

#[tokio::test]
async fn a_spreadsheet_project_runs_four_at_a_time_pauses_resumes_and_reports() {
    let setup = Setup::start(25, 12, &[]).await;
    let file = spreadsheet(setup.slow_port, setup.dst.port);
    let fields = [
        ("name", "Acme GmbH"),
        ("requester_email", REQUESTER),
        ("time_zone", "Europe/Berlin"),
        ("concurrency", "4"),
        ("two_pass", "false"),
    ];

    // The preview names the two bad rows with their fields, and makes nothing.
    let (status, preview) = setup
        .upload("/projects?preview=true", file.clone(), &fields)
        .await;
    assert_eq!(status, 200, "{preview}");
    let rows = preview["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 25);
    let bad: Vec<(u64, Vec<String>)> = rows
        .iter()
        .filter(|r| r["status"] == "invalid")
        .map(|r| {
            let fields = r["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["field"].as_str().unwrap().to_owned())
                .collect();
            (r["row"].as_u64().unwrap(), fields)
        })
        .collect();
    assert_eq!(
        bad,
        vec![
            (8, vec!["source.password".to_owned()]),
            (20, vec!["source.host".to_owned()])
        ],
        "{preview:#}"
    );
    let (_, list) = setup.call("GET", "/projects", None).await;
    assert_eq!(list["total"], 0, "a preview makes nothing");

    // Made: 23 migrations, the password answered once (Ferry made it).
    let (status, made) = setup.upload("/projects", file, &fields).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("FY-") && id.len() == 12, "{id}");
    let password = made["password"]
        .as_str()
        .expect("a generated password")
        .to_owned();
    assert_eq!(made["migrations"].as_array().unwrap().len(), 23);
    assert_eq!(made["concurrency"], 4);
    let created = setup
        .smtp
        .wait_for(Duration::from_secs(30), |m| {
            m.subject().contains(&id) && m.subject().contains("Your migration project")
        })
        .await
        .unwrap();
    assert_eq!(created.to(), vec![REQUESTER.to_owned()]);
    assert!(
        !created.text().contains(&password),
        "the ID's email holds no password"
    );
    let secret_mail = setup
        .smtp
        .wait_for(Duration::from_secs(30), |m| {
            m.subject().contains("The password of your project")
        })
        .await
        .unwrap();
    assert!(secret_mail.text().contains(&password));
    assert_eq!(secret_mail.to(), vec![REQUESTER.to_owned()]);

    // Copying: never more than 4 at once. Paused as soon as some copy and a message
    // has arrived.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut most = 0;
    loop {
        let p = setup.project(&id).await;
        let running = count(&p, "processing");
        most = most.max(running);
        assert!(
            running <= 4,
            "{running} copying at once: {:?}",
            statuses(&p)
        );
        // Paused mid-copy: some messages are at a destination already (under load a
        // pass can be running for a while before its first APPEND).
        if running >= 3 {
            let mut copied = 0;
            for n in 1..=25 {
                copied += setup.dest_count(n).await;
            }
            if copied > 0 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "never 3 copying: {p:#}\n{}",
            setup.ferry.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, paused) = setup
        .call("POST", &format!("/projects/{id}:pause"), None)
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["status"], "paused");
    // Every mailbox in progress stops: none copying, none started.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = setup.project(&id).await;
        let s = statuses(&p);
        if !s
            .iter()
            .any(|s| s == "processing" || s == "validating" || s == "scheduled" || s == "pending")
        {
            assert!(count(&p, "paused") > 0, "{s:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the pause: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing reaches the destination while paused.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut before = Vec::new();
    for n in 1..=25 {
        before.push(setup.dest_count(n).await);
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut after = Vec::new();
    for n in 1..=25 {
        after.push(setup.dest_count(n).await);
    }
    assert_eq!(
        before, after,
        "a message was appended while the project was paused"
    );
    assert!(before.iter().sum::<usize>() > 0, "the pause came mid-copy");

    // Resumed: every mailbox completes, still never more than 4 at once.
    let (status, resumed) = setup
        .call("POST", &format!("/projects/{id}:resume"), None)
        .await;
    assert_eq!(status, 200, "{resumed}");
    let deadline = Instant::now() + Duration::from_secs(240);
    let p = loop {
        let p = setup.project(&id).await;
        let running = count(&p, "processing");
        most = most.max(running);
        assert!(
            running <= 4,
            "{running} copying at once: {:?}",
            statuses(&p)
        );
        assert_eq!(count(&p, "failed"), 0, "{p:#}\n{}", setup.ferry.log());
        if p["status"] == "finished" {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "not finished: {:?}\n{}",
            statuses(&p),
            setup.ferry.log()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    assert_eq!(count(&p, "completed"), 23);
    assert!(
        most >= 3,
        "the project used its concurrency: at most {most} at once"
    );

    // Byte for byte, nothing doubled; the bad rows' mailboxes untouched.
    for n in 1..=25 {
        let got = Setup::read(&setup.dst, &user(n), &dpw(n)).await;
        if n == 7 || n == 19 {
            assert!(got.is_empty(), "row {n} was never started: {got:?}");
            continue;
        }
        let want = Setup::read(&setup.src, &user(n), &pw(n)).await;
        assert_eq!(got, want, "mailbox {n}");
    }

    // The completion report, once, with every mailbox.
    let report = setup
        .smtp
        .wait_for(Duration::from_secs(30), |m| {
            m.subject().contains(&id)
                && m.subject().contains("is finished")
                && m.to().iter().any(|t| t == REQUESTER)
        })
        .await
        .unwrap();
    assert!(
        report.subject().contains("23 of 23"),
        "{}",
        report.subject()
    );
    let text = report.text();
    for n in (1..=25).filter(|n| *n != 7 && *n != 19) {
        assert!(
            text.contains(&format!("{}: complete, 12 messages copied", user(n))),
            "{text}"
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reports = setup
        .smtp
        .messages()
        .iter()
        .filter(|m| m.subject().contains("is finished") && m.to().iter().any(|t| t == REQUESTER))
        .count();
    assert_eq!(reports, 1, "one completion report");
    // No per-mailbox "received" email to the customer: the project's emails say it.
    assert!(
        !setup
            .smtp
            .messages()
            .iter()
            .any(|m| m.to().iter().any(|t| t == REQUESTER) && m.subject().contains("received")),
    );
}

#[tokio::test]
async fn json_rows_one_idempotency_key_one_project_and_scopes_hold() {
    let setup = Setup::start(3, 2, &[]).await;
    let row = |n: usize| {
        json!({
            "source_email": user(n), "source_password": pw(n),
            "source_host": format!("127.0.0.1:{}", setup.src.port), "source_security": "none",
            "destination_email": user(n), "destination_password": dpw(n),
            "destination_host": format!("127.0.0.1:{}", setup.dst.port), "destination_security": "none",
        })
    };
    let body = json!({
        "name": "Three boxes",
        "requester_email": REQUESTER,
        "time_zone": "UTC",
        "password": "chosen-by-the-requester",
        "options": {"two_pass": false, "duplicates": "skip"},
        "rows": [row(1), row(2), row(3)],
    });
    let post = |key: &'static str, body: Value| {
        let client = setup.client.clone();
        let url = format!("{}/api/v1/projects", setup.ferry.base());
        let token = setup.token.clone();
        async move {
            let resp = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    let (first, a) = post("panel-42", body.clone()).await;
    assert_eq!(first, 201, "{a}");
    let made: Value = serde_json::from_str(&a).unwrap();
    assert!(
        made["password"].is_null(),
        "a chosen password is never answered: {made}"
    );
    assert!(!a.contains("chosen-by-the-requester"));
    let (again, b) = post("panel-42", body.clone()).await;
    assert_eq!((again, &b), (201, &a), "the first answer again");
    let (_, list) = setup.call("GET", "/projects", None).await;
    assert_eq!(list["total"], 1, "one project for one key: {list}");
    assert_eq!(list["page"], 1);
    let mut other = body.clone();
    other["name"] = json!("Another");
    let (status, c) = post("panel-42", other).await;
    assert_eq!(status, 422, "{c}");
    assert!(c.contains("idempotency_key_reused"), "{c}");

    // A bad option and a row field that is not one: each named.
    let mut bad = body.clone();
    bad["options"]["duplicates"] = json!("sometimes");
    let (status, e) = setup.call("POST", "/projects", Some(bad)).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(
        ferry_tests::api::fields(&e),
        vec!["options.duplicates"],
        "{e}"
    );

    // Without the scope: 403.
    let reader = setup.ferry.token(&["projects:read"]).unwrap();
    let resp = setup
        .client
        .post(format!("{}/api/v1/projects", setup.ferry.base()))
        .bearer_auth(&reader)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let none = setup.ferry.token(&["migrations:read"]).unwrap();
    let resp = setup
        .client
        .get(format!("{}/api/v1/projects", setup.ferry.base()))
        .bearer_auth(&none)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // Finished, it can be deleted; an action that fits no mailbox says so per mailbox.
    let id = made["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while setup.project(&id).await["status"] != "finished" {
        assert!(Instant::now() < deadline, "{}", setup.ferry.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, r) = setup
        .call("POST", &format!("/projects/{id}:retry-failed"), None)
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["changed"].as_array().unwrap().len(), 0);
    assert_eq!(r["skipped"].as_array().unwrap().len(), 3);
    let (status, _) = setup.call("DELETE", &format!("/projects/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = setup.call("GET", &format!("/projects/{id}"), None).await;
    assert_eq!(status, 404);
}
