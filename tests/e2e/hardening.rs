//! What a busy day and a hostile caller do to Ferry: concurrent requests for one
//! mailbox, capacity under load, on both databases and across two instances; names that
//! rebind to loopback; servers that go silent.

use chrono::Utc;
use ferry::domain::Scope;
use ferry_tests::app::{Backend, Options, TestApp};
use ferry_tests::dovecot::{Dovecot, Layout};
use ferry_tests::hostile::{Listener, RebindingDns, SilentImap};
use ferry_tests::within;
use futures::future::join_all;
use serde_json::{Value, json};

const SRC_PW: &str = "old-provider-pw-4821";
const DST_PW: &str = "new-provider-pw-9377";
const REQUESTS: usize = 50;
/// Each half of a load test takes seconds; this much means it stalled.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(180);

/// A request the rules accept (earliest window, real servers that validation logs in to),
/// into `dest_user` on `dst`.
fn request(app: &TestApp, src: &Dovecot, dst: &Dovecot, dest_user: &str) -> Value {
    let window = app
        .services
        .window_rules()
        .unwrap()
        .earliest(Utc::now(), chrono_tz::Europe::Paris)
        .unwrap()
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    json!({
        "source": {"host": "127.0.0.1", "port": src.port, "security": "none", "username": "jane@old.example", "password": SRC_PW},
        "destination": {"host": "127.0.0.1", "port": dst.port, "security": "none", "username": dest_user, "password": DST_PW},
        "window": {"start": window, "time_zone": "Europe/Paris"},
        "requester_email": "jane@new.example",
    })
}

