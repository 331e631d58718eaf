//! The console through its HTTP surface: sign-in, sessions, CSRF, rate limits, staff
//! accounts and the welcome email that reaches a real SMTP server.

use std::time::Duration;

use ferry_tests::app::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, Options, TestApp, csrf_from};
use ferry_tests::smtp::SmtpSink;

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_first_admin_signs_in_sees_the_dashboard_and_signs_out() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/login");

    let resp = app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(resp.status(), 303, "{:?}", resp.text().await);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("ferry_session="))
        .expect("a session cookie")
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }
    let html = app.page(&app.client, "/").await;
    assert!(html.contains("<h1>Dashboard</h1>"));
    assert!(html.contains(ADMIN_EMAIL));
    assert!(
        html.contains("auth.login"),
        "the sign-in is in the recent activity"
    );

    let resp = app.post_form(&app.client, "/", "/logout", &[]).await;
    assert_eq!(resp.status(), 303);
    let resp = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(location(&resp), "/login", "signed out");
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_same_words_as_an_unknown_account() {
    let app = TestApp::spawn().await;
    let wrong = app
        .sign_in(&app.client, ADMIN_EMAIL, "not the password")
        .await;
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    let unknown = app
        .sign_in(
            &TestApp::new_client(),
            "nobody@ferry.test",
            "whatever it is",
        )
        .await;
    assert_eq!(unknown.status(), 401);
    let unknown = unknown.text().await.unwrap();
    assert!(wrong.contains("The email or password is not right."));
    assert!(unknown.contains("The email or password is not right."));
    assert!(
        wrong.contains(&format!("value=\"{ADMIN_EMAIL}\"")),
        "the email typed is kept"
    );
    let events = app.audit("auth.login_failed").await;
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn sign_in_is_refused_for_a_while_after_too_many_failures() {
    let app = TestApp::spawn_with(Options {
        login_max_failures: 3,
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            app.sign_in(&app.client, ADMIN_EMAIL, "guess guess guess")
                .await
                .status(),
            401
        );
    }
    let blocked = app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(blocked.status(), 429, "even the right password waits");
    assert!(
        blocked
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-ins")
    );
}

/// Signs in through the login form as a client at `address` behind the trusted proxy
/// (the test's loopback peer); the status and how long the answer took.
async fn sign_in_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> (u16, Duration) {
    let client = TestApp::new_client();
    let html = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_from(&html).unwrap();
    let started = std::time::Instant::now();
    let resp = client
        .post(app.url("/login"))
        .header("X-Forwarded-For", format!("10.9.8.7, {address}"))
        .form(&[("email", email), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), started.elapsed())
}

fn behind_a_proxy(s: &mut ferry::config::Settings) {
    s.console.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

#[tokio::test]
async fn a_guessed_account_is_slowed_not_locked_and_only_the_guessing_address_is_refused() {
    let app = TestApp::spawn_with(Options {
        login_max_failures: 3,
        tweak: Some(behind_a_proxy),
        ..Default::default()
    })
    .await;
    // The second instance shares the counts through the database.
    let beside = app.spawn_beside().await;
    let attacker = "203.0.113.7";
    for app in [&app, &beside, &app] {
        let (status, _) = sign_in_from(app, attacker, ADMIN_EMAIL, "guess guess guess").await;
        assert_eq!(status, 401);
    }
    // The guesser's address is refused, on either instance, even with the password.
    for app in [&app, &beside] {
        let (status, _) = sign_in_from(app, attacker, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(status, 429);
    }
    // The owner, from elsewhere, gets in: after a wait, not a lock-out.
    let (status, took) = sign_in_from(&beside, "198.51.100.20", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(status, 303);
    assert!(took >= Duration::from_secs(1), "no slow-down: {took:?}");
    // Signed in, the account's count starts again: no wait for the next one.
    let (status, took) = sign_in_from(&app, "198.51.100.21", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(status, 303);
    assert!(took < Duration::from_secs(1), "still slowed: {took:?}");
    beside.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_header_from_a_client_that_is_not_a_trusted_proxy_is_ignored() {
    let app = TestApp::spawn_with(Options {
        login_max_failures: 2,
        ..Default::default()
    })
    .await;
    // Each attempt claims another address; with no trusted proxy they all count
    // against the peer's own address.
    for n in 0..2 {
        let (status, _) = sign_in_from(
            &app,
            &format!("192.0.2.{n}"),
            ADMIN_EMAIL,
            "guess guess guess",
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, _) = sign_in_from(&app, "192.0.2.99", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn a_wrong_password_takes_as_long_for_an_unknown_account_as_for_a_real_one() {
    let app = TestApp::spawn_with(Options {
        login_max_failures: 1000,
        ..Default::default()
    })
    .await;
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        let (status, took) = sign_in_from(&app, "", ADMIN_EMAIL, "guess guess guess").await;
        assert_eq!(status, 401);
        known.push(took);
        let (status, took) = sign_in_from(&app, "", "nobody@ferry.test", "guess guess guess").await;
        assert_eq!(status, 401);
        unknown.push(took);
    }
    let (known, unknown) = (median(known), median(unknown));
    eprintln!("median wrong sign-in: existing account {known:?}, unknown {unknown:?}");
    // Both verify one argon2 hash (tens of milliseconds); a skipped hash was 3-8x faster.
    let ratio = known.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "existing {known:?} vs unknown {unknown:?}"
    );
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    // No CSRF cookie/token pair: the login form refuses.
    let resp = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    assert_eq!(
        app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD)
            .await
            .status(),
        303
    );
    let resp = app
        .client
        .post(app.url("/users"))
        .form(&[
            ("name", "Eve"),
            ("email", "eve@ferry.test"),
            ("role", "admin"),
            ("password", "twelve chars!!"),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        app.services
            .store()
            .list_users()
            .await
            .unwrap()
            .iter()
            .all(|u| u.email.as_str() != "eve@ferry.test")
    );
}

#[tokio::test]
async fn an_admin_adds_staff_who_get_a_welcome_email_without_their_password() {
    let smtp = SmtpSink::start().unwrap();
    let app = TestApp::spawn_with(Options {
        smtp_url: Some(smtp.url()),
        ..Default::default()
    })
    .await;
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // A bad form: each error beside its field, and what was typed kept.
    let resp = app
        .post_form(
            &app.client,
            "/users",
            "/users",
            &[
                ("name", ""),
                ("email", "sam.example.com"),
                ("role", "staff"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("id=\"name-error\">a name is required"),
        "{html}"
    );
    assert!(
        html.contains(
            "id=\"email-error\">&quot;sam.example.com&quot; is not an email address: it has no @"
        ),
        "{html}"
    );
    assert!(
        html.contains("id=\"password-error\">use at least 12 characters (this one has 5)"),
        "{html}"
    );
    assert!(html.contains("value=\"sam.example.com\""));

    let password = "a long initial password";
    let resp = app
        .post_form(
            &app.client,
            "/users",
            "/users",
            &[
                ("name", "Sam Lee"),
                ("email", "sam@provider.test"),
                ("role", "staff"),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let html = app.page(&app.client, "/users").await;
    assert!(
        html.contains("Added sam@provider.test."),
        "the flash message shows once"
    );
    assert!(html.contains("Sam Lee"));

    let email = smtp
        .wait_for(Duration::from_secs(15), |m| {
            m.to().contains(&"sam@provider.test".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(email.subject(), "Your Ferry account is ready");
    assert!(
        email.text().contains(&format!("{}/login", app.base)),
        "{}",
        email.text()
    );
    assert!(email.html().contains("Hello Sam Lee,"));
    assert!(
        !String::from_utf8_lossy(&email.raw).contains(password),
        "the password is never emailed"
    );

    // The outbox shows it as sent.
    let html = app.page(&app.client, "/outbox").await;
    assert!(html.contains("Your Ferry account is ready"));
    assert!(html.contains("badge ok\">sent"), "{html}");

    // The new account signs in; staff cannot manage accounts.
    let sam = TestApp::new_client();
    assert_eq!(
        app.sign_in(&sam, "sam@provider.test", password)
            .await
            .status(),
        303
    );
    let resp = sam.get(app.url("/users")).send().await.unwrap();
    assert_eq!(resp.status(), 403);

    // Disabled: signed out at once and refused at the door.
    let sam_id = app
        .services
        .store()
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email.as_str() == "sam@provider.test")
        .unwrap()
        .id;
    let resp = app
        .post_form(
            &app.client,
            "/users",
            &format!("/users/{sam_id}/disable"),
            &[],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        location(&sam.get(app.url("/")).send().await.unwrap()),
        "/login"
    );
    assert_eq!(
        app.sign_in(&TestApp::new_client(), "sam@provider.test", password)
            .await
            .status(),
        401
    );

    let audit = app.page(&app.client, "/audit?action=user.").await;
    assert!(
        audit.contains("user.created") && audit.contains("user.disabled"),
        "{audit}"
    );
    app.stop().await;
}

#[tokio::test]
async fn without_smtp_notifications_wait_in_the_outbox_and_go_once_it_is_there() {
    let app = TestApp::spawn().await;
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let resp = app
        .post_form(
            &app.client,
            "/users",
            "/users",
            &[
                ("name", "Kim"),
                ("email", "kim@provider.test"),
                ("role", "staff"),
                ("password", "another long password"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let html = app.page(&app.client, "/outbox?status=pending").await;
    assert!(html.contains("Your Ferry account is ready"), "{html}");
    assert!(html.contains("No SMTP server is configured"));
    let dashboard = app.page(&app.client, "/").await;
    assert!(dashboard.contains("No SMTP server is configured"));
}

#[tokio::test]
async fn people_change_their_own_password_and_other_sessions_end() {
    let app = TestApp::spawn().await;
    let other = TestApp::new_client();
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app.sign_in(&other, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let resp = app
        .post_form(
            &app.client,
            "/account",
            "/account/password",
            &[("current", "wrong one"), ("new", "a brand new password")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("this is not your current password")
    );
    let resp = app
        .post_form(
            &app.client,
            "/account",
            "/account/password",
            &[("current", ADMIN_PASSWORD), ("new", "a brand new password")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        app.client.get(app.url("/")).send().await.unwrap().status(),
        200,
        "this session stays"
    );
    assert_eq!(
        location(&other.get(app.url("/")).send().await.unwrap()),
        "/login",
        "the other one ends"
    );
    assert_eq!(
        app.sign_in(&TestApp::new_client(), ADMIN_EMAIL, "a brand new password")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn pages_load_no_asset_from_elsewhere_and_fit_a_phone() {
    let app = TestApp::spawn().await;
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // Every page without a record of its own (the migration pages are rendered by the
    // console_migrations and browser tests): templates are strict, so a name a page's
    // context lacks would be a 500 here.
    for path in [
        "/",
        "/audit",
        "/users",
        "/outbox",
        "/account",
        "/migrations",
        "/migrations?status=failed&q=nobody",
        "/migrations/new",
        "/schedule",
        "/settings",
    ] {
        let html = app.page(&app.client, path).await;
        assert!(html.contains("name=\"viewport\""), "{path}");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path} links outside: {html}"
        );
        assert!(csrf_from(&html).is_some(), "{path} has the sign-out form");
    }
    let missing = app
        .client
        .get(app.url("/migrations/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let html = missing.text().await.unwrap();
    assert!(
        html.contains("name=\"viewport\"") && !html.contains("Something went wrong"),
        "the error page renders: {html}"
    );
    let css = app
        .client
        .get(app.url("/static/ferry.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(
        css.text()
            .await
            .unwrap()
            .contains("@media (max-width: 760px)")
    );
}

async fn settings_are_changed_in_the_console_and_in_force_at_once(backend: Backend) {
    let smtp = SmtpSink::start().unwrap();
    // Started without an SMTP server: the console gives it.
    let app = TestApp::spawn_with(Options {
        backend,
        ..Default::default()
    })
    .await;
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = app.page(&app.client, "/settings").await;
    assert!(page.contains(r#"value="imap.provider.example""#), "{page}");
    assert!(page.contains("not set: notifications wait in the outbox"));

    // Bad values: nothing is saved, each error is beside its field, the rest is kept.
    let resp = app
        .post_form(
            &app.client,
            "/settings",
            "/settings",
            &[
                ("capacity.max_concurrent", "7"),
                ("schedule.off_hours_start", "25:00"),
                (
                    "provider.mx_hosts",
                    "10 mx1.provider.test
mx2.provider.test",
                ),
            ],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Nothing was saved"));
    let error_of = |field: &str| {
        let marker = format!(r#"id="{field}-error" data-error-for="{field}">"#);
        let start = page.find(&marker).map(|i| i + marker.len())?;
        Some(page[start..start + page[start..].find('<')?].to_owned())
    };
    assert_eq!(
        error_of("schedule.off_hours_start").as_deref(),
        Some("Give a time as HH:MM, such as 20:00.")
    );
    assert_eq!(
        error_of("provider.mx_hosts").as_deref(),
        Some("Line 2: give a priority and a host, such as 10 mx1.provider.example.")
    );
    assert!(page.contains(
        r#"id="schedule.off_hours_start" name="schedule.off_hours_start" value="25:00""#
    ));
    assert!(
        page.contains(r#"name="capacity.max_concurrent" value="7""#),
        "typed values are kept"
    );
    assert_eq!(app.services.settings().capacity.max_concurrent, 4);

    let resp = app
        .post_form(
            &app.client,
            "/settings",
            "/settings",
            &[
                ("capacity.max_concurrent", "7"),
                ("schedule.notice_hours", "36"),
                ("provider.imap_host", "IMAP.Provider.Test"),
                (
                    "provider.mx_hosts",
                    "10 mx1.provider.test
20 mx2.provider.test",
                ),
                ("provider.mx_patterns", "*.provider.test"),
                ("smtp.url", &smtp.url()),
                ("smtp.staff_address", "desk@provider.test"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let s = app.services.settings();
    assert_eq!(s.capacity.max_concurrent, 7);
    assert_eq!(s.provider.imap_host, "imap.provider.test");
    assert_eq!(app.services.window_rules().unwrap().notice_hours, 36);
    assert!(app.services.dispatcher().is_configured());
    let page = app.page(&app.client, "/settings").await;
    assert!(page.contains("Saved and in force now: IMAP server, MX records customers set"));
    assert!(page.contains(&format!("changed by {ADMIN_EMAIL}")));
    assert!(
        page.contains(r#"(ferry.toml: <span class="file-value">imap.provider.example</span>)"#)
    );
    assert!(
        !page.contains(&smtp.url()),
        "the SMTP address may hold a password"
    );
    let new_form = app.page(&app.client, "/migrations/new").await;
    assert!(
        new_form.contains("at imap.provider.test"),
        "the destination default follows"
    );

    // The new SMTP server carries the next email, with no restart.
    app.post_form(&app.client, "/settings", "/settings/test-email", &[])
        .await;
    let email = smtp
        .wait_for(Duration::from_secs(20), |m| {
            m.subject() == "Ferry test email"
        })
        .await
        .unwrap();
    assert_eq!(email.to(), vec![ADMIN_EMAIL.to_owned()]);
    assert!(email.text().contains("SMTP settings work"));

    // Audited, with the secret left out; stored encrypted.
    let events = app.audit("settings.changed").await;
    assert_eq!(events.len(), 1);
    let detail = events[0].detail.to_string();
    assert!(
        detail.contains(r#""capacity.max_concurrent":{"from":"4","to":"7"}"#),
        "{detail}"
    );
    assert!(
        detail.contains(r#""smtp.url":{"changed":true,"set":true}"#),
        "{detail}"
    );
    let stored = app.services.store().list_settings().await.unwrap();
    let url_row = stored.iter().find(|r| r.key == "smtp.url").unwrap();
    assert!(!url_row.value.contains("127.0.0.1"), "encrypted at rest");

    // Another process on the same database sees the same settings, and its change
    // reaches this one at its next reload.
    let mut other = ferry::config::Settings {
        data_dir: app.data_dir.path().to_path_buf(),
        database_url: Some(app.database_url.clone()),
        ..Default::default()
    };
    other.admin.email = ADMIN_EMAIL.into();
    let other = ferry::app::open(other).await.unwrap();
    assert_eq!(other.settings().capacity.max_concurrent, 7);
    assert!(other.dispatcher().is_configured());
    let actor = ferry::domain::Actor::System;
    other
        .reset_setting(&actor, "provider.imap_host", None)
        .await
        .unwrap();
    assert_eq!(other.settings().provider.imap_host, "imap.provider.example");
    app.services.reload_settings().await.unwrap();
    assert_eq!(
        app.services.settings().provider.imap_host,
        "imap.provider.example"
    );
    assert_eq!(app.services.settings().capacity.max_concurrent, 7);

    // Staff who are not admins cannot change them.
    app.services
        .create_user(
            &ferry::domain::Actor::Cli,
            ferry::service::NewStaff {
                email: "desk@provider.test",
                name: "Desk",
                role: ferry::domain::Role::Staff,
                password: secrecy::SecretString::from("desk-password-1234"),
            },
            None,
        )
        .await
        .unwrap();
    let desk = TestApp::new_client();
    app.sign_in(&desk, "desk@provider.test", "desk-password-1234")
        .await;
    let resp = app
        .post_form(&desk, "/", "/settings", &[("capacity.max_concurrent", "1")])
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(app.services.settings().capacity.max_concurrent, 7);

    // Removing the SMTP server puts notifications back in the outbox.
    let resp = app
        .post_form(
            &app.client,
            "/settings",
            "/settings",
            &[("smtp.url", ""), ("smtp.url.clear", "1")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert!(!app.services.dispatcher().is_configured());
    app.stop().await;
}

#[tokio::test]
async fn settings_are_changed_in_the_console_on_sqlite() {
    settings_are_changed_in_the_console_and_in_force_at_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn settings_are_changed_in_the_console_on_postgres() {
    settings_are_changed_in_the_console_and_in_force_at_once(Backend::Postgres).await;
}
