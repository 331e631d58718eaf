//! The customer's side, without a staff account, against real Dovecot: `/request`
//! makes a ticket and a project that waits for approval; `/track` signs in with the
//! project's ID and password (wrong passwords refused, then limited), shows that
//! project only (another project's session cannot read it, a forged cookie nothing),
//! pauses and resumes it, takes a new password for a refused mailbox, and hands out
//! the report as CSV.

use std::time::{Duration, Instant};

use ferry::domain::{Actor, MigrationStatus, ProjectStatus};
use ferry::service::ProjectAction;
use ferry_tests::app::{Options, TestApp};
use ferry_tests::dovecot::{Dovecot, Layout};

const SRC_PW: [&str; 2] = ["old-pw-ana-4471", "old-pw-bob-9902"];
const DST_PW: [&str; 2] = ["new-pw-ana-1187", "new-pw-bob-5530"];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of `name="…" value="…"` in a page.
fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    &html[at..at + html[at..].find(end).unwrap()]
}

/// The provider moves mail into acme.example, at any hour with no notice, its workers
/// looking for work every second.
fn acme_at_any_time(s: &mut ferry::config::Settings) {
    s.intake.destination_domains = vec!["acme.example".into()];
    s.schedule.notice_hours = 0;
    s.schedule.weekend_notice_hours = 0;
    s.schedule.off_hours_start = "00:00".into();
    s.schedule.off_hours_end = "00:00".into();
    s.workers.poll_seconds = 1;
}