/// Calls the API; no answer may hold a password.
async fn api(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
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

/// Sends the requests at once, alternating between the two instances; returns each
/// answer's status and code.
async fn post_all(apps: [&TestApp; 2], token: &str, bodies: Vec<Value>) -> Vec<(u16, String)> {
    let targets = apps.map(|app| (app.client.clone(), app.base.clone()));
    post_alternating(&targets, token, bodies).await
}

/// Sends the requests at once, alternating between `(client, base URL)` targets.
async fn post_alternating(
    targets: &[(reqwest::Client, String)],
    token: &str,
    bodies: Vec<Value>,
) -> Vec<(u16, String)> {
    let calls = bodies.into_iter().enumerate().map(|(i, body)| {
        let (client, base) = &targets[i % targets.len()];
        async move {
            let (status, answer) = ferry_tests::api::call(
                client,
                base,
                token,
                "POST",
                "/migrations",
                Some(body),
                &[SRC_PW, DST_PW],
            )
            .await;
            (
                status,
                answer["code"].as_str().unwrap_or_default().to_owned(),
            )
        }
    });
    join_all(calls).await
}

fn count(answers: &[(u16, String)], status: u16, code: &str) -> usize {
    answers
        .iter()
        .filter(|(s, c)| *s == status && c == code)
        .count()
}

async fn servers(dest_users: &[String]) -> (Dovecot, Dovecot) {
    let src = Dovecot::start(Layout::Slash).unwrap();
    src.add_user("jane@old.example", SRC_PW).unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    for user in dest_users {
        dst.add_user(user, DST_PW).unwrap();
    }
    (src, dst)
}

async fn active_migrations(app: &TestApp) -> Vec<ferry::domain::Migration> {
    let (all, _) = app
        .services
        .store()
        .list_migrations(&ferry::store::MigrationFilter {
            per_page: 100,
            page: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    all.into_iter().filter(|m| m.status.is_active()).collect()
}

async fn one_mailbox_once(backend: Backend) {
    let app = TestApp::spawn_with(Options {
        backend,
        ..Default::default()
    })
    .await;
    let beside = app.spawn_beside().await;
    let user = "jane@new.example".to_owned();
    let (src, dst) = servers(std::slice::from_ref(&user)).await;
    let token = app
        .token("race", &[Scope::MigrationsWrite, Scope::MigrationsRead])
        .await;
    let bodies = (0..REQUESTS)
        .map(|_| request(&app, &src, &dst, &user))
        .collect();
    let answers = post_all([&app, &beside], &token, bodies).await;
    assert_eq!(count(&answers, 201, ""), 1, "{backend:?}: {answers:?}");
    assert_eq!(
        count(&answers, 409, "active_migration_exists"),
        REQUESTS - 1,
        "{backend:?}: {answers:?}"
    );
    assert_eq!(active_migrations(&app).await.len(), 1, "{backend:?}");
    beside.stop().await;
    app.stop().await;
}

async fn capacity_under_load(backend: Backend) {
    const MAX_ACTIVE: usize = 5;
    let app = TestApp::spawn_with(Options {
        backend,
        max_active: Some(MAX_ACTIVE as u32),
        ..Default::default()
    })
    .await;
    let beside = app.spawn_beside().await;
    let users: Vec<String> = (0..REQUESTS).map(|i| format!("u{i}@new.example")).collect();
    let (src, dst) = servers(&users).await;
    let token = app
        .token("race", &[Scope::MigrationsWrite, Scope::MigrationsRead])
        .await;
    let bodies = users.iter().map(|u| request(&app, &src, &dst, u)).collect();
    let answers = post_all([&app, &beside], &token, bodies).await;
    assert_eq!(
        count(&answers, 201, ""),
        MAX_ACTIVE,
        "{backend:?}: {answers:?}"
    );
    assert_eq!(
        count(&answers, 503, "migration_capacity_reached"),
        REQUESTS - MAX_ACTIVE,
        "{backend:?}: {answers:?}"
    );
    assert_eq!(active_migrations(&app).await.len(), MAX_ACTIVE);
    beside.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn fifty_concurrent_requests_for_one_mailbox_make_one_migration_on_sqlite_and_postgres() {
    within(
        LIMIT,
        "one mailbox on SQLite",
        one_mailbox_once(Backend::Sqlite),
    )
    .await;
    within(
        LIMIT,
        "one mailbox on PostgreSQL",
        one_mailbox_once(Backend::Postgres),
    )
    .await;
}

#[tokio::test]
async fn capacity_holds_under_fifty_concurrent_requests_on_sqlite_and_postgres() {
    within(
        LIMIT,
        "capacity on SQLite",
        capacity_under_load(Backend::Sqlite),
    )
    .await;
    within(
        LIMIT,
        "capacity on PostgreSQL",
        capacity_under_load(Backend::Postgres),
    )
    .await;
}

#[tokio::test]
async fn retrying_a_migration_while_another_of_its_mailbox_is_active_answers_409() {
    let app = TestApp::spawn().await;
    let user = "jane@new.example".to_owned();
    let (src, dst) = servers(std::slice::from_ref(&user)).await;
    let token = app
        .token("race", &[Scope::MigrationsWrite, Scope::MigrationsRead])
        .await;
    let (app_ref, token_ref) = (&app, &token);
    let call = |method: &'static str, path: String, body: Option<Value>| async move {
        api(app_ref, token_ref, method, &path, body).await
    };
    let body = request(&app, &src, &dst, &user);
    let (status, first) = call("POST", "/migrations".into(), Some(body.clone())).await;
    assert_eq!(status, 201, "{first}");
    let first = first["id"].as_i64().unwrap();
    // Cancelled once validation has scheduled it (a step in flight answers 409).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, m) = call("GET", format!("/migrations/{first}"), None).await;
        if m["status"] == "scheduled" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {m}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, answer) = call("POST", format!("/migrations/{first}:cancel"), None).await;
    assert_eq!(status, 200, "{answer}");
    let (status, second) = call("POST", "/migrations".into(), Some(body)).await;
    assert_eq!(status, 201, "{second}");
    let (status, answer) = call("POST", format!("/migrations/{first}:retry"), None).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("active_migration_exists")),
        "{answer}"
    );
    assert_eq!(active_migrations(&app).await.len(), 1);
    app.stop().await;
}

