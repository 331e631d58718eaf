//! The support mailbox against real Dovecot (emails put there with APPEND, as a mail
//! server delivers them) and a real SMTP server (aiosmtpd): the provider's CSV
//! (semicolons, BOM, Windows-1252), an XLSX and an ODS built here, a request written in
//! the text, a bounce, an auto-reply and an email that is not MIME each become a
//! ticket; the acknowledgements go to people only, threaded; a reply to one joins its
//! ticket; staff's answer and the migrations made from the list land in the thread; a
//! `ferry serve` killed between storing an email and moving it loses and doubles none.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferry::domain::{Actor, Direction, Scope, TicketStatus};
use ferry::service::Services;
use ferry_tests::app::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, TestApp};
use ferry_tests::cyrus::Cyrus;
use ferry_tests::dovecot::{Dovecot, Layout};
use ferry_tests::imap::{SeedMessage, login, seed};
use ferry_tests::mime::{Email, ods};
use ferry_tests::serve::FerryProcess;
use ferry_tests::smtp::{Received, SmtpSink};
use ferry_tests::strip::{Rules, Strip};
use mail_parser::MimeHeaders;

const SUPPORT: &str = "support@provider.test";
const SUPPORT_PW: &str = "desk-pw-5521";
/// With an `é`: only a right decoding of the Windows-1252 CSV logs in (the migration
/// made from it is validated against Dovecot and scheduled).
const SRC_PW: &str = "vieux-mot-de-passé-1";
const DST_PW: &str = "new-pw-7781";

/// Puts emails in the support mailbox's INBOX, as delivery would.
async fn deliver(server: &Dovecot, emails: &[Vec<u8>]) {
    let mut session = login(server, SUPPORT, SUPPORT_PW).await.unwrap();
    let messages: Vec<SeedMessage> = emails
        .iter()
        .map(|body| SeedMessage {
            body: body.clone(),
            flags: Vec::new(),
            internal_date: None,
        })
        .collect();
    seed(&mut session, "INBOX", &messages).await.unwrap();
    let _ = session.logout().await;
}

/// Messages in a folder not marked deleted (0 for a folder not made yet), asked with
/// SEARCH: a FETCH of a folder Ferry is moving messages out of could race an expunge.
async fn undeleted(session: &mut ferry_tests::imap::ImapSession, folder: &str) -> usize {
    if session.select(folder).await.is_err() {
        return 0;
    }
    session
        .uid_search("UNDELETED")
        .await
        .map(|uids| uids.len())
        .unwrap_or(0)
}

/// (waiting in INBOX, in the processed folder).
async fn folders(server: &Dovecot) -> (usize, usize) {
    let mut session = login(server, SUPPORT, SUPPORT_PW).await.unwrap();
    let inbox = undeleted(&mut session, "INBOX").await;
    let done = undeleted(&mut session, &server.folder("Ferry/Processed")).await;
    let _ = session.logout().await;
    (inbox, done)
}

