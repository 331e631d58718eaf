//! A list of mailboxes imported in the console, against real Dovecot: the provider's
//! template as a Windows-1252 CSV with semicolons, its preview with each problem in its
//! cell, the ready rows' migrations made once (and validated with the passwords the
//! file held), an XLSX whose mailbox is already being moved, and the public templates.

use std::time::{Duration, Instant};

use ferry::domain::{MigrationStatus, UploadId};
use ferry::intake::lists;
use ferry_tests::app::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, csrf_from};
use ferry_tests::dovecot::{Dovecot, Layout};

/// With an `ä`: the CSV is Windows-1252, so only a right decoding logs in.
const SRC_PW: &str = "alt-pässwort-7341";
const DST_PW: &str = "new-pw-2290";

fn header() -> &'static str {
    "\"Source Type(IMAP/Exchange/POP)\";Source Server url;Source Login/Mail;Source Password;Destination Type;\"Destination Url(can be leaved empty if hosted by OVH)\";Destination Mail;Destination Password;Source admin mail (delegation);Destination Admin Mail (delegation);window;Source security;Destination security"
}

/// The earliest window the rules allow now, in Paris, as a list writes it.
fn earliest_window(app: &TestApp) -> String {
    app.services
        .window_rules()
        .unwrap()
        .earliest(app.services.now(), chrono_tz::Europe::Paris)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

/// Waits until validation has logged in to both sides and scheduled `id`; fails at
/// once if it failed instead.
async fn wait_scheduled(app: &TestApp, id: ferry::domain::MigrationId) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = app
            .services
            .store()
            .get_migration(id)
            .await
            .unwrap()
            .unwrap();
        if now.status == MigrationStatus::Scheduled {
            return;
        }
        assert!(
            Instant::now() < deadline && now.status != MigrationStatus::Failed,
            "#{id} is {:?}: {:?}",
            now.status,
            now.error_message
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn every() -> ferry::store::MigrationFilter {
    ferry::store::MigrationFilter {
        per_page: 100,
        ..Default::default()
    }
}

async fn upload(app: &TestApp, file_name: &str, bytes: Vec<u8>, mime: &str) -> reqwest::Response {
    upload_with_rows(app, file_name, bytes, mime, "").await
}

/// The form as a browser sends it: a file part (empty when none was chosen) and the
/// typed rows.
async fn upload_with_rows(
    app: &TestApp,
    file_name: &str,
    bytes: Vec<u8>,
    mime: &str,
    rows: &str,
) -> reqwest::Response {
    let page = app
        .client
        .get(app.url("/migrations/import"))
        .send()
        .await
        .unwrap();
    let csrf = csrf_from(&page.text().await.unwrap()).expect("a CSRF token");
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("rows", rows.to_owned())
        .text("requester_email", "it@customer.example")
        .text("time_zone", "Europe/Paris")
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes)
                .file_name(file_name.to_owned())
                .mime_str(mime)
                .unwrap(),
        );
    app.client
        .post(app.url("/migrations/import"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// The preview's address, from the upload's redirect.
fn preview_path(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 303, "an upload redirects to its preview");
    resp.headers()["location"].to_str().unwrap().to_owned()
}

async fn get_text(app: &TestApp, path: &str) -> String {
    let resp = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

async fn create(app: &TestApp, preview: &str) -> reqwest::Response {
    let csrf = csrf_from(&get_text(app, preview).await).unwrap();
    app.client
        .post(app.url(&format!("{preview}/create")))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_list_is_previewed_cell_by_cell_and_its_ready_rows_become_migrations_once() {
    let app = TestApp::spawn().await;
    let src = Dovecot::start(Layout::Slash).unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    for user in ["ana", "bo", "cy"] {
        src.add_user(&format!("{user}@old.example"), SRC_PW)
            .unwrap();
        dst.add_user(&format!("{user}@new.example"), DST_PW)
            .unwrap();
    }
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let window = earliest_window(&app);
    let (s, d) = (
        format!("127.0.0.1:{}", src.port),
        format!("127.0.0.1:{}", dst.port),
    );
    let row = |kind: &str, user: &str, dest: &str| {
        format!(
            "{kind};{s};{user}@old.example;{SRC_PW};IMAP;{d};{dest};{DST_PW};;;{window} Europe/Paris;none;none"
        )
    };
    let text = [
        header().to_owned(),
        row("IMAP", "ana", "ana@new.example"),
        row("IMAP", "bo", "bo@new.example"),
        row("Exchange", "cy", ""),
        row("IMAP", "cy", "ana@new.example"),
    ]
    .join("\r\n");
    // Windows-1252, as Excel saves "CSV (semicolon)" on a French Windows.
    let ansi: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
        .collect();
    let preview = preview_path(&upload(&app, "mailboxes.csv", ansi, "text/csv").await);

    let page = get_text(&app, &preview).await;
    assert!(
        !page.contains(SRC_PW) && !page.contains(DST_PW),
        "no password on the page"
    );
    assert!(page.contains("2 ready"), "{page}");
    assert!(page.contains("2 with problems"), "{page}");
    assert!(
        page.contains("Exchange&#x2f;POP):</strong>") && page.contains("write IMAP"),
        "the server type's problem names its column: {page}"
    );
    assert!(
        page.contains("Destination Mail:</strong>")
            && page.contains("row 2 already moves mail into ana@new.example"),
        "the duplicate names the first row: {page}"
    );
    assert!(
        app.services
            .store()
            .list_migrations(&every())
            .await
            .unwrap()
            .1
            == 0,
        "a preview makes nothing"
    );

    let made = create(&app, &preview).await;
    assert_eq!(made.status(), 200);
    let page = made.text().await.unwrap();
    assert!(page.contains("Made 2 migration(s)"), "{page}");
    let (all, total) = app
        .services
        .store()
        .list_migrations(&ferry::store::MigrationFilter {
            per_page: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 2);
    let mut dests: Vec<&str> = all.iter().map(|m| m.dest.username()).collect();
    dests.sort_unstable();
    assert_eq!(dests, ["ana@new.example", "bo@new.example"]);
    assert!(
        all.iter()
            .all(|m| m.requester_email == "it@customer.example")
    );
    for m in &all {
        assert!(page.contains(&format!("/migrations/{}\"", m.id)), "{page}");
    }
    // Validation logs in with the file's passwords: the ä arrived as an ä.
    for m in &all {
        wait_scheduled(&app, m.id).await;
    }
    // The list is erased once used; a second click makes nothing.
    let id: i64 = preview.rsplit('/').next().unwrap().parse().unwrap();
    let (_, bytes) = app.services.list_file(UploadId(id)).await.unwrap();
    assert!(bytes.is_none(), "the used list's bytes are erased");
    let again = create(&app, &preview).await;
    assert_eq!(again.status(), 303);
    let total = app
        .services
        .store()
        .list_migrations(&every())
        .await
        .unwrap()
        .1;
    assert_eq!(total, 2, "nothing made twice");
    let used = app.audit("list.used").await;
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0].subject_id.as_deref(), Some(id.to_string().as_str()));
    assert_eq!(
        used[0].detail["rows_not_started"], 2,
        "{:?}",
        used[0].detail
    );
    assert_eq!(
        used[0].detail["migrations"].as_array().map(Vec::len),
        Some(2)
    );
    let uploaded = app.audit("list.uploaded").await;
    assert!(
        uploaded
            .iter()
            .all(|e| !e.detail.to_string().contains(SRC_PW)),
        "the audit holds the file's name, never its content"
    );

    // An XLSX with the short template's names: its mailbox is being moved already.
    let xlsx = {
        use rust_xlsxwriter::Workbook;
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        let rows = [
            [
                "source email",
                "source password",
                "source IMAP server",
                "destination mailbox",
                "destination password",
                "destination server",
                "window",
                "source security",
            ],
            [
                "bo@old.example",
                SRC_PW,
                &s,
                "bo@new.example",
                DST_PW,
                &d,
                &format!("{window} Europe/Paris"),
                "none",
            ],
        ];
        for (r, cells) in rows.iter().enumerate() {
            for (c, cell) in cells.iter().enumerate() {
                sheet.write_string(r as u32, c as u16, *cell).unwrap();
            }
        }
        book.save_to_buffer().unwrap()
    };
    let resp = upload(
        &app,
        "more.xlsx",
        xlsx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    .await;
    let page = get_text(&app, &preview_path(&resp)).await;
    assert!(page.contains("0 ready"), "{page}");
    assert!(
        page.contains("bo@new.example already has a migration in progress"),
        "{page}"
    );

    // A list larger than a form's body limit (1 MiB) is an upload, not a form: 3,000
    // rows with a column Ferry does not know, of 400 characters each.
    let mut big =
        String::from("source email;source password;source IMAP server;destination mailbox;notes\n");
    let notes = "n".repeat(400);
    for i in 0..3000 {
        big.push_str(&format!(
            "u{i}@old.example;pw;{s};u{i}@new.example;{notes}\n"
        ));
    }
    assert!(big.len() > 1024 * 1024);
    let resp = upload(&app, "big.csv", big.into_bytes(), "text/csv").await;
    let page = get_text(&app, &preview_path(&resp)).await;
    assert!(
        page.contains("3,000 with problems"),
        "each row lacks its destination password"
    );

    // A file that is no list says so on the form, and nothing is kept.
    let resp = upload(&app, "notes.csv", b"name;age\nJo;3\n".to_vec(), "text/csv").await;
    let page = get_text(&app, &preview_path(&resp)).await;
    assert!(page.contains("names no column Ferry knows"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_file_over_the_upload_limit_gets_a_page_that_says_so() {
    let app = TestApp::spawn_with(ferry_tests::app::Options {
        tweak: Some(|s| s.limits.upload_bytes = 100_000),
        ..Default::default()
    })
    .await;
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let resp = upload(&app, "huge.csv", vec![b'x'; 200_000], "text/csv").await;
    assert_eq!(resp.status(), 413);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("A file may have 100000 bytes at most"),
        "{page}"
    );
    // Just under: read, and refused for what it is, not for its size.
    let resp = upload(&app, "big.csv", vec![b'x'; 99_000], "text/csv").await;
    let page = get_text(&app, &preview_path(&resp)).await;
    assert!(page.contains("names no column Ferry knows"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn the_templates_are_public_and_read_back_as_lists() {
    let app = TestApp::spawn().await;
    let client = TestApp::new_client();
    for (path, name) in [
        ("/templates/migration-request.csv", "t.csv"),
        ("/templates/migration-request-short.csv", "t.csv"),
        ("/templates/migration-request.xlsx", "t.xlsx"),
    ] {
        let resp = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path} needs no sign-in");
        assert!(
            resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
            "{path}"
        );
        let bytes = resp.bytes().await.unwrap();
        let list = lists::read(name, &bytes).unwrap();
        assert_eq!(list.rows.len(), 1, "{path}: the example row");
    }
    app.stop().await;
}

/// The provider's master user, as `ferry.toml` or `FERRY_PROVIDER__MASTER_…` set it.
fn with_master(settings: &mut ferry::config::Settings) {
    settings.provider.master_user = "ferry-master".into();
    settings.provider.master_password = Some(secrecy::SecretString::from("master-pw-6620"));
}

#[tokio::test]
async fn the_short_template_moves_each_mailbox_to_its_own_address_through_the_master_user() {
    let app = TestApp::spawn_with(ferry_tests::app::Options {
        tweak: Some(with_master),
        ..Default::default()
    })
    .await;
    let src = Dovecot::start(Layout::Slash).unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    src.add_user("dee@customer.example", SRC_PW).unwrap();
    // The customer never knew this password: the master user logs in for them.
    dst.add_user("dee@customer.example", "unknown-to-the-customer")
        .unwrap();
    dst.add_master_user("ferry-master", "master-pw-6620")
        .unwrap();
    let provider: std::collections::HashMap<String, String> = [
        ("provider.imap_host".to_owned(), "127.0.0.1".to_owned()),
        ("provider.imap_port".to_owned(), dst.port.to_string()),
        ("provider.imap_security".to_owned(), "none".to_owned()),
    ]
    .into();
    app.services
        .change_settings(&ferry::domain::Actor::Cli, &provider, None)
        .await
        .unwrap();
    app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let window = earliest_window(&app);
    let text = format!(
        "source email,source password,source IMAP server,window,source security\n\
         dee@customer.example,{SRC_PW},127.0.0.1:{},{window},none\n",
        src.port
    );
    // Typed into the form, no file chosen.
    let sent = upload_with_rows(&app, "", Vec::new(), "application/octet-stream", &text).await;
    let preview = preview_path(&sent);
    let page = get_text(&app, &preview).await;
    assert!(page.contains("1 ready"), "{page}");
    assert!(!page.contains("master-pw-6620"), "{page}");
    let made = create(&app, &preview).await.text().await.unwrap();
    assert!(made.contains("Made 1 migration(s)"), "{made}");
    let (all, _) = app
        .services
        .store()
        .list_migrations(&every())
        .await
        .unwrap();
    let m = &all[0];
    assert_eq!(m.dest.username(), "dee@customer.example");
    assert_eq!(
        m.dest.imap().and_then(|a| a.authuser.as_deref()),
        Some("ferry-master")
    );
    wait_scheduled(&app, m.id).await;
    app.stop().await;
}

/// "New project" in the console: typed rows previewed with the project's defaults
/// (each problem in its cell), then the project made from the kept list, its password
/// shown once, the list erased.
#[tokio::test]
async fn staff_make_a_project_from_typed_rows_with_its_preview() {
    let app = TestApp::spawn().await;
    let server = Dovecot::start(Layout::Slash).unwrap();
    server.add_user("ana@old.example", SRC_PW).unwrap();
    server.add_user("ana@acme.example", DST_PW).unwrap();
    let client = TestApp::new_client();
    app.sign_in(&client, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = app.page(&client, "/projects/new").await;
    let csrf = csrf_from(&page).unwrap();
    let rows = format!(
        "source email,source password,source host,source security,destination email,destination password,destination host,destination security\n\
         ana@old.example,{SRC_PW},127.0.0.1:{p},none,ana@acme.example,{DST_PW},127.0.0.1:{p},none\n\
         bob@old.example,,127.0.0.1:{p},none,bob@acme.example,{DST_PW},127.0.0.1:{p},none\n",
        p = server.port
    );
    let fields = |step: &str, upload: Option<&str>| {
        let mut form = reqwest::multipart::Form::new()
            .text("csrf", csrf.clone())
            .text("name", "Acme")
            .text("requester_email", "it@acme.example")
            .text("time_zone", "Europe/Paris")
            .text("concurrency", "2")
            .text("one_pass", "1")
            .text("mail", "1")
            .text("step", step.to_owned());
        form = match upload {
            Some(id) => form.text("upload", id.to_owned()),
            None => form.text("rows", rows.clone()),
        };
        form
    };
    let resp = client
        .post(app.url("/projects/new"))
        .multipart(fields("preview", None))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let preview = resp.text().await.unwrap();
    assert!(
        preview.contains("1 ready") && preview.contains("1 with problems"),
        "{preview}"
    );
    assert!(
        !preview.contains(SRC_PW) && !preview.contains(DST_PW),
        "passwords masked"
    );
    let upload = preview
        .split("name=\"upload\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the kept list's id")
        .to_owned();
    let resp = client
        .post(app.url("/projects/new"))
        .multipart(fields("create", Some(&upload)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let made = resp.text().await.unwrap();
    let code = made
        .split("Project made: <code>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("the project's ID")
        .to_owned();
    assert!(
        made.contains("id=\"project-password\""),
        "the password, once"
    );
    let project = app.services.project_by_code(&code).await.unwrap();
    assert_eq!(project.concurrency, 2);
    assert!(!project.options.two_pass);
    let view = app.services.project_view(project.id).await.unwrap();
    assert_eq!(view.migrations.len(), 1, "the ready row only");
    assert_eq!(view.migrations[0].0.source.username(), "ana@old.example");
    let (_, bytes) = app
        .services
        .list_file(UploadId(upload.parse().unwrap()))
        .await
        .unwrap();
    assert!(bytes.is_none(), "the list is erased once used");
    // The project's page and the list show it.
    let page = app.page(&client, &format!("/projects/{code}")).await;
    assert!(
        page.contains("ana@old.example") && page.contains("Pause"),
        "{page}"
    );
    let list = app.page(&client, "/projects").await;
    assert!(list.contains(&code));
    app.stop().await;
}
