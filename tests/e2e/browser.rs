//! The console in a real browser: Debian's chromium, headless, driven by playwright-core
//! (tests/browser/console.mjs) against Ferry and two Dovecot servers started here.
//! Screenshots of each page land in tests/output/browser/.

use std::process::Command;

use ferry::domain::{Actor, EmailAddress, MigrationRequest};
use ferry_tests::app::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, plain_side};
use ferry_tests::imap;

const SRC_PW: &str = "browser-old-pw-6620";
const DST_PW: &str = "browser-new-pw-1408";

#[tokio::test]
async fn staff_run_a_migration_in_the_browser() {
    let app = TestApp::spawn().await;
    let (src, dst) = imap::seeded_pair(("jane@old.example", SRC_PW), ("jane@new.example", DST_PW))
        .await
        .unwrap();

    // A second mailbox, requested for the earliest window in Paris, for the page to
    // move a day later.
    dst.add_user("bob@new.example", DST_PW).unwrap();
    let paris = chrono_tz::Europe::Paris;
    let first = app
        .services
        .window_rules()
        .unwrap()
        .earliest(chrono::Utc::now(), paris)
        .unwrap()
        .naive_local();
    let scheduled = app
        .services
        .request_migration(
            &Actor::Cli,
            false,
            MigrationRequest {
                source: plain_side(src.port, "jane@old.example", SRC_PW),
                destination: plain_side(dst.port, "bob@new.example", DST_PW),
                window_start: Some(Ok(first)),
                time_zone: Some(Ok(chrono_tz::Europe::Paris)),
                requester_email: Some(EmailAddress::parse("requester_email", "bob@new.example")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let moved = first + chrono::Duration::days(1);
    // A third whose source password is wrong: it fails at its check, for Retry's form.
    dst.add_user("ann@new.example", DST_PW).unwrap();
    // A mailbox for the list the browser imports.
    dst.add_user("lee@new.example", DST_PW).unwrap();
    let failed = app
        .services
        .request_migration(
            &Actor::Cli,
            false,
            MigrationRequest {
                source: plain_side(src.port, "jane@old.example", "not-the-password"),
                destination: plain_side(dst.port, "ann@new.example", DST_PW),
                window_start: Some(Ok(first)),
                time_zone: Some(Ok(paris)),
                requester_email: Some(EmailAddress::parse("requester_email", "ann@new.example")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // A ticket: a customer's email with a list of two mailboxes, one ready, one
    // without its password.
    dst.add_user("kim@new.example", DST_PW).unwrap();
    let window = format!("{} Europe/Paris", first.format("%Y-%m-%dT%H:%M"));
    let list = format!(
        "source email;source password;source IMAP server;destination mailbox;destination password;destination server;window;source security;destination security\r\n\
         jane@old.example;{SRC_PW};127.0.0.1:{};kim@new.example;{DST_PW};127.0.0.1:{};{window};none;none\r\n\
         jane@old.example;;127.0.0.1:{};zoe@new.example;{DST_PW};127.0.0.1:{};{window};none;none\r\n",
        src.port, dst.port, src.port, dst.port
    );
    let email = ferry_tests::mime::Email::new(
        "Kim <kim@customer.example>",
        "Two mailboxes to move",
        "list-1@customer.example",
        "Hello,\n\nhere is our list. Zoe's password follows.\n\nKim",
    )
    .file("mailboxes.csv", "text/csv", list.into_bytes());
    let ticket = app
        .services
        .receive_email(ferry::intake::support::read_email(
            email.bytes(),
            None,
            1 << 20,
        ))
        .await
        .unwrap()
        .ticket;

    // The customer's page of the scheduled one, from the link in its "received" email.
    let customer_path = app
        .customer_path("bob@new.example")
        .await
        .expect("a customer link in the received email");

    let root = ferry_tests::workspace_root();
    let shots = root.join("tests/output/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let script = root.join("tests/browser/console.mjs");
    let child = tokio::process::Command::from({
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .current_dir(root.join("tests/browser"))
            .env("FERRY_URL", &app.base)
            .env("ADMIN_EMAIL", ADMIN_EMAIL)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SRC_PORT", src.port.to_string())
            .env("SRC_USER", "jane@old.example")
            .env("SRC_PASSWORD", SRC_PW)
            .env("DST_PORT", dst.port.to_string())
            .env("DST_USER", "jane@new.example")
            .env("DST_PASSWORD", DST_PW)
            .env("SCHEDULED_URL", format!("/migrations/{}", scheduled.id))
            .env("CUSTOMER_PATH", &customer_path)
            .env("FAILED_URL", format!("/migrations/{}", failed.id))
            .env("MOVE_DATE", moved.format("%Y-%m-%d").to_string())
            .env("MOVE_TIME", moved.format("%H:%M").to_string())
            .env("TICKET_URL", format!("/tickets/{ticket}"))
            .env("SCREENSHOTS", &shots);
        cmd
    })
    .kill_on_drop(true)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("node runs (scripts/install-test-servers installs chromium and playwright-core)");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        child.wait_with_output(),
    )
    .await
    .expect("the browser test finishes within 5 minutes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    let m = app
        .services
        .migration_detail(scheduled.id)
        .await
        .unwrap()
        .migration;
    assert_eq!(
        m.window_start
            .map(|w| w.with_timezone(&paris).naive_local()),
        Some(moved),
        "moved a day later in the browser"
    );
    for page in [
        "02-dashboard",
        "03-new-migration-authenticated",
        "05-migration-completed",
        "06-migration-second-pass",
        "07-migrations",
        "14-migration-moved",
        "15-customer-page-phone",
    ] {
        let png = std::fs::read(shots.join(format!("{page}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{page} is a screenshot");
    }
    app.stop().await;
}

/// The customer's side in the browser: `/request`, staff's Approve, `/track` at phone
/// width with its bars and report (tests/browser/customer.mjs).
#[tokio::test]
async fn a_customer_requests_and_follows_a_project_in_the_browser() {
    let app = TestApp::spawn_with(ferry_tests::app::Options {
        tweak: Some(|s| {
            s.intake.destination_domains = vec!["new.example".into()];
            s.schedule.notice_hours = 0;
            s.schedule.weekend_notice_hours = 0;
            // Any time but the day's last minute: the settings changed below are
            // checked whole, and off-hours that start and end alike are refused.
            s.schedule.off_hours_start = "00:00".into();
            s.schedule.off_hours_end = "23:59".into();
            s.workers.poll_seconds = 1;
            s.mx.grace_seconds = 0;
        }),
        ..Default::default()
    })
    .await;
    let (src, dst) = imap::seeded_pair(("jane@old.example", SRC_PW), ("jane@new.example", DST_PW))
        .await
        .unwrap();
    // New mailboxes are at the provider's server: this test's Dovecot.
    let provider: std::collections::HashMap<String, String> = [
        ("provider.imap_host", "127.0.0.1".to_owned()),
        ("provider.imap_port", dst.port.to_string()),
        ("provider.imap_security", "none".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    app.services
        .change_settings(&Actor::Cli, &provider, None)
        .await
        .unwrap();
    // The copy's window: the next minute but one (the form takes minutes).
    let window = (chrono::Utc::now() + chrono::Duration::minutes(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let root = ferry_tests::workspace_root();
    let shots = root.join("tests/output/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let child = tokio::process::Command::from({
        let mut cmd = Command::new("node");
        cmd.arg(root.join("tests/browser/customer.mjs"))
            .current_dir(root.join("tests/browser"))
            .env("FERRY_URL", &app.base)
            .env("ADMIN_EMAIL", ADMIN_EMAIL)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SRC_PORT", src.port.to_string())
            .env("SRC_USER", "jane@old.example")
            .env("SRC_PASSWORD", SRC_PW)
            .env("DST_USER", "jane@new.example")
            .env("DST_PASSWORD", DST_PW)
            .env("WINDOW", &window)
            .env("SCREENSHOTS", &shots);
        cmd
    })
    .kill_on_drop(true)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("node runs (scripts/install-test-servers installs chromium and playwright-core)");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(400),
        child.wait_with_output(),
    )
    .await
    .expect("the browser test finishes within 400 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    // The destination holds the source's mail: the project really ran.
    let mut s = imap::login(&dst, "jane@new.example", DST_PW).await.unwrap();
    let got = imap::read_all(&mut s).await.unwrap();
    let mut s = imap::login(&src, "jane@old.example", SRC_PW).await.unwrap();
    let want = imap::read_all(&mut s).await.unwrap();
    let bodies = |all: &std::collections::BTreeMap<String, Vec<imap::StoredMessage>>| {
        let mut b: Vec<Vec<u8>> = all.values().flatten().map(|m| m.body.clone()).collect();
        b.sort();
        b
    };
    assert_eq!(bodies(&got), bodies(&want));
    for page in ["18-request-form", "19-track-project", "20-project-console"] {
        let png = std::fs::read(shots.join(format!("{page}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{page} is a screenshot");
    }
    app.stop().await;
}

/// A contacts file imported from the console (tests/browser/contacts.mjs): the upload's
/// progress bar, the destination authenticated on the provider's CardDAV server, the
/// migration's bars; then every card is in Radicale.
#[tokio::test]
async fn staff_import_a_contacts_file_in_the_browser() {
    let radicale = ferry_tests::dav::DavServer::start(
        ferry_tests::dav::Dialect::Radicale,
        &[("jane", "jane-secret")],
    )
    .unwrap();
    let app = TestApp::spawn().await;
    let settings =
        std::collections::HashMap::from([("provider.dav_url".to_owned(), radicale.url())]);
    app.services
        .change_settings(&Actor::Cli, &settings, None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vcf = dir.path().join("people.vcf");
    let cards: String = (1..=500)
        .map(|i| {
            format!(
                "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:person-{i}\r\nFN:Person {i}\r\n\
                 EMAIL:p{i}@example.com\r\nNOTE:{}\r\nEND:VCARD\r\n",
                "x".repeat(500)
            )
        })
        .collect();
    std::fs::write(&vcf, cards).unwrap();

    let root = ferry_tests::workspace_root();
    let shots = root.join("tests/output/browser");
    std::fs::create_dir_all(&shots).unwrap();
    let child = tokio::process::Command::from({
        let mut cmd = Command::new("node");
        cmd.arg(root.join("tests/browser/contacts.mjs"))
            .current_dir(root.join("tests/browser"))
            .env("FERRY_URL", &app.base)
            .env("ADMIN_EMAIL", ADMIN_EMAIL)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("VCF_PATH", &vcf)
            .env("DAV_USER", "jane")
            .env("DAV_PASSWORD", "jane-secret")
            .env("SCREENSHOTS", &shots);
        cmd
    })
    .kill_on_drop(true)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("node runs (scripts/install-test-servers installs chromium and playwright-core)");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        child.wait_with_output(),
    )
    .await
    .expect("the browser test finishes within 5 minutes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    let book = format!("{}imported-people-vcf/", radicale.addressbook_home("jane"));
    let got = radicale
        .read_collection(("jane", "jane-secret"), &book)
        .await
        .unwrap();
    assert_eq!(got.len(), 500, "every card arrived");
    app.stop().await;
}