async fn wait_processed(server: &Dovecot, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (inbox, done) = folders(server).await;
        if inbox == 0 && done == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{inbox} emails still wait, {done} of {n} processed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn point_at(services: &Services, server: &Dovecot) {
    let form: HashMap<String, String> = [
        ("support.enabled", "on".to_owned()),
        ("support.host", "127.0.0.1".to_owned()),
        ("support.port", server.port.to_string()),
        ("support.security", "none".to_owned()),
        ("support.username", SUPPORT.to_owned()),
        ("support.password", SUPPORT_PW.to_owned()),
        ("support.poll_seconds", "5".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    services
        .change_settings(&Actor::Cli, &form, None)
        .await
        .unwrap();
}

/// The provider's template as Excel saves it: semicolons, a BOM, Windows-1252.
fn provider_csv(src: &str, dst: &str, window: &str) -> Vec<u8> {
    let text = format!(
        "Source Type;Source Server url;Source Login;Source Password;Destination Type;Destination Url;Destination Mail;Destination Password;Source admin mail;Destination Admin Mail;window;Source security;Destination security\r\n\
         IMAP;{src};jose@old.example;{SRC_PW};IMAP;{dst};jose@new.example;{DST_PW};;;{window} Europe/Paris;none;none\r\n\
         IMAP;{src};noemi@old.example;;IMAP;{dst};noemi@new.example;{DST_PW};;;{window} Europe/Paris;none;none\r\n"
    );
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    let mut out = vec![0xEF, 0xBB, 0xBF];
    // The BOM says UTF-8, the bytes are not: Ferry falls back to Windows-1252.
    out.extend_from_slice(&bytes);
    out
}

fn short_rows(user: &str, src: &str, dst: &str, window: &str) -> Vec<Vec<String>> {
    vec![
        [
            "source email",
            "source password",
            "source IMAP server",
            "destination mailbox",
            "destination password",
            "destination server",
            "window",
            "source security",
            "destination security",
        ]
        .map(str::to_owned)
        .to_vec(),
        vec![
            format!("{user}@old.example"),
            SRC_PW.to_owned(),
            src.to_owned(),
            format!("{user}@new.example"),
            DST_PW.to_owned(),
            dst.to_owned(),
            format!("{window} Europe/Paris"),
            "none".to_owned(),
            "none".to_owned(),
        ],
    ]
}

fn xlsx(rows: &[Vec<String>]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, cells) in rows.iter().enumerate() {
        for (c, cell) in cells.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, cell).unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

fn header(m: &Received, name: &str) -> Option<String> {
    m.parsed().header_raw(name).map(|v| v.trim().to_owned())
}

async fn tickets(app: &TestApp) -> Vec<ferry::domain::Ticket> {
    let (list, _) = app
        .services
        .store()
        .list_tickets(&ferry::store::TicketFilter {
            per_page: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    list
}

async fn ticket_by_subject(app: &TestApp, subject: &str) -> ferry::domain::Ticket {
    tickets(app)
        .await
        .into_iter()
        .find(|t| t.subject == subject)
        .unwrap_or_else(|| panic!("a ticket for {subject:?}"))
}

#[tokio::test]
async fn emails_to_the_support_address_become_tickets_answered_in_their_threads() {
    let smtp = SmtpSink::start().unwrap();
    let app = TestApp::spawn_with(Options {
        smtp_url: Some(smtp.url()),
        ..Default::default()
    })
    .await;
    let desk = Dovecot::start(Layout::Slash).unwrap();
    desk.add_user(SUPPORT, SUPPORT_PW).unwrap();
    let src = Dovecot::start(Layout::Slash).unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    for user in ["jose", "noemi", "xavier", "olga", "tom"] {
        src.add_user(&format!("{user}@old.example"), SRC_PW)
            .unwrap();
        dst.add_user(&format!("{user}@new.example"), DST_PW)
            .unwrap();
    }
    let (s, d) = (
        format!("127.0.0.1:{}", src.port),
        format!("127.0.0.1:{}", dst.port),
    );
    let window = app
        .services
        .window_rules()
        .unwrap()
        .earliest(app.services.now(), chrono_tz::Europe::Paris)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string();

    let emails = [
        Email::new(
            "José <jose@customer.example>",
            "Please move our mailboxes",
            "csv-1@customer.example",
            "Hello, the list is attached.",
        )
        .file("mailboxes.csv", "text/csv", provider_csv(&s, &d, &window)),
        Email::new(
            "xavier@customer.example",
            "Excel list",
            "xlsx-1@customer.example",
            "See the sheet.",
        )
        .file(
            "list.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            xlsx(&short_rows("xavier", &s, &d, &window)),
        ),
        Email::new(
            "olga@customer.example",
            "LibreOffice list",
            "ods-1@customer.example",
            "See the sheet.",
        )
        .file(
            "list.ods",
            "application/vnd.oasis.opendocument.spreadsheet",
            ods(&short_rows("olga", &s, &d, &window)),
        )
        .file(
            "contacts.vcf",
            "text/vcard",
            b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:B\r\nEND:VCARD\r\n".to_vec(),
        ),
        Email::new(
            "tom@customer.example",
            "Move my mail",
            "text-1@customer.example",
            &format!(
                "Hello,\n\nEmail: tom@old.example\nPassword: {SRC_PW}\nIMAP server: {s}\n\nThanks, Tom"
            ),
        ),
        Email::new(
            "MAILER-DAEMON@customer.example",
            "Undelivered Mail Returned to Sender",
            "bounce-1@customer.example",
            "It bounced.",
        )
        .header("Auto-Submitted: auto-replied"),
        Email::new(
            "away@customer.example",
            "Out of office",
            "ooo-1@customer.example",
            "I am away until Monday.",
        )
        .header("Auto-Submitted: auto-replied")
        .header("X-Autoreply: yes"),
    ];
    let mut raw: Vec<Vec<u8>> = emails.iter().map(Email::bytes).collect();
    // Not MIME at all, with no sender: still kept, with its reason.
    raw.push(b"\xff\xfe garbage without a header\r\n".to_vec());
    deliver(&desk, &raw).await;
    point_at(&app.services, &desk).await;
    wait_processed(&desk, raw.len()).await;

    let all = tickets(&app).await;
    assert_eq!(all.len(), raw.len(), "one ticket per email: {all:#?}");
    assert!(all.iter().all(|t| t.status == TicketStatus::New));

    // Acknowledgements: to the four people, none to the bounce, the auto-reply or the
    // email with no sender; each threaded under the customer's email.
    let acks = |smtp: &SmtpSink| {
        smtp.messages()
            .into_iter()
            .filter(|m| m.subject().starts_with("[#"))
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks(&smtp).len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acks = acks(&smtp);
    let mut to: Vec<String> = acks.iter().flat_map(Received::to).collect();
    to.sort();
    assert_eq!(
        to,
        [
            "jose@customer.example",
            "olga@customer.example",
            "tom@customer.example",
            "xavier@customer.example"
        ]
    );
    let csv_ticket = ticket_by_subject(&app, "Please move our mailboxes").await;
    let ack = acks
        .iter()
        .find(|m| m.to() == ["jose@customer.example"])
        .unwrap();
    assert!(
        ack.subject().starts_with(&format!(
            "[#{}] We received your request",
            csv_ticket.number()
        )),
        "{}",
        ack.subject()
    );
    assert_eq!(
        header(ack, "In-Reply-To").as_deref(),
        Some("<csv-1@customer.example>")
    );
    assert_eq!(
        header(ack, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(ack, "Reply-To").as_deref(),
        Some(SUPPORT),
        "answers go to the support mailbox"
    );
    let ack_text = ack.text();
    assert!(ack_text.contains("jose@old.example"), "{ack_text}");
    assert!(
        ack_text.contains("row 3 (noemi@old.example): not started"),
        "{ack_text}"
    );
    assert!(
        !ack_text.contains(SRC_PW),
        "no password in an email: {ack_text}"
    );

    // Each ticket's kept email, files and checked rows.
    let bounce = ticket_by_subject(&app, "Undelivered Mail Returned to Sender").await;
    let view = app.services.ticket_view(bounce.id).await.unwrap();
    assert_eq!(view.thread.len(), 1, "a bounce gets no answer");
    assert!(view.thread[0].0.automatic.is_some());
    let garbage = tickets(&app)
        .await
        .into_iter()
        .find(|t| t.requester.is_none())
        .expect("the email with no sender");
    let view = app.services.ticket_view(garbage.id).await.unwrap();
    assert_eq!(
        app.services
            .ticket_raw_email(garbage.id, view.thread[0].0.id)
            .await
            .unwrap()
            .as_deref(),
        Some(raw[6].as_slice()),
        "the bytes are kept as they came"
    );
    let ods_ticket = ticket_by_subject(&app, "LibreOffice list").await;
    let view = app.services.ticket_view(ods_ticket.id).await.unwrap();
    let vcf = view
        .attachments
        .iter()
        .find(|a| a.file_name == "contacts.vcf")
        .unwrap();
    assert_eq!((vcf.kind.as_str(), vcf.items), ("contacts", Some(2)));
    for subject in [
        "Excel list",
        "LibreOffice list",
        "Move my mail",
        "Please move our mailboxes",
    ] {
        let t = ticket_by_subject(&app, subject).await;
        let view = app.services.ticket_view(t.id).await.unwrap();
        let requests = ferry::intake::support::ticket_requests(&app.services, &Actor::Cli, &view)
            .await
            .unwrap();
        assert_eq!(requests.len(), 1, "{subject}");
        let ready: Vec<bool> = requests[0].reports.iter().map(|r| r.ready()).collect();
        let expected = if subject == "Please move our mailboxes" {
            vec![true, false]
        } else if subject == "Move my mail" {
            // The text names no destination and no window: the window is its problem.
            vec![false]
        } else {
            vec![true]
        };
        assert_eq!(ready, expected, "{subject}: {:?}", requests[0].reports);
    }

    // The customer answers the acknowledgement (no tag, only In-Reply-To): it joins.
    let ack_id = header(ack, "Message-ID").unwrap();
    let answer = Email::new(
        "jose@customer.example",
        "Re: We received your request",
        "csv-2@customer.example",
        "Noemi's password is coming.",
    )
    .header(&format!("In-Reply-To: {ack_id}"))
    .header(&format!("References: <csv-1@customer.example> {ack_id}"));
    deliver(&desk, &[answer.bytes()]).await;
    wait_processed(&desk, raw.len() + 1).await;
    assert_eq!(
        tickets(&app).await.len(),
        raw.len(),
        "the answer opened no ticket"
    );

    // The API: the list in the migrations' page shape, the ticket with its messages
    // and rows, a reply, an assignment.
    let token = app
        .token(
            "desk",
            &[
                Scope::TicketsRead,
                Scope::TicketsWrite,
                Scope::MigrationsWrite,
            ],
        )
        .await;
    let api = |path: &str| format!("{}/api/v1{path}", app.base);
    let http = reqwest::Client::new();
    let page: serde_json::Value = http
        .get(api("/tickets?status=new&search=jose%40customer&per_page=5"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["data"][0]["number"], csv_ticket.number());
    assert_eq!(page["data"][0]["requester"], "jose@customer.example");
    assert_eq!(
        (page["page"].as_u64(), page["per_page"].as_u64()),
        (Some(1), Some(5))
    );
    let detail: serde_json::Value = http
        .get(api(&format!("/tickets/{}", csv_ticket.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dirs: Vec<&str> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["in", "out", "in"], "{detail}");
    assert_eq!(detail["messages"][0]["from"], "jose@customer.example");
    assert_eq!(detail["requests"][0]["attachment"], "mailboxes.csv");
    let rows = detail["requests"][0]["rows"].as_array().unwrap();
    assert_eq!(
        (rows[0]["row"].as_u64(), rows[0]["status"].as_str()),
        (Some(2), Some("ready"))
    );
    assert_eq!(
        (rows[1]["row"].as_u64(), rows[1]["status"].as_str()),
        (Some(3), Some("invalid"))
    );
    assert_eq!(rows[1]["problems"][0]["field"], "source.password");
    assert!(
        !detail.to_string().contains(SRC_PW),
        "no password in an answer"
    );
    let reply = http
        .post(api(&format!("/tickets/{}/replies", csv_ticket.id)))
        .bearer_auth(&token)
        .json(&serde_json::json!({"text": "Thank you, José. Noemi's row needs a password."}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let patched: serde_json::Value = http
        .patch(api(&format!("/tickets/{}", csv_ticket.id)))
        .bearer_auth(&token)
        .json(&serde_json::json!({"assignee": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (patched["assignee"].as_i64(), patched["status"].as_str()),
        (Some(1), Some("waiting_on_customer"))
    );
    let bad = http
        .patch(api(&format!("/tickets/{}", csv_ticket.id)))
        .bearer_auth(&token)
        .json(&serde_json::json!({"status": "solved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let reader = app.token("reader", &[Scope::MigrationsRead]).await;
    let refused = http
        .get(api("/tickets"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "tickets need tickets:read");

    // The console: the list, the page with its preview, the files as they came.
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let list = app.page(&app.client, "/tickets").await;
    assert!(
        list.contains("Please move our mailboxes") && list.contains("Out of office"),
        "{list}"
    );
    let html = app
        .page(&app.client, &format!("/tickets/{}", csv_ticket.id))
        .await;
    assert!(html.contains("Create the 1 migration(s)"), "{html}");
    assert!(
        html.contains("Noemi&#x27;s row needs a password")
            || html.contains("Noemi's row needs a password")
    );
    assert!(!html.contains(SRC_PW), "the preview masks passwords");
    let csv_file = app
        .services
        .ticket_view(csv_ticket.id)
        .await
        .unwrap()
        .attachments[0]
        .id;
    let download = app
        .client
        .get(app.url(&format!("/tickets/{}/files/{csv_file}", csv_ticket.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.bytes().await.unwrap().as_ref(),
        provider_csv(&s, &d, &window).as_slice(),
        "the file as it was attached"
    );
    let dashboard = app.page(&app.client, "/").await;
    assert!(
        dashboard.contains(&format!("/tickets/{}", ods_ticket.id)),
        "new tickets need attention"
    );
    // A reply from the console with a report attached.
    let csrf = ferry_tests::app::csrf_from(&html).unwrap();
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("text", "The report you asked for is attached.")
        .text("status", "open")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"mailbox;messages\njose@old.example;1204\n".to_vec())
                .file_name("report.csv"),
        );
    let sent = app
        .client
        .post(app.url(&format!("/tickets/{}/reply", ods_ticket.id)))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 303);
    let with_file = smtp
        .wait_for(Duration::from_secs(30), |m| {
            m.text().contains("The report you asked for")
        })
        .await
        .unwrap();
    let parsed = with_file.parsed();
    let attached = parsed.attachments().next().expect("the report is attached");
    assert_eq!(attached.attachment_name(), Some("report.csv"));
    assert_eq!(
        attached.contents(),
        b"mailbox;messages\njose@old.example;1204\n"
    );
    assert_eq!(
        app.services.ticket(ods_ticket.id).await.unwrap().status,
        TicketStatus::Open
    );
    let admin = Actor::Cli;
    let reply = smtp
        .wait_for(Duration::from_secs(30), |m| {
            m.text().contains("Noemi's row needs")
        })
        .await
        .unwrap();
    assert!(
        reply
            .subject()
            .contains(&format!("[#{}]", csv_ticket.number()))
    );
    assert_eq!(
        header(&reply, "In-Reply-To").as_deref(),
        Some("<csv-2@customer.example>")
    );
    assert!(
        header(&reply, "References")
            .unwrap()
            .contains("<csv-1@customer.example>")
    );
    let reports = ferry::intake::support::make_migrations(
        &app.services,
        &admin,
        csv_ticket.id,
        Some(csv_file),
        None,
    )
    .await
    .unwrap();
    let made: Vec<_> = reports
        .iter()
        .filter_map(|r| r.migration().cloned())
        .collect();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].ticket, Some(csv_ticket.id));
    assert_eq!(made[0].source.username(), "jose@old.example");
    let again = ferry::intake::support::make_migrations(
        &app.services,
        &admin,
        csv_ticket.id,
        Some(csv_file),
        None,
    )
    .await;
    assert!(
        matches!(again, Err(ferry::service::ServiceError::Conflict { .. })),
        "{again:?}"
    );
    let rows_email = smtp
        .wait_for(Duration::from_secs(30), |m| {
            m.subject().contains("what we scheduled")
        })
        .await
        .unwrap();
    assert!(
        rows_email
            .text()
            .contains(&format!("migration #{} scheduled for", made[0].id))
    );
    assert!(
        rows_email
            .text()
            .contains("noemi@old.example): not started")
    );

    // The thread: in, Ferry's acknowledgement, in, staff's answer, the rows' report
    // and the project the ready rows became (its ID and password), threaded too.
    let view = app.services.ticket_view(csv_ticket.id).await.unwrap();
    let directions: Vec<Direction> = view.thread.iter().map(|(m, _)| m.direction).collect();
    assert_eq!(
        &directions[..4],
        [Direction::In, Direction::Out, Direction::In, Direction::Out]
    );
    assert_eq!(view.migrations.len(), 1);
    let project = app
        .services
        .store()
        .get_project(made[0].project.expect("the ticket's rows make a project"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(project.ticket, Some(csv_ticket.id));
    assert_eq!(project.requester_email, "jose@customer.example");
    let created = smtp
        .wait_for(Duration::from_secs(30), |m| {
            m.to() == ["jose@customer.example"]
                && m.subject().contains(project.code.as_str())
                && m.subject().contains("Your migration project")
        })
        .await
        .unwrap();
    assert!(
        created
            .subject()
            .contains(&format!("[#{}]", csv_ticket.number())),
        "{}",
        created.subject()
    );
    let in_thread = app
        .services
        .ticket_view(csv_ticket.id)
        .await
        .unwrap()
        .thread
        .iter()
        .filter(|(m, _)| m.subject.contains(project.code.as_str()))
        .count();
    assert_eq!(
        in_thread, 2,
        "the project's ID and its password, in the thread"
    );
    let page = app
        .page(&app.client, &format!("/migrations/{}", made[0].id))
        .await;
    assert!(
        page.contains(&format!("/tickets/{}", csv_ticket.id)),
        "the migration links its ticket"
    );
    // Staff answered last: the customer's turn.
    assert_eq!(view.ticket.status, TicketStatus::WaitingOnCustomer);
    app.stop().await;
}

#[tokio::test]
async fn a_ferry_killed_between_storing_and_moving_an_email_loses_and_doubles_none() {
    let desk = Dovecot::start(Layout::DotInboxPrefix).unwrap();
    desk.add_user(SUPPORT, SUPPORT_PW).unwrap();
    let mut ferry = FerryProcess::start(&[
        ("FERRY_SUPPORT__ENABLED", "true".into()),
        ("FERRY_SUPPORT__HOST", "127.0.0.1".into()),
        ("FERRY_SUPPORT__PORT", desk.port.to_string()),
        ("FERRY_SUPPORT__SECURITY", "none".into()),
        ("FERRY_SUPPORT__USERNAME", SUPPORT.into()),
        ("FERRY_SUPPORT__PASSWORD", SUPPORT_PW.into()),
        ("FERRY_SUPPORT__POLL_SECONDS", "5".into()),
        // The crash point: abort after the second email stored, before it moves.
        ("FERRY_TEST_ABORT_AFTER_TICKETS", "2".into()),
    ])
    .unwrap();
    let emails: Vec<Vec<u8>> = (1..=5)
        .map(|n| {
            Email::new(
                &format!("c{n}@customer.example"),
                &format!("Request {n}"),
                &format!("r{n}@customer.example"),
                "Please call me.",
            )
            .bytes()
        })
        .collect();
    deliver(&desk, &emails).await;
    let mut crashes = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if ferry.wait_exit(Duration::from_millis(200)) {
            crashes += 1;
            ferry.spawn().unwrap();
            continue;
        }
        if folders(&desk).await == (0, 5) {
            break;
        }
        if Instant::now() > deadline {
            let log = ferry.log();
            panic!(
                "stuck after {crashes} crashes:\n{}",
                &log[log.len().saturating_sub(4000)..]
            );
        }
    }
    assert!(crashes >= 2, "the crash point fired ({crashes} times)");
    ferry.kill();
    let store = ferry::store::Store::connect(&format!(
        "sqlite://{}/ferry.db?mode=rwc",
        ferry.data_dir.path().display()
    ))
    .await
    .unwrap();
    let (list, total) = store
        .list_tickets(&ferry::store::TicketFilter {
            per_page: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 5, "{list:#?}");
    let mut subjects: Vec<String> = list.iter().map(|t| t.subject.clone()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        (1..=5).map(|n| format!("Request {n}")).collect::<Vec<_>>()
    );
    for t in &list {
        let thread = store.ticket_thread(t.id).await.unwrap();
        let inbound = thread
            .iter()
            .filter(|(m, _)| m.direction == Direction::In)
            .count();
        assert_eq!(inbound, 1, "ticket {} holds its email once", t.id);
    }
}

/// Bad input each ends as a ticket with the email kept and a reason a person can read:
/// a spreadsheet that is not one, a header that matches no template, a row of 40
/// cells, a file over the size limit, a subject that is not UTF-8, a MIME structure
/// cut short. The dashboard says when the support mailbox cannot be read, and why.
/// Once a ticket has been closed longer than the credential retention, its emails'
/// and files' bytes are erased and the rest stays.
#[tokio::test]
async fn bad_emails_become_tickets_with_reasons_and_closed_ones_are_erased_in_time() {
    let app = TestApp::spawn_with(Options {
        tweak: Some(|s| s.limits.upload_bytes = 64 * 1024),
        ..Default::default()
    })
    .await;
    let desk = Dovecot::start(Layout::Slash).unwrap();
    desk.add_user(SUPPORT, SUPPORT_PW).unwrap();

    // A wrong password first: the dashboard says why nothing is read.
    let mut form: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("support.enabled", "on".to_owned()),
        ("support.host", "127.0.0.1".to_owned()),
        ("support.port", desk.port.to_string()),
        ("support.security", "none".to_owned()),
        ("support.username", SUPPORT.to_owned()),
        ("support.password", "not-the-password".to_owned()),
    ] {
        form.insert(k.to_owned(), v);
    }
    app.services
        .change_settings(&Actor::Cli, &form, None)
        .await
        .unwrap();
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dashboard = app.page(&app.client, "/").await;
        if dashboard.contains("The support mailbox cannot be read since") {
            assert!(
                dashboard.contains("refused the login") || dashboard.contains("uthentication"),
                "{dashboard}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never said why: {dashboard}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let cells40 = (1..=40)
        .map(|n| format!("c{n}"))
        .collect::<Vec<_>>()
        .join(";");
    let list_header = "source email;source password;source IMAP server";
    let emails: Vec<Vec<u8>> = vec![
        Email::new("a@customer.example", "Corrupt sheet", "bad-1@customer.example", "See attached.")
            .file("list.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK\x03\x04 this is not a zip".to_vec())
            .bytes(),
        Email::new("b@customer.example", "Unknown header", "bad-2@customer.example", "See attached.")
            .file("list.csv", "text/csv", b"name;phone\nAna;123\n".to_vec())
            .bytes(),
        Email::new("c@customer.example", "Forty cells", "bad-3@customer.example", "See attached.")
            .file("list.csv", "text/csv", format!("{list_header}\na@old.example;pw;imap.old.example\n{cells40}\n").into_bytes())
            .bytes(),
        Email::new("d@customer.example", "Too big", "bad-4@customer.example", "See attached.")
            .file("big.csv", "text/csv", format!("{list_header}\n{}", "x@old.example;pw;imap.old.example\n".repeat(3000)).into_bytes())
            .bytes(),
        // A Latin-1 subject with no encoded-word, and a multipart cut short.
        b"From: e@customer.example\r\nSubject: Caf\xe9 cr\xe8me\r\nMessage-ID: <bad-5@customer.example>\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nHello".to_vec(),
    ];
    deliver(&desk, &emails).await;
    form.insert("support.password".to_owned(), SUPPORT_PW.to_owned());
    app.services
        .change_settings(&Actor::Cli, &form, None)
        .await
        .unwrap();
    wait_processed(&desk, emails.len()).await;
    assert_eq!(tickets(&app).await.len(), emails.len());

    let reasons = [
        ("Corrupt sheet", "could not be opened"),
        ("Unknown header", "column"),
        ("Forty cells", "row"),
        ("Too big", "limits.upload_bytes"),
    ];
    for (subject, reason) in reasons {
        let t = ticket_by_subject(&app, subject).await;
        let view = app.services.ticket_view(t.id).await.unwrap();
        let requests = ferry::intake::support::ticket_requests(&app.services, &Actor::Cli, &view)
            .await
            .unwrap();
        let said = match &requests[0].list {
            Err(why) => why.clone(),
            Ok(_) => requests[0]
                .reports
                .iter()
                .flat_map(|r| {
                    r.problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field, p.message))
                })
                .collect::<Vec<_>>()
                .join("; "),
        };
        assert!(said.contains(reason), "{subject}: {said}");
        assert_eq!(
            view.thread[0].0.direction,
            Direction::In,
            "{subject}: the email is kept"
        );
    }
    let latin = tickets(&app)
        .await
        .into_iter()
        .find(|t| t.requester.as_deref() == Some("e@customer.example"))
        .unwrap();
    assert!(latin.subject.starts_with("Caf"), "{}", latin.subject);
    let view = app.services.ticket_view(latin.id).await.unwrap();
    assert_eq!(
        app.services
            .ticket_raw_email(latin.id, view.thread[0].0.id)
            .await
            .unwrap()
            .as_deref(),
        Some(emails[4].as_slice())
    );

    // Closed, then past the retention: the bytes go, the record stays.
    let big = ticket_by_subject(&app, "Too big").await;
    app.services
        .change_ticket(
            &Actor::Cli,
            big.id,
            ferry::service::TicketChange {
                status: Some(TicketStatus::Closed),
                assignee: None,
            },
        )
        .await
        .unwrap();
    app.services.purge_credentials().await.unwrap();
    let file = app.services.ticket_view(big.id).await.unwrap().attachments[0].id;
    assert!(
        app.services
            .ticket_file(big.id, file)
            .await
            .unwrap()
            .1
            .is_some(),
        "kept within the retention"
    );
    let days = i64::from(app.services.settings().retention.credential_days);
    app.clock.advance(chrono::Duration::days(days + 1));
    app.services.purge_credentials().await.unwrap();
    let (meta, bytes) = app.services.ticket_file(big.id, file).await.unwrap();
    assert!(
        bytes.is_none() && meta.purged_at.is_some(),
        "erased after the retention"
    );
    assert_eq!(meta.file_name, "big.csv", "the metadata stays");
    let view = app.services.ticket_view(big.id).await.unwrap();
    assert_eq!(
        app.services
            .ticket_raw_email(big.id, view.thread[0].0.id)
            .await
            .unwrap(),
        None
    );
    // An open ticket's files stay, whatever their age.
    let open = ticket_by_subject(&app, "Unknown header").await;
    let file = app.services.ticket_view(open.id).await.unwrap().attachments[0].id;
    assert!(
        app.services
            .ticket_file(open.id, file)
            .await
            .unwrap()
            .1
            .is_some()
    );

    // The customer answers the closed ticket (its tag in the subject): it reopens.
    // And a robot that writes again and again gets three acknowledgements an hour.
    let mut more = vec![
        Email::new(
            "d@customer.example",
            &format!("Re: [#{}] Too big", big.number()),
            "bad-6@customer.example",
            "Here it is in two files.",
        )
        .bytes(),
    ];
    for n in 1..=5 {
        more.push(
            Email::new(
                "robot@customer.example",
                &format!("Alert {n}"),
                &format!("robot-{n}@customer.example"),
                "Disk full",
            )
            .bytes(),
        );
    }
    deliver(&desk, &more).await;
    wait_processed(&desk, emails.len() + more.len()).await;
    let reopened = app.services.ticket(big.id).await.unwrap();
    assert_eq!(
        (reopened.status, reopened.awaiting_staff),
        (TicketStatus::Open, true)
    );
    let acks: Vec<_> = app
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.template == "ticket_received" && m.to == ["robot@customer.example"])
        .collect();
    assert_eq!(acks.len(), 3, "support.acknowledgements_per_hour");
    app.stop().await;
}

/// The reader against a second implementation and against a server that leaves out
/// what is optional: Cyrus (its `INBOX.`-prefixed folders), then a Dovecot behind a
/// relay that takes IDLE, MOVE and UIDPLUS away, so Ferry polls and files an email away
/// by COPY and `\Deleted` (no UID EXPUNGE to remove exactly it). Every email is a
/// ticket once, one delivered while Ferry waits too.
#[tokio::test]
async fn the_reader_works_on_cyrus_and_on_a_server_without_idle_move_or_uidplus() {
    let app = TestApp::spawn().await;
    let cyrus = Cyrus::start().unwrap();
    cyrus.add_user("support", SUPPORT_PW, &[]).await.unwrap();
    let mut session = cyrus.login("support", SUPPORT_PW).await.unwrap();
    let batch: Vec<SeedMessage> = (1..=3)
        .map(|n| SeedMessage {
            body: Email::new(
                &format!("cy{n}@customer.example"),
                &format!("Cyrus {n}"),
                &format!("cy{n}@customer.example"),
                "Hello",
            )
            .bytes(),
            flags: Vec::new(),
            internal_date: None,
        })
        .collect();
    seed(&mut session, "INBOX", &batch).await.unwrap();
    let mut form: HashMap<String, String> = [
        ("support.enabled", "on".to_owned()),
        ("support.host", "127.0.0.1".to_owned()),
        ("support.port", cyrus.port.to_string()),
        ("support.security", "none".to_owned()),
        ("support.username", "support".to_owned()),
        ("support.password", SUPPORT_PW.to_owned()),
        ("support.poll_seconds", "5".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    app.services
        .change_settings(&Actor::Cli, &form, None)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let inbox = undeleted(&mut session, "INBOX").await;
        let done = undeleted(&mut session, &cyrus.folder("Ferry/Processed")).await;
        if (inbox, done) == (0, 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Cyrus: {inbox} waiting, {done} processed\n{}",
            cyrus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = session.logout().await;
    assert_eq!(tickets(&app).await.len(), 3);

    // Dovecot offering neither IDLE, MOVE nor UIDPLUS.
    let desk = Dovecot::start(Layout::Slash).unwrap();
    desk.add_user(SUPPORT, SUPPORT_PW).unwrap();
    let relay = Strip::start(
        desk.port,
        Rules {
            capabilities: vec!["IDLE", "MOVE", "UIDPLUS"],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let emails: Vec<Vec<u8>> = (1..=3)
        .map(|n| {
            Email::new(
                &format!("dv{n}@customer.example"),
                &format!("Plain {n}"),
                &format!("dv{n}@customer.example"),
                "Hello",
            )
            .bytes()
        })
        .collect();
    deliver(&desk, &emails).await;
    form.insert("support.port".into(), relay.port.to_string());
    form.insert("support.username".into(), SUPPORT.to_owned());
    app.services
        .change_settings(&Actor::Cli, &form, None)
        .await
        .unwrap();
    let desk_ref = &desk;
    let filed = |n: usize| async move {
        let desk = desk_ref;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut session = login(desk, SUPPORT, SUPPORT_PW).await.unwrap();
            // Without UIDPLUS the originals are only marked deleted.
            let waiting = undeleted(&mut session, "INBOX").await;
            let done = undeleted(&mut session, "Ferry/Processed").await;
            let _ = session.logout().await;
            if (waiting, done) == (0, n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} waiting, {done} of {n} processed"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    filed(3).await;
    assert!(relay.changed() > 0, "the relay took the capabilities away");
    // One more while Ferry waits: found by polling.
    deliver(
        &desk,
        &[Email::new(
            "late@customer.example",
            "Late",
            "late@customer.example",
            "Hello",
        )
        .bytes()],
    )
    .await;
    filed(4).await;
    let all = tickets(&app).await;
    assert_eq!(all.len(), 7, "every email once: {all:#?}");
    app.stop().await;
}
