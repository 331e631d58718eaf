//! The migration list as a desk works it, against real Dovecot: an owner and the
//! customer's reference on a migration, internal notes, the filters, the CSV export,
//! actions on several selected migrations, and the links from a migration to its
//! emails and its audit entries.

use std::time::{Duration, Instant};

use ferry::domain::{Actor, EmailAddress, MigrationId, MigrationRequest};
use ferry_tests::app::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, plain_side};
use ferry_tests::imap;

const SRC_PW: &str = "desk-old-pw-5120";
const DST_PW: &str = "desk-new-pw-8841";

#[tokio::test]
async fn the_desk_works_the_list_with_owners_references_notes_filters_bulk_actions_and_csv() {
    let app = TestApp::spawn().await;
    let (src, dst) = imap::seeded_pair(("kim@old.example", SRC_PW), ("kim1@new.example", DST_PW))
        .await
        .unwrap();
    for user in ["kim2@new.example", "kim3@new.example"] {
        dst.add_user(user, DST_PW).unwrap();
    }
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let paris = chrono_tz::Europe::Paris;
    let earliest = app
        .services
        .window_rules()
        .unwrap()
        .earliest(app.services.now(), paris)
        .unwrap()
        .naive_local();
    let mut ids = Vec::new();
    for (n, reference) in [(1, Some("ORDER-4411")), (2, None), (3, None)] {
        let dest = format!("kim{n}@new.example");
        let m = app
            .services
            .request_migration(
                &Actor::Cli,
                false,
                MigrationRequest {
                    source: plain_side(src.port, "kim@old.example", SRC_PW),
                    destination: plain_side(dst.port, &dest, DST_PW),
                    window_start: Some(Ok(earliest)),
                    time_zone: Some(Ok(paris)),
                    requester_email: Some(EmailAddress::parse("requester_email", &dest)),
                    customer_ref: reference.map(str::to_owned),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        ids.push(m.id);
    }
    let status = |id: MigrationId| {
        let app = &app;
        async move {
            app.services
                .migration_detail(id)
                .await
                .unwrap()
                .migration
                .status
                .as_str()
                .to_owned()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &ids {
        while status(*id).await != "scheduled" {
            assert!(Instant::now() < deadline, "#{id} not scheduled");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (first, second, third) = (ids[0], ids[1], ids[2]);

    // The first gets an owner (the admin), a new reference and a note.
    let admin = app
        .services
        .store()
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email.as_str() == ADMIN_EMAIL)
        .unwrap();
    let page = format!("/migrations/{first}");
    let resp = app
        .post_form(
            &app.client,
            &page,
            &format!("{page}/assign"),
            &[
                ("owner", &admin.id.to_string()),
                ("customer_ref", "ORDER-4412"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let resp = app
        .post_form(
            &app.client,
            &page,
            &format!("{page}/note"),
            &[("note", "Customer prefers nights; call before moving.")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let html = app.page(&app.client, &page).await;
    assert!(
        html.contains("Customer prefers nights; call before moving."),
        "{html}"
    );
    assert!(html.contains(r#"value="ORDER-4412""#), "{html}");
    assert!(
        html.contains(&format!(r#"<option value="{}" selected>"#, admin.id)),
        "{html}"
    );
    // A note for staff never reaches the customer.
    assert!(
        app.outbox()
            .await
            .iter()
            .all(|m| !m.body_text.contains("prefers nights"))
    );

    // Filters: owner, reference, dates.
    let rows = |html: &str| -> Vec<String> {
        html.split(r#"<input type="checkbox" name="id."#)
            .skip(1)
            .filter_map(|rest| rest.split('"').next().map(str::to_owned))
            .collect()
    };
    let mine = app.page(&app.client, "/migrations?owner=me").await;
    assert_eq!(rows(&mine), vec![first.to_string()], "{mine}");
    assert!(mine.contains("ORDER-4412") && mine.contains("kim1@new.example"));
    let unowned = app.page(&app.client, "/migrations?owner=none").await;
    assert_eq!(rows(&unowned), vec![third.to_string(), second.to_string()]);
    let by_ref = app.page(&app.client, "/migrations?q=ORDER-44").await;
    assert_eq!(rows(&by_ref), vec![first.to_string()]);
    let tomorrow = (app.services.now() + chrono::Duration::days(1)).format("%Y-%m-%d");
    let later = app
        .page(&app.client, &format!("/migrations?from={tomorrow}"))
        .await;
    assert!(rows(&later).is_empty(), "none requested from tomorrow on");

    // The CSV export holds what the filters select.
    let csv = app
        .client
        .get(app.url("/migrations.csv?owner=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("id,status,source,destination,requester,customer_ref,owner"),
        "{csv}"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].starts_with(&format!("{third},scheduled,")),
        "{csv}"
    );

    // Two selected: moved a day later together, then stopped together; a sync on
    // stopped migrations is refused, each named.
    let moved = earliest + chrono::Duration::days(1);
    let bulk = |fields: Vec<(String, String)>| {
        let app = &app;
        async move {
            let html = app.page(&app.client, "/migrations").await;
            let csrf = ferry_tests::app::csrf_from(&html).unwrap();
            let mut form = fields;
            form.push(("csrf".into(), csrf));
            let resp = app
                .client
                .post(app.url("/migrations/bulk"))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 303);
            app.page(&app.client, "/migrations").await
        }
    };
    let (second_box, third_box) = (format!("id.{second}"), format!("id.{third}"));
    let field = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let html = bulk(vec![
        field(&second_box, "on"),
        field(&third_box, "on"),
        field("action", "reschedule"),
        field("window.date", &moved.format("%Y-%m-%d").to_string()),
        field("window.time", &moved.format("%H:%M").to_string()),
    ])
    .await;
    assert!(html.contains("Done for 2"), "{html}");
    for id in [second, third] {
        let m = app.services.migration_detail(id).await.unwrap().migration;
        assert_eq!(
            m.window_start
                .map(|w| w.with_timezone(&paris).naive_local()),
            Some(moved)
        );
    }
    let html = bulk(vec![
        field(&second_box, "on"),
        field(&third_box, "on"),
        field("action", "cancel"),
        field("reason", "the customer asked to wait"),
    ])
    .await;
    assert!(html.contains("Done for 2"), "{html}");
    assert_eq!(status(second).await, "cancelled");
    assert_eq!(status(third).await, "cancelled");
    let html = bulk(vec![field(&second_box, "on"), field("action", "sync")]).await;
    assert!(html.contains(&format!("Not done: #{second}")), "{html}");

    // From a migration: its emails, its audit entries.
    let emails = app
        .page(&app.client, &format!("/outbox?migration={second}"))
        .await;
    assert!(
        emails.contains(&format!("Migration #{second} is stopped")),
        "{emails}"
    );
    assert!(
        !emails.contains(&format!("#{first} ")),
        "only its own: {emails}"
    );
    let item = emails
        .split(r#"href="/outbox/"#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an email of the migration");
    let item = app.page(&app.client, &format!("/outbox/{item}")).await;
    assert!(
        item.contains(&format!(
            r#"<a href="/migrations/{second}">migration #{second}</a>"#
        )),
        "back to its migration: {item}"
    );
    let audit = app
        .page(&app.client, &format!("/audit?subject=migration:{first}"))
        .await;
    assert!(
        audit.contains("note added") && audit.contains("assigned"),
        "{audit}"
    );
    assert!(!audit.contains(&format!("migration #{second}")), "{audit}");
    app.stop().await;
}

/// A completed migration's synchronisation pass never copies beside another migration
/// of the same mailbox.
#[tokio::test]
async fn a_sync_of_a_completed_migration_and_a_new_request_for_its_mailbox_exclude_each_other() {
    let app = TestApp::spawn().await;
    let (src, dst) = imap::seeded_pair(("lee@old.example", SRC_PW), ("lee@new.example", DST_PW))
        .await
        .unwrap();
    let request = |window: Option<chrono::NaiveDateTime>| MigrationRequest {
        source: plain_side(src.port, "lee@old.example", SRC_PW),
        destination: plain_side(dst.port, "lee@new.example", DST_PW),
        window_start: window.map(Ok),
        two_pass: Some(false),
        requester_email: Some(EmailAddress::parse("requester_email", "lee@new.example")),
        ..Default::default()
    };
    let done = app
        .services
        .request_migration(&Actor::Cli, true, request(None))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = app
            .services
            .migration_detail(done.id)
            .await
            .unwrap()
            .migration;
        if m.status.as_str() == "completed" && m.next_work.is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "not completed: {m:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new request for the mailbox, for a later window: now the sync is refused.
    let earliest = app
        .services
        .window_rules()
        .unwrap()
        .earliest(app.services.now(), chrono_tz::UTC)
        .unwrap()
        .naive_local();
    let later = app
        .services
        .request_migration(&Actor::Cli, false, request(Some(earliest)))
        .await
        .unwrap();
    let refused = app
        .services
        .sync_migration(&Actor::Cli, done.id, false)
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains(&format!("Migration #{}", later.id))),
        "{refused:?}"
    );
    // Once that one is stopped, the sync goes ahead (a request while a sync waits or
    // runs is refused the same way: tests/e2e/store.rs checks `mailbox_busy`).
    app.services
        .cancel_migration(&Actor::Cli, later.id, None, false)
        .await
        .unwrap();
    app.services
        .sync_migration(&Actor::Cli, done.id, false)
        .await
        .unwrap();
    app.stop().await;
}
