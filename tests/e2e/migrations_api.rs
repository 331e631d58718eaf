//! `/api/v1/migrations` against real Dovecot: test-connection and its failure codes,
//! a request with the notice rule, field errors, 409, cancel and delete, passwords
//! encrypted at rest and never in an answer or an email.

use chrono::Utc;
use ferry::domain::Scope;
use ferry_tests::app::{ADMIN_EMAIL, ADMIN_PASSWORD, Options, TestApp};
use ferry_tests::dovecot::{Dovecot, Layout};
use ferry_tests::smtp::SmtpSink;
use ferry_tests::{corpus, imap};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const SRC_PW: &str = "old-provider-pw-4821";
const DST_PW: &str = "new-provider-pw-9377";

async fn token(app: &TestApp, scopes: &[Scope]) -> String {
    app.token("integration", scopes).await
}

/// Calls the API; no answer may hold a password.
async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    ferry_tests::api::call(
        &app.client,
        &app.base,
        token,
        method,
        path,
        body,
        &[SRC_PW, DST_PW],
    )
    .await
}

async fn test_connection(app: &TestApp, token: &str, server: Value) -> (u16, Value) {
    call(
        app,
        "POST",
        "/migrations/test-connection",
        token,
        Some(server),
    )
    .await
}

fn server(d: &Dovecot, password: &str) -> Value {
    json!({"host": "127.0.0.1", "port": d.port, "security": "none", "username": "jane@old.example", "password": password})
}