#[tokio::test]
async fn a_customer_requests_a_project_then_follows_pauses_and_fixes_a_password() {
    let app = TestApp::spawn_with(Options {
        login_max_failures: 3,
        tweak: Some(acme_at_any_time),
        ..Default::default()
    })
    .await;
    let src = Dovecot::start(Layout::Slash).unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    for (i, who) in ["ana", "bob"].iter().enumerate() {
        src.add_user(&format!("{who}@old.example"), SRC_PW[i])
            .unwrap();
        dst.add_user(&format!("{who}@acme.example"), DST_PW[i])
            .unwrap();
    }
    let window = (chrono::Utc::now() + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let rows = |bob_pw: &str, bob_dest: &str| {
        format!(
            "source email,source password,source host,source security,destination email,destination password,destination host,destination security\n\
             ana@old.example,{},127.0.0.1:{},none,ana@acme.example,{},127.0.0.1:{},none\n\
             bob@old.example,{bob_pw},127.0.0.1:{},none,{bob_dest},{},127.0.0.1:{},none\n",
            SRC_PW[0], src.port, DST_PW[0], dst.port, src.port, DST_PW[1], dst.port
        )
    };
    let request = |rows: String, terms: bool| {
        let mut form = reqwest::multipart::Form::new()
            .text("name", "Acme moves")
            .text("requester_email", "it@acme.example")
            .text("time_zone", "UTC")
            .text("window", window.clone())
            .text("rows", rows);
        if terms {
            form = form.text("terms", "1");
        }
        form
    };
    let customer = client();

    // The terms unticked, then a mailbox outside the provider's domains: refused,
    // each with what to do; nothing made.
    let resp = customer
        .post(app.url("/request"))
        .multipart(request(rows(SRC_PW[1], "bob@acme.example"), false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("accept the terms"));
    let resp = customer
        .post(app.url("/request"))
        .multipart(request(rows(SRC_PW[1], "bob@elsewhere.example"), true))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "one row is ready: the project is made with it"
    );
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("1 row(s) with problems were left out"),
        "{page}"
    );
    let first_code = between(&page, "<code id=\"project-id\">", "<").to_owned();
    // Its mailbox is taken while it is active: stopped, to ask again.
    let first = app.services.project_by_code(&first_code).await.unwrap();
    app.services
        .project_action(&Actor::System, first.id, ProjectAction::Cancel)
        .await
        .unwrap();

    // The real request: bob's old password is wrong; it is a ticket and a project
    // waiting for approval, with its password shown once.
    let resp = customer
        .post(app.url("/request"))
        .multipart(request(rows("wrong-password-1", "bob@acme.example"), true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    for secret in SRC_PW.iter().chain(DST_PW.iter()) {
        assert!(!page.contains(secret), "a password on the page");
    }
    let code = between(&page, "<code id=\"project-id\">", "<").to_owned();
    let password = between(&page, "<code id=\"project-password\">", "<").to_owned();
    let ticket: i64 = between(&page, "number <strong>#", "<").parse().unwrap();
    let s = &app.services;
    let project = s.project_by_code(&code).await.unwrap();
    let view = s.project_view(project.id).await.unwrap();
    assert_eq!(view.status, ProjectStatus::AwaitingApproval);
    assert!(
        view.migrations
            .iter()
            .all(|(m, _)| m.status == MigrationStatus::Paused)
    );
    assert_eq!(project.ticket.map(|t| t.0), Some(ticket));
    let t = s
        .store()
        .get_ticket(ferry::domain::TicketId(ticket))
        .await
        .unwrap()
        .unwrap();
    assert!(t.subject.contains("Acme moves"), "{}", t.subject);

    // /track: a wrong password is refused; the right one opens the project.
    let resp = customer
        .post(app.url("/track"))
        .form(&[("project_id", code.as_str()), ("password", "not-it-at-all")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("do not match"));
    let typed = code.to_lowercase().replace('-', " ");
    let resp = customer
        .post(app.url("/track"))
        .form(&[
            ("project_id", typed.as_str()),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "the code as a person types it");
    let page = app.page(&customer, "/track/project").await;
    assert!(
        page.contains(&code)
            && page.contains("ana@old.example")
            && page.contains("bob@old.example")
    );
    assert!(page.contains("awaiting approval"), "{page}");

    // Another project's session sees that project only; a forged cookie nothing.
    let other = client();
    s.set_project_password(
        &Actor::System,
        first.id,
        secrecy::SecretString::from("first-project-pw"),
    )
    .await
    .unwrap();
    let resp = other
        .post(app.url("/track"))
        .form(&[
            ("project_id", first_code.as_str()),
            ("password", "first-project-pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let theirs = app.page(&other, "/track/project").await;
    assert!(
        theirs.contains(&first_code) && !theirs.contains(&code),
        "{theirs}"
    );
    assert!(
        !theirs.contains("bob@old.example"),
        "the other project's mailbox"
    );
    let forged = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = forged
        .get(app.url("/track/project"))
        .header("Cookie", "ferry_project=AAAAforgedAAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        303,
        "a cookie Ferry did not seal opens nothing"
    );

    // Staff approve; bob's refused password fails his mailbox, and the customer
    // gives the right one on their page.
    s.project_action(&Actor::System, project.id, ProjectAction::Approve)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let bob = loop {
        let view = s.project_view(project.id).await.unwrap();
        let bob = view
            .migrations
            .iter()
            .find(|(m, _)| m.source.username() == "bob@old.example")
            .unwrap()
            .0
            .clone();
        if bob.status == MigrationStatus::Failed {
            break bob;
        }
        assert!(
            Instant::now() < deadline,
            "bob never failed: {:?}",
            bob.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(bob.error_code, Some(ferry::domain::ErrorCode::Auth));
    let page = app.page(&customer, "/track/project").await;
    assert!(
        page.contains(&format!("name=\"migration\" value=\"{}\"", bob.id)),
        "a password form for bob"
    );
    let token = hidden(&page, "token");
    let resp = customer
        .post(app.url("/track/project/password"))
        .form(&[
            ("token", token.as_str()),
            ("migration", &bob.id.to_string()),
            ("source_password", SRC_PW[1]),
            ("destination_password", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let page = app.page(&customer, "/track/project").await;
    assert!(
        page.contains("starts again with the new password"),
        "{page}"
    );
    let bob_now = s.store().get_migration(bob.id).await.unwrap().unwrap();
    assert_ne!(bob_now.status, MigrationStatus::Failed);
    // Without the page's token, a form is refused.
    let resp = customer
        .post(app.url("/track/project/pause"))
        .form(&[("token", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Pause and resume from the page.
    let resp = customer
        .post(app.url("/track/project/pause"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let view = s.project_view(project.id).await.unwrap();
    assert_eq!(view.status, ProjectStatus::Paused);
    assert!(
        view.migrations
            .iter()
            .all(|(m, _)| !m.status.is_active() || m.status == MigrationStatus::Paused)
    );
    let resp = customer
        .post(app.url("/track/project/resume"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        s.project_view(project.id).await.unwrap().status,
        ProjectStatus::Running
    );

    // The report, as CSV, once both are checked again (a mailbox paused while its
    // accounts were being checked is checked again on resume).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = s.project_view(project.id).await.unwrap();
        if view
            .migrations
            .iter()
            .all(|(m, _)| m.status == MigrationStatus::Scheduled)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mailboxes were not scheduled again: {:?}",
            view.migrations
                .iter()
                .map(|(m, _)| m.status)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resp = customer
        .get(app.url("/track/project/report.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    assert!(csv.starts_with("mailbox,destination,status"), "{csv}");
    assert!(
        csv.contains("ana@old.example,ana@acme.example,scheduled")
            && csv.contains("bob@old.example,bob@acme.example,scheduled"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // Signed out, the page is gone; wrong passwords beyond the limit are refused.
    let resp = customer
        .post(app.url("/track/project/sign-out"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let resp = customer
        .get(app.url("/track/project"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let guesser = client();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let resp = guesser
            .post(app.url("/track"))
            .form(&[("project_id", code.as_str()), ("password", "guess-guess")])
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(
        statuses,
        vec![401, 401, 401, 429],
        "the address is refused after 3"
    );
    app.stop().await;
}

/// A project's own emails: a running one gets one digest a day (none in its first
/// day), a finished one its completion report once; staff get copies, never the
/// password's.
#[tokio::test]
async fn a_running_project_gets_a_daily_digest_and_a_finished_one_its_report_once() {
    let app = TestApp::spawn_with(Options {
        tweak: Some(|s| {
            s.smtp.staff_address = Some("desk@provider.test".into());
            s.schedule.notice_hours = 0;
            s.schedule.weekend_notice_hours = 0;
            s.schedule.off_hours_start = "00:00".into();
            s.schedule.off_hours_end = "00:00".into();
        }),
        ..Default::default()
    })
    .await;
    let s = &app.services;
    let server = Dovecot::start(Layout::Slash).unwrap();
    for n in 1..=2 {
        server
            .add_user(&format!("u{n}@old.example"), "pw-1")
            .unwrap();
        server
            .add_user(&format!("u{n}@acme.example"), "pw-2")
            .unwrap();
    }
    let row = |n: usize| ferry::domain::ListedRequest {
        row: n,
        request: ferry::domain::MigrationRequest {
            source: ferry_tests::app::plain_side(server.port, &format!("u{n}@old.example"), "pw-1"),
            destination: ferry_tests::app::plain_side(
                server.port,
                &format!("u{n}@acme.example"),
                "pw-2",
            ),
            ..Default::default()
        },
        problems: Vec::new(),
        also: Vec::new(),
    };
    // Its window is days away: its mailboxes wait, scheduled, while the clock moves.
    let window = (chrono::Utc::now() + chrono::Duration::days(4))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let made = s
        .create_project(
            &Actor::Cli,
            ferry::service::ProjectInput {
                name: "Digest".into(),
                requester_email: "it@acme.example".into(),
                window: Some(window),
                ..Default::default()
            },
            vec![row(1), row(2)],
            None,
            true,
        )
        .await
        .unwrap();
    s.project_action(&Actor::Cli, made.project.id, ProjectAction::Pause)
        .await
        .unwrap();
    let digests = |outbox: &[ferry::domain::OutboxMessage]| {
        outbox
            .iter()
            .filter(|m| m.template == "project_digest" && m.to == ["it@acme.example"])
            .count()
    };
    assert_eq!(
        s.project_reports().await.unwrap(),
        0,
        "nothing in its first day"
    );
    // A paused project gets no digest; running, one a day.
    app.clock.advance(chrono::Duration::hours(25));
    assert_eq!(s.project_reports().await.unwrap(), 0, "paused: no digest");
    s.project_action(&Actor::Cli, made.project.id, ProjectAction::Resume)
        .await
        .unwrap();
    assert_eq!(s.project_reports().await.unwrap(), 1);
    assert_eq!(s.project_reports().await.unwrap(), 0, "one a day");
    assert_eq!(digests(&app.outbox().await), 1);
    app.clock.advance(chrono::Duration::hours(25));
    assert_eq!(s.project_reports().await.unwrap(), 1);
    assert_eq!(digests(&app.outbox().await), 2);

    // Finished (here: cancelled): the report, once, to the requester and staff.
    s.project_action(&Actor::Cli, made.project.id, ProjectAction::Cancel)
        .await
        .unwrap();
    assert_eq!(s.project_reports().await.unwrap(), 1);
    assert_eq!(s.project_reports().await.unwrap(), 0);
    let outbox = app.outbox().await;
    let reports: Vec<_> = outbox
        .iter()
        .filter(|m| m.template == "project_completed")
        .collect();
    assert_eq!(reports.len(), 2, "the requester's and staff's copy");
    assert!(
        reports[0].body_text.contains("u1@old.example: stopped"),
        "{}",
        reports[0].body_text
    );
    // The password's email went to the requester only, and its text is erased once
    // sent (no SMTP here: it waits, so its text is still there until then).
    let secret: Vec<_> = outbox
        .iter()
        .filter(|m| m.template == "project_password")
        .collect();
    assert_eq!(secret.len(), 1);
    assert_eq!(secret[0].to, ["it@acme.example"]);
    app.stop().await;
}

/// Where the provider takes contacts and calendars (`provider.dav_url`), `/request`
/// offers them: the customer ticks both, and the approved project moves the
/// mailbox's mail, address book and calendar, each a migration the tracking page
/// names; a DAV address that is not one is refused under its field.
#[tokio::test]
async fn a_customer_asks_for_contacts_and_calendars_too() {
    use ferry_tests::dav::{DavServer, Dialect};
    let app = TestApp::spawn_with(Options {
        tweak: Some(|s| {
            acme_at_any_time(s);
            s.intake.auto_approve = true;
            // Settings changed through the API must be valid as a whole.
            s.schedule.off_hours_end = "23:59".into();
        }),
        ..Default::default()
    })
    .await;
    let page = app.page(&client(), "/request").await;
    assert!(
        !page.contains("name=\"contacts\""),
        "no DAV server, no contacts to offer"
    );
    let src = Dovecot::start(Layout::Slash).unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    src.add_user("ana@old.example", SRC_PW[0]).unwrap();
    dst.add_user("ana@acme.example", DST_PW[0]).unwrap();
    let old_dav = DavServer::start(Dialect::Xandikos, &[]).unwrap();
    let new_dav = DavServer::start(Dialect::Radicale, &[("ana@acme.example", DST_PW[0])]).unwrap();
    let login = ("ana@old.example", SRC_PW[0]);
    let book = old_dav
        .make_collection(login, "family", "Family", false)
        .await
        .unwrap();
    old_dav
        .put_item(
            login,
            &book,
            "gran.vcf",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:gran-1\r\nFN:Gran\r\nTEL:+44 20 7946 0000\r\nEND:VCARD\r\n",
        )
        .await
        .unwrap();
    let token = app
        .token("settings", &[ferry::domain::Scope::SettingsAdmin])
        .await;
    let (status, body) = ferry_tests::api::call(
        &app.client,
        &app.base,
        &token,
        "PATCH",
        "/settings",
        Some(serde_json::json!({
            "provider.dav_url": new_dav.url(),
            "provider.imap_host": "127.0.0.1",
            "provider.imap_port": dst.port.to_string(),
            "provider.imap_security": "none",
        })),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page = app.page(&client(), "/request").await;
    assert!(page.contains("name=\"contacts\""), "{page}");

    let window = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT03:00")
        .to_string();
    let form = |dav_url: &str| {
        reqwest::multipart::Form::new()
            .text("name", "Ana's move")
            .text("requester_email", "ana@acme.example")
            .text("time_zone", "UTC")
            .text("window", window.clone())
            .text("source_email", "ana@old.example")
            .text("source_password", SRC_PW[0])
            .text("source_host", format!("127.0.0.1:{}", src.port))
            .text("source_security", "none")
            .text("destination_email", "ana@acme.example")
            .text("destination_password", DST_PW[0])
            .text("contacts", "1")
            .text("calendars", "1")
            .text("dav_url", dav_url.to_owned())
            .text("terms", "1")
    };
    let customer = client();
    let resp = customer
        .post(app.url("/request"))
        .multipart(form("not a server!"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("id=\"dav_url-error\""), "{page}");
    let resp = customer
        .post(app.url("/request"))
        .multipart(form(&old_dav.url()))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let page = resp.text().await.unwrap();
    assert_eq!(status, 200, "{page}");
    let code = between(&page, "<code id=\"project-id\">", "<").to_owned();
    let s = &app.services;
    let project = s.project_by_code(&code).await.unwrap();
    assert!(project.options.mail && project.options.contacts && project.options.calendars);
    let view = s.project_view(project.id).await.unwrap();
    let mut kinds: Vec<&str> = view
        .migrations
        .iter()
        .map(|(m, _)| m.kind.as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["calendars", "contacts", "mail"]);

    // Started now rather than at the window: the address book arrives.
    let contacts = view
        .migrations
        .iter()
        .find(|(m, _)| m.kind.as_str() == "contacts")
        .unwrap()
        .0
        .id;
    let deadline = Instant::now() + Duration::from_secs(60);
    while s
        .store()
        .get_migration(contacts)
        .await
        .unwrap()
        .unwrap()
        .status
        != MigrationStatus::Scheduled
    {
        assert!(Instant::now() < deadline, "its logins are checked");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.reschedule_migration(&Actor::System, contacts, true, None, None)
        .await
        .unwrap();
    loop {
        let m = s.store().get_migration(contacts).await.unwrap().unwrap();
        if m.status == MigrationStatus::Completed {
            break;
        }
        assert!(
            Instant::now() < deadline && m.status != MigrationStatus::Failed,
            "{m:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cards = new_dav
        .read_collection(
            ("ana@acme.example", DST_PW[0]),
            &format!("{}family/", new_dav.home("ana@acme.example")),
        )
        .await
        .unwrap();
    assert_eq!(cards.len(), 1, "{cards:#?}");
    assert!(cards[0].contains("UID:gran-1"));
    app.stop().await;
}