async fn connection_test(app: &TestApp, token: &str, host: &str, port: u16) -> (u16, Value) {
    ferry_tests::api::call(
        &app.client,
        &app.base,
        token,
        "POST",
        "/migrations/test-connection",
        Some(json!({"host": host, "port": port, "security": "none", "username": "jane@old.example", "password": SRC_PW})),
        &[SRC_PW, DST_PW],
    )
    .await
}

#[tokio::test]
async fn a_name_that_rebinds_to_loopback_after_the_check_never_reaches_loopback() {
    use std::net::Ipv4Addr;
    // A public address first (unreachable from here), 127.0.0.1 for every later question.
    let dns = RebindingDns::start(Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::LOCALHOST)
        .await
        .unwrap();
    let trap = Listener::start().await.unwrap();
    let app = TestApp::spawn_with(Options {
        allow_private_targets: false,
        nameserver: Some(dns.addr),
        tweak: Some(|s| s.timeouts.connect_seconds = 2),
        ..Default::default()
    })
    .await;
    let token = app.token("rebind", &[Scope::MigrationsWrite]).await;

    // The name is asked once: the check and the connection use the same answer, so the
    // connection goes to the public address (and fails here), never to loopback.
    let (status, body) = connection_test(&app, &token, "imap.rebind.test", trap.port).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        matches!(body["code"].as_str(), Some("tcp" | "timeout")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("8.8.8.8"),
        "{body}"
    );
    // Asked again, the name now answers loopback, and the check refuses it.
    let (status, body) = connection_test(&app, &token, "imap.rebind.test", trap.port).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("private_target")),
        "{body}"
    );
    let (connections, bytes) = trap.received();
    assert_eq!(connections, 0, "loopback was reached");
    assert!(!String::from_utf8_lossy(&bytes).contains(SRC_PW));

    // IPv6 and IPv4 forms of special-purpose addresses are refused as literals too.
    for host in [
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "fec0::1",
        "224.0.0.1",
        "0.0.0.1",
        "198.18.0.1",
    ] {
        let (status, body) = connection_test(&app, &token, host, trap.port).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("private_target")),
            "{host}: {body}"
        );
    }
    assert_eq!(trap.received().0, 0, "loopback was reached");
    app.stop().await;
}

#[tokio::test]
async fn a_server_that_goes_silent_after_login_fails_the_step_with_timeout_and_its_side() {
    let silent = SilentImap::start().await.unwrap();
    let app = TestApp::spawn_with(Options {
        tweak: Some(|s| {
            s.timeouts.connect_seconds = 1;
            s.timeouts.io_seconds = 1;
        }),
        ..Default::default()
    })
    .await;
    let token = app
        .token("silent", &[Scope::MigrationsWrite, Scope::MigrationsRead])
        .await;
    let started = std::time::Instant::now();
    let (status, body) = connection_test(&app, &token, "127.0.0.1", silent.port).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("timeout")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("CAPABILITY"),
        "{body}"
    );
    // Generous: the deadline is 1 s; before it existed this never answered.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // Validation of a migration whose destination goes silent fails, naming the side.
    let src = Dovecot::start(Layout::Slash).unwrap();
    src.add_user("jane@old.example", SRC_PW).unwrap();
    let mut body = request(&app, &src, &src, "jane@new.example");
    body["destination"]["port"] = json!(silent.port);
    let (status, created) = api(&app, &token, "POST", "/migrations", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let failed = loop {
        let (_, m) = api(&app, &token, "GET", &format!("/migrations/{id}"), None).await;
        if m["status"] == "failed" {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "still {m}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(failed["error"]["code"], "timeout", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("destination"),
        "{failed}"
    );
    app.stop().await;
}

/// Sends a `size`-byte form body to `path` over raw HTTP/1.1 (with a Content-Length, or
/// chunked), as fast as the server takes it; answers the status line, if one came.
async fn post_huge(port: u16, path: &str, size: usize, chunked: bool) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {size}")
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.ok()?;
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let wrote = if chunked {
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            tcp.write_all(&framed).await
        } else {
            tcp.write_all(&chunk).await
        };
        if wrote.is_err() {
            break; // The server stopped reading: what it answered is below.
        }
        sent += chunk.len();
    }
    if chunked && sent >= size {
        let _ = tcp.write_all(b"0\r\n\r\n").await;
    }
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), tcp.read(&mut answer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    text.lines().next().map(str::to_owned)
}