/// The earliest window the rules allow, as the requester would type it.
fn earliest(app: &TestApp, tz: chrono_tz::Tz) -> String {
    app.services
        .window_rules()
        .unwrap()
        .earliest(Utc::now(), tz)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

#[tokio::test]
async fn test_connection_lists_folders_or_says_exactly_why_not() {
    let app = TestApp::spawn().await;
    let src = Dovecot::start(Layout::Slash).unwrap();
    src.add_user("jane@old.example", SRC_PW).unwrap();
    let mut s = imap::login(&src, "jane@old.example", SRC_PW).await.unwrap();
    imap::seed_mailbox(&src, &mut s, &corpus::mailbox())
        .await
        .unwrap();
    let t = token(&app, &[Scope::MigrationsWrite]).await;

    let (status, body) = test_connection(&app, &t, server(&src, SRC_PW)).await;
    assert_eq!(status, 200, "{body}");
    let inbox = body["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "INBOX")
        .cloned()
        .unwrap();
    assert_eq!(inbox["messages"], 14);
    assert!(inbox["bytes"].as_u64().unwrap() > 14 * 600);

    let (status, body) = test_connection(&app, &t, server(&src, "wrong")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("auth")),
        "{body}"
    );

    let mut unknown = server(&src, SRC_PW);
    unknown["host"] = json!("imap.no-such-host.invalid");
    let (status, body) = test_connection(&app, &t, unknown).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("dns")),
        "{body}"
    );

    let mut closed = server(&src, SRC_PW);
    closed["port"] = json!(ferry_tests::net::free_port());
    let (status, body) = test_connection(&app, &t, closed).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("tcp")),
        "{body}"
    );

    let reader = token(&app, &[Scope::MigrationsRead]).await;
    let (status, body) = test_connection(&app, &reader, server(&src, SRC_PW)).await;
    assert_eq!(
        (status, body["required_scope"].as_str()),
        (403, Some("migrations:write"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_request_is_checked_field_by_field_stored_encrypted_and_can_be_cancelled_and_deleted() {
    let app = TestApp::spawn().await;
    let src = Dovecot::start(Layout::Slash).unwrap();
    src.add_user("jane@old.example", SRC_PW).unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    dst.add_user("jane@new.example", DST_PW).unwrap();
    let t = token(&app, &[Scope::MigrationsWrite, Scope::MigrationsRead]).await;
    let paris = chrono_tz::Europe::Paris;
    let window = earliest(&app, paris);
    let request = json!({
        "source": server(&src, SRC_PW),
        "destination": {"host": "127.0.0.1", "port": dst.port, "security": "none", "username": "jane@new.example", "password": DST_PW},
        "window": {"start": window, "time_zone": "Europe/Paris"},
        "requester_email": "jane@new.example",
    });

    // Field errors, one per field, each saying what to do.
    let mut bad = request.clone();
    bad["source"]["host"] = json!("");
    bad["window"]["time_zone"] = json!("Mars/Olympus");
    bad["requester_email"] = json!("jane");
    bad["duplicates"] = json!("sometimes");
    let (status, body) = call(&app, "POST", "/migrations", &t, Some(bad)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    let fields = ferry_tests::api::fields(&body);
    for field in [
        "source.host",
        "window.time_zone",
        "requester_email",
        "duplicates",
    ] {
        assert!(fields.contains(&field), "{field} in {body}");
    }

    // Too soon: the answer names the rule and the earliest window.
    let mut soon = request.clone();
    soon["window"]["start"] = json!(
        (Utc::now() + chrono::Duration::hours(2))
            .with_timezone(&paris)
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    );
    let (status, body) = call(&app, "POST", "/migrations", &t, Some(soon)).await;
    assert_eq!(status, 422, "{body}");
    let message = body["fields"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("hours ahead") && message.contains(&window),
        "{message}"
    );

    // No window without the override permission.
    let mut now = request.clone();
    now.as_object_mut().unwrap().remove("window");
    let (status, body) = call(&app, "POST", "/migrations", &t, Some(now.clone())).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("migrations:override")
    );

    let (status, created) = call(&app, "POST", "/migrations", &t, Some(request.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["source"]["username"], "j***e@old.example");
    assert_eq!(created["requester_email"], "j***e@new.example");
    assert_eq!(created["mx_domain"], "new.example");
    let id = created["id"].as_i64().unwrap();

    // Encrypted at rest: the stored value is not the password, and decrypts to it.
    let (source_secret, dest_secret) = app
        .services
        .store()
        .migration_secrets(ferry::domain::MigrationId(id))
        .await
        .unwrap();
    let (source_secret, dest_secret) = (source_secret.unwrap(), dest_secret.unwrap());
    assert!(!source_secret.contains(SRC_PW) && !dest_secret.contains(DST_PW));
    // With the key in the data directory, as an operator restoring a backup would.
    let cipher =
        ferry::crypto::Cipher::load_or_create(&app.data_dir.path().join("secret.key")).unwrap();
    assert_eq!(
        cipher.decrypt(&source_secret).unwrap().expose_secret(),
        SRC_PW
    );

    // The requester is told, without a password.
    let outbox = app.outbox().await;
    let received = outbox
        .iter()
        .find(|m| m.template == "migration_received")
        .expect("a received email");
    assert_eq!(received.to, vec!["jane@new.example".to_owned()]);
    assert!(received.body_text.contains(&format!("#{id}")));
    assert!(!received.body_text.contains(SRC_PW) && !received.body_html.contains(DST_PW));

    // One active migration per destination mailbox.
    let (status, body) = call(&app, "POST", "/migrations", &t, Some(request.clone())).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("active_migration_exists")),
        "{body}"
    );

    // The workers validate it meanwhile; then it waits for its window.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, m) = call(&app, "GET", &format!("/migrations/{id}"), &t, None).await;
        if m["status"] == "scheduled" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not scheduled: {m}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, page) = call(
        &app,
        "GET",
        "/migrations?status=scheduled&search=jane",
        &t,
        None,
    )
    .await;
    assert_eq!((status, page["total"].as_u64()), (200, Some(1)), "{page}");
    let (status, page) = call(&app, "GET", "/migrations?status=completed", &t, None).await;
    assert_eq!((status, page["total"].as_u64()), (200, Some(0)));

    let (status, body) = call(
        &app,
        "POST",
        &format!("/migrations/{id}:cancel?reason=customer%20asked"),
        &t,
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    assert_eq!(body["poll_hint_seconds"], Value::Null);
    let (status, body) = call(&app, "POST", &format!("/migrations/{id}:cancel"), &t, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_cancellable")),
        "{body}"
    );

    // With the override and the mailbox free again, a request may start at once.
    let ops = token(
        &app,
        &[
            Scope::MigrationsWrite,
            Scope::MigrationsRead,
            Scope::MigrationsOverride,
        ],
    )
    .await;
    let (status, body) = call(&app, "POST", "/migrations", &ops, Some(now)).await;
    assert_eq!(status, 201, "{body}");

    let (status, _) = call(&app, "DELETE", &format!("/migrations/{id}"), &t, None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&app, "GET", &format!("/migrations/{id}"), &t, None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    let events = app.audit("migration.").await;
    // Newest first; what people did (the workers' own steps are the lifecycle tests').
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e.actor != "system")
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "migration.deleted",
            "migration.requested",
            "migration.cancelled",
            "migration.requested"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn servers_on_private_addresses_are_refused_unless_allowed() {
    let app = TestApp::spawn_with(Options {
        allow_private_targets: false,
        ..Default::default()
    })
    .await;
    let src = Dovecot::start(Layout::Slash).unwrap();
    let t = token(&app, &[Scope::MigrationsWrite]).await;
    let (status, body) = test_connection(&app, &t, server(&src, SRC_PW)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("private_target")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_scheduled_migration_moves_to_another_window_and_the_requester_is_told() {
    let smtp = SmtpSink::start().unwrap();
    let app = TestApp::spawn_with(Options {
        smtp_url: Some(smtp.url()),
        ..Default::default()
    })
    .await;
    let src = Dovecot::start(Layout::Slash).unwrap();
    src.add_user("jane@old.example", SRC_PW).unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    dst.add_user("jane@new.example", DST_PW).unwrap();
    let t = token(&app, &[Scope::MigrationsWrite, Scope::MigrationsRead]).await;
    let paris = chrono_tz::Europe::Paris;
    let first = earliest(&app, paris);
    let (status, created) = call(
        &app,
        "POST",
        "/migrations",
        &t,
        Some(json!({
            "source": server(&src, SRC_PW),
            "destination": {"host": "127.0.0.1", "port": dst.port, "security": "none", "username": "jane@new.example", "password": DST_PW},
            "window": {"start": first, "time_zone": "Europe/Paris"},
            "requester_email": "jane@new.example",
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let path = format!("/migrations/{id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while call(&app, "GET", &path, &t, None).await.1["status"] != "scheduled" {
        assert!(std::time::Instant::now() < deadline, "not scheduled");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // In the console: a window too soon is refused with the rule, and nothing moves.
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = app.page(&app.client, &path).await;
    assert!(page.contains("Move window"), "{page}");
    assert!(
        page.contains("Earliest allowed in Europe&#x2f;Paris:"),
        "{page}"
    );
    let soon = (Utc::now() + chrono::Duration::hours(3)).with_timezone(&paris);
    let (date, time) = (
        soon.format("%Y-%m-%d").to_string(),
        soon.format("%H:%M").to_string(),
    );
    let resp = app
        .post_form(
            &app.client,
            &path,
            &format!("{path}/reschedule"),
            &[
                ("window.date", &date),
                ("window.time", &time),
                ("window.time_zone", "Europe/Paris"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let page = app.page(&app.client, &path).await;
    assert!(page.contains("hours ahead"), "{page}");
    let (_, m) = call(&app, "GET", &path, &t, None).await;
    let first_utc = m["window_start"].clone();

    // A day later than the first window: moved, audited, and the requester is told.
    let later = chrono::NaiveDateTime::parse_from_str(&first, "%Y-%m-%dT%H:%M").unwrap()
        + chrono::Duration::days(1);
    let resp = app
        .post_form(
            &app.client,
            &path,
            &format!("{path}/reschedule"),
            &[
                ("window.date", &later.format("%Y-%m-%d").to_string()),
                ("window.time", &later.format("%H:%M").to_string()),
                ("window.time_zone", "Europe/Paris"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let page = app.page(&app.client, &path).await;
    assert!(page.contains("Moved to the new window"), "{page}");
    assert!(page.contains("migration.rescheduled"), "the audit trail");
    let (_, m) = call(&app, "GET", &path, &t, None).await;
    let later_utc = later
        .and_local_timezone(paris)
        .single()
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(m["status"], "scheduled");
    let moved_to: chrono::DateTime<Utc> = m["window_start"].as_str().unwrap().parse().unwrap();
    assert_eq!(moved_to, later_utc, "was {first_utc}");
    let runs_at: chrono::DateTime<Utc> = m["next_run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(runs_at, later_utc, "the work moves with the window");
    let email = smtp
        .wait_for(std::time::Duration::from_secs(20), |e| {
            e.subject() == format!("Migration #{id} has a new window")
        })
        .await
        .unwrap();
    assert_eq!(email.to(), vec!["jane@new.example".to_owned()]);
    let local = later.and_local_timezone(paris).single().unwrap();
    assert!(
        email
            .text()
            .contains(&local.format("%A %-d %B %Y at %H:%M").to_string()),
        "{}",
        email.text()
    );

    // Over the API: no window needs the override; with it, the migration starts now.
    let window = format!("{path}/window");
    let (status, body) = call(&app, "PUT", &window, &t, Some(json!({}))).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("migrations:override")
    );
    let ops = token(
        &app,
        &[
            Scope::MigrationsWrite,
            Scope::MigrationsRead,
            Scope::MigrationsOverride,
        ],
    )
    .await;
    let (status, body) = call(&app, "PUT", &window, &ops, Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["window_start"], Value::Null);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, m) = call(&app, "GET", &path, &t, None).await;
        if m["status"] == "waiting_for_mx" {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let row = app
                .services
                .store()
                .get_migration(ferry::domain::MigrationId(id))
                .await
                .unwrap()
                .unwrap();
            let trail: Vec<String> = app
                .audit("migration.")
                .await
                .into_iter()
                .map(|e| format!("{} {}", e.action, e.detail))
                .collect();
            panic!(
                "did not start: {m}\nlease {:?} until {:?}\n{trail:#?}",
                row.lease_owner, row.lease_until
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, body) = call(&app, "PUT", &window, &ops, Some(json!({}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("not_scheduled")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn stored_passwords_are_kept_for_their_retention_days_and_erased_after() {
    let app = TestApp::spawn().await;
    let (src, dst) = imap::seeded_pair(("jane@old.example", SRC_PW), ("jane@new.example", DST_PW))
        .await
        .unwrap();
    let t = token(&app, &[Scope::MigrationsWrite, Scope::MigrationsRead]).await;
    let request = json!({
        "source": server(&src, SRC_PW),
        "destination": {"host": "127.0.0.1", "port": dst.port, "security": "none", "username": "jane@new.example", "password": DST_PW},
        "window": {"start": earliest(&app, chrono_tz::UTC), "time_zone": "UTC"},
        "requester_email": "jane@new.example",
    });
    let (status, created) = call(&app, "POST", "/migrations", &t, Some(request)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let path = format!("/migrations/{id}");
    // Its credentials checked, it waits for its window; it is stopped there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while call(&app, "GET", &path, &t, None).await.1["status"] != "scheduled" {
        assert!(std::time::Instant::now() < deadline, "never scheduled");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, body) = call(&app, "POST", &format!("{path}:cancel"), &t, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );

    let retention = app.services.settings().retention.credential_days;
    assert_eq!(retention, 7, "the default this test counts on");
    let secrets = || {
        app.services
            .store()
            .migration_secrets(ferry::domain::MigrationId(id))
    };
    // Six days after the end: still there, for a retry.
    app.clock.advance(chrono::Duration::days(6));
    assert_eq!(app.services.purge_credentials().await.unwrap(), 0);
    let (source, dest) = secrets().await.unwrap();
    assert!(source.is_some() && dest.is_some());
    let (_, m) = call(&app, "GET", &path, &t, None).await;
    assert_eq!(m["credentials_purged_at"], Value::Null, "{m}");

    // Past the retention: erased, and the migration says when.
    app.clock.advance(chrono::Duration::days(2));
    assert_eq!(app.services.purge_credentials().await.unwrap(), 1);
    assert_eq!(secrets().await.unwrap(), (None, None));
    let (_, m) = call(&app, "GET", &path, &t, None).await;
    let purged_at: chrono::DateTime<Utc> = m["credentials_purged_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a time: {m}"));
    assert!(purged_at > Utc::now() + chrono::Duration::days(7), "{m}");
    // Once only.
    assert_eq!(app.services.purge_credentials().await.unwrap(), 0);
}
