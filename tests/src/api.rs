//! Calls to Ferry's REST API as a program makes them, for the tests of any Ferry (in
//! process or a child process).

use serde_json::Value;

/// The fields a 422 answer names, in order.
pub fn fields(body: &Value) -> Vec<&str> {
    body["fields"]
        .as_array()
        .map(|fs| fs.iter().filter_map(|f| f["field"].as_str()).collect())
        .unwrap_or_default()
}

/// `method path` under `{base}/api/v1` with `token`, and the JSON body when given.
/// Answers the status and the JSON (`Null` when there is none). Fails the test when
/// the answer holds one of `secrets`: no password ever leaves Ferry.
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    secrets: &[&str],
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let req = client
        .request(method, format!("{base}/api/v1{path}"))
        .bearer_auth(token);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.send().await.expect("Ferry answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("a body");
    for secret in secrets {
        assert!(!text.contains(secret), "a secret in an answer: {text}");
    }
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
