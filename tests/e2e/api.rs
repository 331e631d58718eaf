//! The REST API's door: health, metrics, the OpenAPI document, and bearer tokens with
//! scopes, each refusal with its stable code.

use ferry::domain::Scope;
use ferry_tests::app::TestApp;
use serde_json::{Value, json};

async fn token(app: &TestApp, name: &str, scopes: &[Scope]) -> String {
    app.token(name, scopes).await
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
    // The options are listed with their values, the same words in a request and in
    // the answer.
    let schemas = &spec["components"]["schemas"];
    for (schema, values) in [
        ("DuplicatePolicy", json!(["skip", "overwrite", "create"])),
        ("Mode", json!(["full", "folders_only"])),
        ("FolderStrategy", json!(["all", "standard", "inbox_only"])),
        ("Security", json!(["ssl", "starttls", "none"])),
    ] {
        assert_eq!(
            schemas[schema]["enum"], values,
            "{schema}: {}",
            schemas[schema]
        );
    }
    let refers = |object: &str, field: &str| {
        let property = &schemas[object]["properties"][field];
        let text = property.to_string();
        assert!(
            text.contains("#/components/schemas/"),
            "{object}.{field}: {property}"
        );
        text
    };
    assert!(refers("MigrationRequestBody", "duplicates").contains("DuplicatePolicy"));
    assert!(refers("MigrationBody", "duplicates").contains("DuplicatePolicy"));
    assert!(refers("ServerBody", "security").contains("Security"));
    assert!(refers("AccountBody", "security").contains("Security"));
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

    // A parameter that does not parse is a field error naming it.
    let (status, body) = get(&app, "/api/v1/audit-events?limit=many", Some(&auditor)).await;
    assert_eq!(
        (
            status,
            body["code"].as_str(),
            body["fields"][0]["field"].as_str()
        ),
        (422, Some("validation_failed"), Some("limit")),
        "{body}"
    );

    let tokens = app.services.store().list_tokens().await.unwrap();
    assert!(
        tokens.iter().all(|t| t.last_used_at.is_some()),
        "use is noted"
    );
    // A revoked token is refused.
    let tx = app.services.store().begin().await.unwrap();
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

#[tokio::test]
async fn settings_are_read_and_changed_with_the_settings_scope() {
    let app = TestApp::spawn().await;
    let reader = token(&app, "reader", &[Scope::MigrationsRead]).await;
    let (status, body) = get(&app, "/api/v1/settings", Some(&reader)).await;
    assert_eq!(
        (status, body["required_scope"].as_str()),
        (403, Some("settings:admin")),
        "{body}"
    );
    let admin = token(&app, "provisioning", &[Scope::SettingsAdmin]).await;
    let patch = |body: Value| {
        let (app, admin) = (&app, admin.clone());
        async move {
            ferry_tests::api::call(
                &app.client,
                &app.base,
                &admin,
                "PATCH",
                "/settings",
                Some(body),
                &["s3cret-smtp"],
            )
            .await
        }
    };
    let setting = |body: &Value, key: &str| {
        body["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} in {body}"))
    };
    let (status, body) = get(&app, "/api/v1/settings", Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(setting(&body, "capacity.max_concurrent")["value"], "4");
    assert_eq!(setting(&body, "smtp.url")["is_set"], false);

    // All or nothing: a key that cannot change and a bad value are each named.
    let (status, body) = patch(serde_json::json!({
        "capacity.max_concurrent": 0,
        "provider.mx_patterns": ["*.provider.test"],
        "bind": "0.0.0.0:80",
    }))
    .await;
    assert_eq!(status, 422, "{body}");
    let fields = ferry_tests::api::fields(&body);
    assert!(fields.contains(&"settings"), "{body}");
    let (status, body) = patch(serde_json::json!({ "capacity.max_concurrent": 0 })).await;
    assert_eq!(status, 422);
    assert_eq!(body["fields"][0]["field"], "capacity.max_concurrent");
    assert!(
        body["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("from 1 to 256")
    );
    assert_eq!(app.services.settings().capacity.max_concurrent, 4);

    let (status, body) = patch(serde_json::json!({
        "capacity.max_concurrent": 9,
        "provider.mx_hosts": ["10 mx1.provider.test", "20 mx2.provider.test"],
        "smtp.url": "smtp://ferry:s3cret-smtp@127.0.0.1:2525",
    }))
    .await;
    assert_eq!(status, 200, "{body}");
    let c = setting(&body, "capacity.max_concurrent");
    assert_eq!(
        (c["value"].as_str(), c["file_value"].as_str()),
        (Some("9"), Some("4"))
    );
    assert_eq!(c["changed_by"], "token:provisioning");
    assert_eq!(
        setting(&body, "provider.mx_hosts")["value"],
        "10 mx1.provider.test\n20 mx2.provider.test"
    );
    let url = setting(&body, "smtp.url");
    assert_eq!(
        (url["value"].clone(), url["is_set"].clone()),
        (Value::Null, Value::Bool(true))
    );
    assert_eq!(app.services.settings().capacity.max_concurrent, 9);
    assert!(app.services.dispatcher().is_configured());

    let (status, body) = patch(serde_json::json!({ "smtp.url": null })).await;
    assert_eq!(status, 200);
    assert_eq!(setting(&body, "smtp.url")["is_set"], false);
    assert!(!app.services.dispatcher().is_configured());

    let delete = |path: &str| {
        app.client
            .delete(app.url(path))
            .bearer_auth(admin.clone())
            .send()
    };
    let resp = delete("/api/v1/settings/capacity.max_concurrent")
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(app.services.settings().capacity.max_concurrent, 4);
    let resp = delete("/api/v1/settings/bind").await.unwrap();
    assert_eq!(resp.status(), 404);

    let events = app.audit("settings.").await;
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("token:provisioning", "settings.reset"),
            ("token:provisioning", "settings.changed"),
            ("token:provisioning", "settings.changed"),
        ]
    );
    assert!(
        !events
            .iter()
            .any(|e| e.detail.to_string().contains("s3cret-smtp")),
        "no secret in the audit log"
    );
    app.stop().await;
}
