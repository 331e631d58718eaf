//! What the API does before an endpoint runs: `Idempotency-Key` on a POST makes a
//! retried request answer its first answer without doing anything twice (and a key
//! reused for another request is refused), and a token's writes are limited per minute
//! with 429 and `Retry-After`.

use ferry::domain::Scope;
use ferry_tests::app::{Options, TestApp};
use ferry_tests::dovecot::{Dovecot, Layout};
use serde_json::json;

async fn post(
    app: &TestApp,
    token: &str,
    path: &str,
    key: Option<&str>,
    body: &serde_json::Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v1{path}", app.base))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_post_do_nothing_twice() {
    let app = TestApp::spawn().await;
    let dst = Dovecot::start(Layout::Slash).unwrap();
    dst.add_user("jane@new.example", "pw-1").unwrap();
    let token = app
        .token(
            "panel",
            &[
                Scope::MigrationsWrite,
                Scope::MigrationsRead,
                Scope::MigrationsOverride,
            ],
        )
        .await;
    let side = |user: &str| json!({"host": "127.0.0.1", "port": dst.port, "security": "none", "username": user, "password": "pw-1"});
    let request = json!({
        "source": side("jane@new.example"),
        "destination": side("jane@new.example"),
        "requester_email": "jane@new.example",
    });
    let (first, headers, body) =
        post(&app, &token, "/migrations", Some("order-7731"), &request).await;
    assert_eq!(first, 201, "{body}");
    assert!(headers.get("Idempotent-Replayed").is_none());
    let (again, headers, replayed) =
        post(&app, &token, "/migrations", Some("order-7731"), &request).await;
    assert_eq!(
        (again, replayed.as_str()),
        (201, body.as_str()),
        "the first answer, again"
    );
    assert_eq!(headers["Idempotent-Replayed"], "true");
    let (_, total) = app
        .services
        .list_migrations(&ferry::store::MigrationFilter {
            per_page: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, 1, "one migration for one key");

    // The same key with another request, and a key that is not one.
    let mut other = request.clone();
    other["requester_email"] = json!("ops@new.example");
    let (status, _, body) = post(&app, &token, "/migrations", Some("order-7731"), &other).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("idempotency_key_reused"), "{body}");
    let (status, _, body) = post(
        &app,
        &token,
        "/migrations",
        Some("bad key with spaces"),
        &request,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    // Another token's key is its own.
    let other_token = app
        .token(
            "other",
            &[Scope::MigrationsWrite, Scope::MigrationsOverride],
        )
        .await;
    let (status, _, body) = post(
        &app,
        &other_token,
        "/migrations",
        Some("order-7731"),
        &request,
    )
    .await;
    assert_eq!(
        status, 409,
        "its own request, refused as a second migration of the mailbox: {body}"
    );
    assert!(body.contains("active_migration_exists"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_token_gets_429_with_retry_after_beyond_its_writes_per_minute() {
    let app = TestApp::spawn_with(Options {
        tweak: Some(|s| s.limits.api_writes_per_minute = 3),
        ..Default::default()
    })
    .await;
    let token = app.token("busy", &[Scope::MigrationsWrite]).await;
    let probe = json!({"host": "", "username": "x"});
    for n in 0..3 {
        let (status, _, body) =
            post(&app, &token, "/migrations/test-connection", None, &probe).await;
        assert_ne!(status, 429, "write {n}: {body}");
    }
    let (status, headers, body) =
        post(&app, &token, "/migrations/test-connection", None, &probe).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("\"rate_limited\""), "{body}");
    let wait: u64 = headers["Retry-After"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Reads are not writes; another token has its own count.
    let (status, _, _) = {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/whoami", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), (), ())
    };
    assert_eq!(status, 200);
    let other = app.token("calm", &[Scope::MigrationsWrite]).await;
    let (status, _, _) = post(&app, &other, "/migrations/test-connection", None, &probe).await;
    assert_ne!(status, 429);
    app.stop().await;
}
