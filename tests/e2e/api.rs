//! The REST API's door: health, metrics, the OpenAPI document, and bearer tokens with
//! scopes, each refusal with its stable code.

use ferry::domain::{Actor, Scope, Scopes};
use ferry_tests::app::TestApp;
use secrecy::ExposeSecret;
use serde_json::Value;

async fn token(app: &TestApp, name: &str, scopes: &[Scope]) -> String {
    let (_, secret) = app
        .services
        .create_token(&Actor::Cli, name, Scopes::new(scopes.iter().copied()))
        .await
        .unwrap();
    secret.expose_secret().to_owned()
}

async fn get(app: &TestApp, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = app.client.get(app.url(path));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn health_and_metrics_answer_without_a_token() {
    let app = TestApp::spawn().await;
    let (status, body) = get(&app, "/healthz", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let _ = app.client.get(app.url("/login")).send().await.unwrap();
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ferry_http_requests_total{method=\"GET\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_outbox_messages{status=\"pending\"} 1"),
        "the admin's welcome email: {metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn the_openapi_document_and_its_page_are_served() {
    let app = TestApp::spawn().await;
    let (status, spec) = get(&app, "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/whoami"]["get"].is_object(), "{spec}");
    assert!(spec["paths"]["/audit-events"]["get"].is_object());
    assert_eq!(
        spec["components"]["securitySchemes"]["TokenAuth"]["scheme"],
        "bearer"
    );
    let docs = app
        .client
        .get(app.url("/api/v1/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger"), "an API documentation page");
}

#[tokio::test]
async fn tokens_are_checked_and_scoped_with_stable_error_codes() {
    let app = TestApp::spawn().await;
    let reader = token(&app, "reader", &[Scope::MigrationsRead]).await;
    let auditor = token(&app, "auditor", &[Scope::AuditRead]).await;

    let (status, body) = get(&app, "/api/v1/whoami", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("missing_token"))
    );
    let (status, body) = get(&app, "/api/v1/whoami", Some("fy_not-a-real-token")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );

    let (status, body) = get(&app, "/api/v1/whoami", Some(&reader)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"name": "reader", "scopes": ["migrations:read"]})
    );

    let (status, body) = get(&app, "/api/v1/audit-events", Some(&reader)).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "insufficient_scope");
    assert_eq!(body["required_scope"], "audit:read");

    let (status, body) = get(
        &app,
        "/api/v1/audit-events?action=token.&limit=1",
        Some(&auditor),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    assert_eq!(body["events"][0]["action"], "token.created");
    assert_eq!(
        body["events"][0]["detail"]["name"], "auditor",
        "newest first"
    );
    let before = body["next_before"].as_i64().expect("another page");
    let (_, older) = get(
        &app,
        &format!("/api/v1/audit-events?action=token.&before={before}"),
        Some(&auditor),
    )
    .await;
    assert_eq!(older["events"][0]["detail"]["name"], "reader");
    assert!(older["next_before"].is_null());

    let (status, body) = get(&app, "/api/v1/audit-events?limit=many", Some(&auditor)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")));

    let tokens = app.services.store.list_tokens().await.unwrap();
    assert!(
        tokens.iter().all(|t| t.last_used_at.is_some()),
        "use is noted"
    );
    // A revoked token is refused.
    let tx = app.services.store.begin().await.unwrap();
    tx.revoke_token(tokens[0].id, chrono::Utc::now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let revoked = if tokens[0].name == "reader" {
        &reader
    } else {
        &auditor
    };
    let (status, body) = get(&app, "/api/v1/whoami", Some(revoked)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );
}