#[tokio::test]
async fn eight_hundred_megabyte_posts_are_refused_without_the_memory_to_hold_them() {
    const HUNDRED_MB: usize = 100 * 1024 * 1024;
    ferry_tests::init_crypto();
    let ferry = ferry_tests::serve::FerryProcess::start(&[]).unwrap();
    let port = ferry.port;
    let before = ferry.peak_rss().unwrap();
    let posts = (0..8).map(|i| post_huge(port, "/login", HUNDRED_MB, i % 2 == 1));
    let answers = join_all(posts).await;
    let peak = ferry.peak_rss().unwrap();
    eprintln!(
        "eight 100 MB posts: peak RSS {} MiB (before {} MiB); answers {answers:?}",
        peak >> 20,
        before >> 20
    );
    assert!(
        peak < before + (64 << 20),
        "peak RSS {} MiB after eight 100 MB posts (before {} MiB)",
        peak >> 20,
        before >> 20
    );
    for answer in answers.iter().flatten() {
        assert!(answer.contains(" 413"), "{answers:?}");
    }
    // The answer itself is the API's JSON error, given on the Content-Length alone.
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        tcp.write_all(
            b"POST /api/v1/migrations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut text = String::new();
        tcp.read_to_string(&mut text).await.unwrap();
        text
    };
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "payload_too_large", "{body}");
    // Still serving.
    let health = reqwest::get(format!("{}/healthz", ferry.base()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn oversized_and_malformed_fields_are_refused_by_name_before_any_work() {
    let app = TestApp::spawn().await;
    let src = Dovecot::start(Layout::Slash).unwrap();
    let token = app
        .token("fields", &[Scope::MigrationsWrite, Scope::MigrationsRead])
        .await;
    let post = |body: Value| api(&app, &token, "POST", "/migrations", Some(body));
    let good = request(&app, &src, &src, "jane@new.example");

    // A 10 MB username: refused by name, nothing stored, no email queued.
    let mut huge = good.clone();
    huge["destination"]["username"] = json!("x".repeat(10 * 1024 * 1024 / 2));
    let (status, body) = post(huge).await;
    // Over the body limit (1 MiB) already: 413 before the JSON is parsed.
    assert_eq!(status, 413, "{body}");
    let mut long = good.clone();
    long["destination"]["username"] = json!("x".repeat(5000));
    long["excluded_folders"] = json!(vec!["Trash"; 2000]);
    let (status, body) = post(long).await;
    assert_eq!(status, 422, "{body}");
    let fields = ferry_tests::api::fields(&body);
    assert!(fields.contains(&"destination.username"), "{body}");
    assert!(fields.contains(&"excluded_folders"), "{body}");

    // An MX domain with CR/LF or angle brackets cannot reach the DNS instructions.
    for bad in [
        "new.example\r\n10 mx.evil.example",
        "<b>new</b>.example",
        "new example",
    ] {
        let mut forged = good.clone();
        forged["mx_domain"] = json!(bad);
        let (status, body) = post(forged).await;
        assert_eq!(status, 422, "{bad:?}: {body}");
        assert_eq!(ferry_tests::api::fields(&body), vec!["mx_domain"], "{body}");
    }
    let mut zero = good.clone();
    zero["source"]["port"] = json!(0);
    let (status, body) = post(zero).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        ferry_tests::api::fields(&body).contains(&"source.port"),
        "{body}"
    );

    let (list, _) = app
        .services
        .store()
        .list_migrations(&Default::default())
        .await
        .unwrap();
    assert!(list.is_empty(), "a refused request stored {list:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_page_number_past_the_end_of_u64_is_a_422_not_a_closed_connection() {
    let app = TestApp::spawn().await;
    let token = app.token("pages", &[Scope::MigrationsRead]).await;
    let (status, body) = ferry_tests::api::call(
        &app.client,
        &app.base,
        &token,
        "GET",
        "/migrations?page=18446744073709551615",
        None,
        &[],
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed")),
        "{body}"
    );
    assert_eq!(ferry_tests::api::fields(&body), vec!["page"]);

    let client = TestApp::new_client();
    app.sign_in(
        &client,
        ferry_tests::app::ADMIN_EMAIL,
        ferry_tests::app::ADMIN_PASSWORD,
    )
    .await;
    let resp = client
        .get(app.url("/migrations?page=18446744073709551615"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("pages go up to"));
    app.stop().await;
}

#[tokio::test]
async fn a_handler_that_panics_answers_500_with_a_json_code_and_is_counted() {
    use poem::{Endpoint, Route, get, handler};
    #[handler]
    fn boom() -> &'static str {
        panic!("a bug in a handler")
    }
    let app = TestApp::spawn().await;
    let metrics = ferry::metrics::Metrics::new();
    let routes = ferry::intake::http::guarded(
        Route::new().at("/boom", get(boom)),
        app.services.clone(),
        metrics.clone(),
    );
    let resp = routes
        .get_response(poem::Request::builder().uri_str("/boom").finish())
        .await;
    assert_eq!(resp.status(), 500);
    let body: Value = serde_json::from_str(&resp.into_body().into_string().await.unwrap()).unwrap();
    assert_eq!(body["code"], "internal_error", "{body}");
    let text = metrics.encode().unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("ferry_http_requests_total") && l.contains("status=\"500\"")),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn console_pages_forbid_framing_foreign_scripts_and_caching_and_the_data_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/login")).send().await.unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = header("content-security-policy");
    for part in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(part), "{part} missing from {csp:?}");
    }
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "same-origin");
    let request_id = header("x-request-id");
    assert!(
        request_id.len() == 32 && request_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "every answer names its request for the log: {request_id:?}"
    );

    let mode = |name: &str| {
        std::fs::metadata(app.data_dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        std::fs::metadata(app.data_dir.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    for file in ["ferry.db", "secret.key"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    if app.data_dir.path().join("ferry.db-wal").exists() {
        assert_eq!(mode("ferry.db-wal"), 0o600);
    }

    // Resending a notification that does not exist is a 404, not a 500.
    let client = TestApp::new_client();
    app.sign_in(
        &client,
        ferry_tests::app::ADMIN_EMAIL,
        ferry_tests::app::ADMIN_PASSWORD,
    )
    .await;
    let resp = app
        .post_form(&client, "/outbox", "/outbox/999999/resend", &[])
        .await;
    assert_eq!(resp.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn an_admin_login_is_masked_and_odd_values_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let src = Dovecot::start(Layout::Slash).unwrap();
    src.add_user("jane@old.example", SRC_PW).unwrap();
    src.add_master_user("postmaster@old.example", SRC_PW)
        .unwrap();
    let token = app
        .token("odd", &[Scope::MigrationsWrite, Scope::MigrationsRead])
        .await;
    let post = |body: Value| api(&app, &token, "POST", "/migrations", Some(body));
    let good = request(&app, &src, &src, "jane@new.example");

    let mut boolean = good.clone();
    boolean["source"]["password"] = json!(true);
    let (status, body) = post(boolean).await;
    assert_eq!(status, 400, "a boolean password: {body}");

    let mut far = good.clone();
    far["window"]["start"] = json!("9999-12-01T21:00");
    let (status, body) = post(far).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        ferry_tests::api::fields(&body),
        vec!["window.start"],
        "{body}"
    );

    let mut admin = good.clone();
    admin["source"]["authuser"] = json!("postmaster@old.example");
    let (status, created) = post(admin).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["source"]["authuser"], "p***r@old.example",
        "{created}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_error_of_the_api_is_json_with_a_code_and_a_405_says_what_is_allowed() {
    let app = TestApp::spawn().await;
    let token = app.token("errors", &[Scope::MigrationsRead]).await;
    let client = reqwest::Client::new();
    let send = |method: &str, path: &str, content_type: Option<&str>| {
        let mut req = client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&format!("/api/v1{path}")),
            )
            .bearer_auth(&token);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct).body("hello");
        }
        req.send()
    };
    let cases = [
        ("GET", "/no-such-thing", None, 404, "not_found"),
        // An id beyond i64 does not parse as a path: 400, in JSON.
        (
            "GET",
            "/migrations/99999999999999999999",
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/migrations?page=abc",
            None,
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/migrations",
            Some("text/plain"),
            415,
            "unsupported_media_type",
        ),
    ];
    for (method, path, ct, status, code) in cases {
        let resp = send(method, path, ct).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(body["code"], code, "{method} {path}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    let resp = send("PATCH", "/migrations", None).await.unwrap();
    assert_eq!(resp.status(), 405);
    let allow = resp
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(allow, "GET, POST");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn metrics_behind_a_token_answer_only_that_token() {
    let app = TestApp::spawn_with(Options {
        tweak: Some(|s| s.metrics.token = Some("scrape-secret-4411".to_owned().into())),
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::new();
    let get = |token: Option<&str>| {
        let mut req = client.get(app.url("/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(get(None).await.unwrap().status(), 401);
    assert_eq!(get(Some("scrape-secret-4412")).await.unwrap().status(), 401);
    let ok = get(Some("scrape-secret-4411")).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.text()
            .await
            .unwrap()
            .contains("ferry_http_requests_total")
    );
    app.stop().await;
}

/// Two `ferry serve` processes on one database; 50 requests for one mailbox, half to
/// each: exactly one migration.
async fn two_processes_one_mailbox(database_url: Option<String>) {
    use ferry_tests::serve::FerryProcess;
    ferry_tests::init_crypto();
    let user = "jane@new.example".to_owned();
    let (src, dst) = servers(std::slice::from_ref(&user)).await;
    let mut env: Vec<(&str, String)> = vec![
        ("FERRY_ALLOW_PRIVATE_TARGETS", "true".into()),
        // Any hour, no notice: a window tomorrow keeps every migration scheduled.
        ("FERRY_SCHEDULE__NOTICE_HOURS", "0".into()),
        ("FERRY_SCHEDULE__WEEKEND_NOTICE_HOURS", "0".into()),
        ("FERRY_SCHEDULE__OFF_HOURS_START", "00:00".into()),
        ("FERRY_SCHEDULE__OFF_HOURS_END", "00:00".into()),
    ];
    env.extend(database_url.map(|url| ("DATABASE_URL", url)));
    let first = FerryProcess::start(&env).unwrap();
    let second = first.beside().unwrap();
    let token = first
        .token(&["migrations:read", "migrations:write"])
        .unwrap();
    let window = (Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let body = json!({
        "source": {"host": "127.0.0.1", "port": src.port, "security": "none", "username": "jane@old.example", "password": SRC_PW},
        "destination": {"host": "127.0.0.1", "port": dst.port, "security": "none", "username": user, "password": DST_PW},
        "window": {"start": window, "time_zone": "UTC"},
        "requester_email": "jane@new.example",
    });
    let client = reqwest::Client::new();
    let bases = [first.base(), second.base()];
    let targets = bases.clone().map(|base| (client.clone(), base));
    let answers = post_alternating(&targets, &token, vec![body; REQUESTS]).await;
    assert_eq!(count(&answers, 201, ""), 1, "{answers:?}");
    assert_eq!(
        count(&answers, 409, "active_migration_exists"),
        REQUESTS - 1,
        "{answers:?}"
    );
    let (_, list) = ferry_tests::api::call(
        &client,
        &bases[1],
        &token,
        "GET",
        "/migrations?per_page=100",
        None,
        &[SRC_PW, DST_PW],
    )
    .await;
    assert_eq!(list["total"], 1, "{list}");
}

#[tokio::test]
async fn two_processes_make_one_migration_of_a_mailbox_on_sqlite_and_postgres() {
    two_processes_one_mailbox(None).await;
    let pg = ferry_tests::postgres::PgDatabase::create().unwrap();
    two_processes_one_mailbox(Some(pg.url())).await;
}
