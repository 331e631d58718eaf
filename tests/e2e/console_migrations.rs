//! A migration's life from the console's HTTP surface, against real Dovecot: the form
//! with its Authenticate endpoint and errors beside fields, the list, the migration
//! page and its live state, the synchronise and delete buttons. No password is ever
//! in a page.

use std::time::{Duration, Instant};

use ferry_tests::app::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, csrf_from};
use ferry_tests::imap;
use serde_json::Value;

const SRC_PW: &str = "console-old-pw-2231";
const DST_PW: &str = "console-new-pw-7719";

async fn live(app: &TestApp, id: i64) -> Value {
    let resp = app
        .client
        .get(app.url(&format!("/migrations/{id}/live")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The id of the migration a form created, from the page it sends the browser to.
fn created_id(body: &Value) -> String {
    let location = body["location"].as_str().expect("a location");
    location.rsplit('/').next().unwrap_or_default().to_owned()
}

/// The new-migration form's fields for two plaintext test servers: source
/// (port, user, password), destination (port, user).
fn new_form(
    (src_port, src_user, src_pw): (&str, &str, &str),
    (dst_port, dst_user): (&str, &str),
    requester: &str,
    csrf: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("source.host", "127.0.0.1".into()),
        ("source.port", src_port.into()),
        ("source.security", "none".into()),
        ("source.username", src_user.into()),
        ("source.password", src_pw.into()),
        ("destination.host", "127.0.0.1".into()),
        ("destination.port", dst_port.into()),
        ("destination.security", "none".into()),
        ("destination.username", dst_user.into()),
        ("destination.password", DST_PW.into()),
        ("window.time_zone", "UTC".into()),
        ("requester_email", requester.into()),
        ("terms", "on".into()),
        ("csrf", csrf.into()),
    ]
}

#[tokio::test]
async fn staff_run_a_migration_from_the_console_pages() {
    let app = TestApp::spawn().await;
    let (src, dst) = imap::seeded_pair(("jane@old.example", SRC_PW), ("jane@new.example", DST_PW))
        .await
        .unwrap();
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // The provider's server on another port without TLS.
    let provider: std::collections::HashMap<String, String> = [
        ("provider.imap_port".to_owned(), "1143".to_owned()),
        ("provider.imap_security".to_owned(), "starttls".to_owned()),
    ]
    .into();
    app.services
        .change_settings(&ferry::domain::Actor::Cli, &provider, None)
        .await
        .unwrap();

    let page = app.page(&app.client, "/migrations/new").await;
    assert!(page.contains("Earliest allowed window"), "{page}");
    assert!(page.contains(r#"<button type="submit" id="start" disabled>"#));
    // The destination is the provider's server: its port and security pre-filled from
    // the settings, which staff without the admin role cannot read.
    assert!(
        page.contains(
            r#"id="destination.port" name="destination.port" type="number" value="1143""#
        ),
        "{page}"
    );
    let dest_security = page
        .split(r#"id="destination.security""#)
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .unwrap_or_default();
    assert!(
        dest_security.contains(r#"value="starttls" selected"#),
        "{dest_security}"
    );
    assert!(
        page.contains(r#"placeholder="imap.old-provider.example" autocomplete="off""#),
        "attributes rendered as attributes: {page}"
    );
    let csrf = csrf_from(&page).unwrap();
    let port = |p: u16| p.to_string();
    let (src_port, dst_port) = (port(src.port), port(dst.port));

    // Authenticate: folders with counts, or the reason.
    let test = |password: &'static str| {
        let (csrf, src_port) = (csrf.clone(), src_port.clone());
        let app = &app;
        async move {
            app.client
                .post(app.url("/migrations/test-connection"))
                .form(&[
                    ("host", "127.0.0.1"),
                    ("port", &src_port),
                    ("security", "none"),
                    ("username", "jane@old.example"),
                    ("password", password),
                    ("csrf", &csrf),
                ])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let ok = test(SRC_PW).await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(
        ok["folders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "INBOX" && f["messages"] == 14)
    );
    let bad = test("wrong").await;
    assert_eq!(
        (bad["ok"].as_bool(), bad["code"].as_str()),
        (Some(false), Some("auth")),
        "{bad}"
    );

    // Errors come back per field (the page's script shows them beside their field).
    let mut form = new_form(
        (&src_port, "jane@old.example", SRC_PW),
        (&dst_port, "jane@new.example"),
        "not an address",
        &csrf,
    );
    form.push(("mode", "full".into()));
    form.push(("duplicates", "skip".into()));
    let post = |form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(app.url("/migrations/new"))
                .header("accept", "application/json")
                .form(&form)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post(form.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"]["requester_email"].is_string(), "{body}");
    assert!(
        body["errors"]["window.start"].is_string(),
        "no window and no override: {body}"
    );
    // Without the script, the page itself shows the errors and keeps what was typed,
    // but never a password.
    let resp = app
        .client
        .post(app.url("/migrations/new"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(r#"value="jane@old.example""#),
        "typed values kept"
    );
    assert!(html.contains(r#"data-error-for="requester_email">"#));
    assert!(
        !html.contains(SRC_PW) && !html.contains(DST_PW),
        "a password in a page"
    );

    form.retain(|(k, _)| *k != "requester_email");
    form.push(("requester_email", "jane@new.example".into()));
    form.push(("start_now", "on".into()));
    let (status, body) = post(form).await;
    assert_eq!(status, 200, "{body}");
    let location = body["location"].as_str().unwrap().to_owned();
    let id: i64 = location.rsplit('/').next().unwrap().parse().unwrap();

    // The migration page follows it to the end without a reload of its own.
    let page = app.page(&app.client, &location).await;
    assert!(page.contains(&format!("Migration #{id}")));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = live(&app, id).await;
        if l["status"] == "completed" {
            assert_eq!(l["percent"], 100, "{l}");
            break;
        }
        assert!(Instant::now() < deadline, "not completed: {l}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = app.page(&app.client, &location).await;
    assert!(page.contains("Synchronise now") && page.contains("Delete migrated items"));
    assert!(!page.contains(SRC_PW) && !page.contains(DST_PW));

    // The list shows it with its progress.
    let list = app
        .page(&app.client, "/migrations?status=completed&q=jane")
        .await;
    assert!(
        list.contains(&format!("href=\"/migrations/{id}\"")),
        "{list}"
    );
    assert!(list.contains(r#"value="100""#));

    // Synchronise: a second pass.
    let resp = app
        .post_form(
            &app.client,
            &location,
            &format!("/migrations/{id}/sync"),
            &[],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let deadline = Instant::now() + Duration::from_secs(30);
    while live(&app, id).await["passes"] != 2 || live(&app, id).await["status"] != "completed" {
        assert!(Instant::now() < deadline, "no second pass");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = app.page(&app.client, &location).await;
    assert!(page.contains("catch-up copy"), "{page}");
    assert!(
        page.contains("migration · sync requested") && page.contains("notify customer: false"),
        "the audit trail, in words: {page}"
    );
    assert!(
        !page.contains(r#"{&quot;"#),
        "no JSON in the audit trail: {page}"
    );

    // Delete migrated items: the page says what the migration copied in all and what
    // was removed since (the pass rows keep their history).
    let numeric: i64 = location.rsplit('/').next().unwrap().parse().unwrap();
    let copied: u64 = app
        .services
        .migration_detail(ferry::domain::MigrationId(numeric))
        .await
        .unwrap()
        .passes
        .iter()
        .map(|p| p.copied)
        .sum();
    assert!(
        page.contains(&format!("{copied} messages copied over 2 passes")),
        "{page}"
    );
    let resp = app
        .post_form(
            &app.client,
            &location,
            &format!("{location}/delete-migrated"),
            &[("from_pass", "1")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = app.page(&app.client, &location).await;
        if page.contains(&format!(
            "Since removed from the destination (delete migrated items): {copied}."
        )) {
            break;
        }
        assert!(Instant::now() < deadline, "not removed: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A request for a later window shows on the schedule; one whose password is
    // refused shows first on the dashboard.
    let earliest = app
        .services
        .window_rules()
        .unwrap()
        .earliest(chrono::Utc::now(), chrono_tz::UTC)
        .unwrap();
    let later = |user: &str, password: &str, window: bool| {
        let mut f = new_form(
            (&src_port, "jane@old.example", password),
            (&dst_port, user),
            "jane@new.example",
            &csrf,
        );
        if window {
            f.push(("window.date", earliest.format("%Y-%m-%d").to_string()));
            f.push(("window.time", earliest.format("%H:%M").to_string()));
        } else {
            f.push(("start_now", "on".into()));
        }
        f
    };
    dst.add_user("bob@new.example", DST_PW).unwrap();
    let (status, body) = post(later("jane@new.example", SRC_PW, true)).await;
    assert_eq!(status, 200, "{body}");
    let scheduled_id = created_id(&body);
    let (status, body) = post(later("bob@new.example", "wrong", false)).await;
    assert_eq!(status, 200, "{body}");
    let failed_id = created_id(&body);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dashboard = app.page(&app.client, "/").await;
        let attention = dashboard
            .split("Running now")
            .next()
            .unwrap_or_default()
            .to_owned();
        if attention.contains(&format!("href=\"/migrations/{failed_id}\"")) {
            assert!(attention.contains("refused the login"), "{attention}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not on the dashboard: {dashboard}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The right password typed on the failed migration's page, then Retry: one
    // action stores it and retries with it.
    let failed_page = format!("/migrations/{failed_id}");
    let page = app.page(&app.client, &failed_page).await;
    assert!(page.contains("id=\"retry-button\""), "{page}");
    let resp = app
        .post_form(
            &app.client,
            &failed_page,
            &format!("{failed_page}/retry"),
            &[("source_password", SRC_PW), ("destination_password", "")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let page = app.page(&app.client, &failed_page).await;
    assert!(page.contains("New passwords stored"), "{page}");
    assert!(!page.contains(SRC_PW));
    let failed_id: i64 = failed_id.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while live(&app, failed_id).await["status"] != "completed" {
        assert!(Instant::now() < deadline, "the retry did not complete");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let schedule = app.page(&app.client, "/schedule").await;
        if schedule.contains(&format!("href=\"/migrations/{scheduled_id}\"")) {
            assert!(schedule.contains("jane@new.example (pre_mx)"), "{schedule}");
            break;
        }
        assert!(Instant::now() < deadline, "not on the schedule: {schedule}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Delete the record (confirmed in the page), then it is gone.
    let resp = app
        .post_form(
            &app.client,
            &location,
            &format!("/migrations/{id}/delete"),
            &[],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let resp = app.client.get(app.url(&location)).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

/// The link in the customer's emails: their migration's page, without an account, with
/// the MX records to set and a button to say they are set; a stop is emailed to them
/// with its reason; a wrong link is a plain "no such migration".
#[tokio::test]
async fn the_customer_follows_the_migration_on_its_page_and_says_the_mx_is_changed() {
    let app = TestApp::spawn().await;
    let (src, dst) = imap::seeded_pair(("ann@old.example", SRC_PW), ("ann@new.example", DST_PW))
        .await
        .unwrap();
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = app.page(&app.client, "/migrations/new").await;
    let csrf = csrf_from(&page).unwrap();
    let mut form = new_form(
        (&src.port.to_string(), "ann@old.example", SRC_PW),
        (&dst.port.to_string(), "ann@new.example"),
        "ann@new.example",
        &csrf,
    );
    // Two passes; the MX of new.example never points here in a test.
    form.push(("two_pass", "on".into()));
    form.push(("start_now", "on".into()));
    // A date left in the (disabled) window fields does not refuse the override.
    form.push(("window.date", "2020-01-01".into()));
    form.push(("window.time", "03:00".into()));
    let resp = app
        .client
        .post(app.url("/migrations/new"))
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id: i64 = created_id(&resp.json().await.unwrap()).parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while live(&app, id).await["status"] != "waiting_for_mx" {
        assert!(Instant::now() < deadline, "the first pass did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The customer's email links to their page, never to the console.
    let outbox = app.outbox().await;
    let customer = outbox
        .iter()
        .find(|m| m.subject.contains("change the MX records") && m.to == ["ann@new.example"])
        .unwrap_or_else(|| panic!("no MX email to the customer: {outbox:?}"));
    assert!(!customer.body_text.contains(&format!("/migrations/{id}")));
    assert!(
        customer.body_text.contains("Your mail provider"),
        "{}",
        customer.body_text
    );
    let path = app
        .customer_path("ann@new.example")
        .await
        .expect("a link to the customer's page");

    // Anyone with the link, no session: the page, the records, the button.
    let anonymous = TestApp::new_client();
    let page = app.page(&anonymous, &path).await;
    assert!(page.contains("Change your MX records now"), "{page}");
    assert!(page.contains("mx1.provider.example"), "{page}");
    assert!(page.contains("I have changed my MX records"), "{page}");
    assert!(!page.contains(SRC_PW) && !page.contains(DST_PW));
    let resp = anonymous
        .post(app.url(&format!("{path}/mx-switched")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let back = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&path), "{back}");
    let page = app.page(&anonymous, &back).await;
    assert!(page.contains("Thank you: noted"), "{page}");
    assert!(!page.contains("I have changed my MX records"), "{page}");
    let m = app
        .services
        .migration_detail(ferry::domain::MigrationId(id))
        .await
        .unwrap()
        .migration;
    assert!(m.mx_switched_at.is_some());
    let events = app.audit("migration.mx_switched").await;
    assert!(events.iter().any(|e| e.actor == "customer"), "{events:?}");

    // A wrong or changed link finds nothing.
    let wrong = anonymous
        .get(app.url(&format!("{path}x")))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);

    // Stopped from the console with a reason: the customer is told, with the reason.
    let page_path = format!("/migrations/{id}");
    let resp = app
        .post_form(
            &app.client,
            &page_path,
            &format!("{page_path}/cancel"),
            &[
                ("reason", "you asked us to wait"),
                ("notify_customer", "on"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let outbox = app.outbox().await;
    let stopped = outbox
        .iter()
        .find(|m| m.subject == format!("Migration #{id} is stopped") && m.to == ["ann@new.example"])
        .unwrap_or_else(|| panic!("no stop email: {outbox:?}"));
    assert!(
        stopped.body_text.contains("you asked us to wait"),
        "{}",
        stopped.body_text
    );
    let page = app.page(&anonymous, &path).await;
    assert!(page.contains("Our staff have stopped it"), "{page}");
    app.stop().await;
}
