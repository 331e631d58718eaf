//! The `ferry` command as an administrator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::app::{TestApp, ferry_binary};

#[tokio::test]
async fn serve_creates_its_data_directory_and_prints_the_first_admin_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = || {
        Command::new(ferry_binary())
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FERRY_DATA_DIR", &data)
            .env("FERRY_BIND", "127.0.0.1:0")
            .env("FERRY_LOG__FILTER", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let read_until_listening = |child: &mut std::process::Child| {
        let stdout = child.stdout.take().unwrap();
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("Ferry is listening on ");
            lines.push(line);
            if done || Instant::now() > deadline {
                break;
            }
        }
        lines
    };

    let mut first = run();
    let lines = read_until_listening(&mut first);
    ferry_tests::net::terminate(&mut first);
    let text = lines.join("\n");
    assert!(
        text.contains("Ferry created the first admin account"),
        "{text}"
    );
    let email = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("email:"))
        .unwrap()
        .trim()
        .to_owned();
    let password = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(email, "admin@ferry.localhost");
    assert_eq!(password.len(), 20);
    assert!(data.join("ferry.db").exists());
    assert!(data.join("secret.key").exists());

    // Second start: no new admin, nothing printed about one; the password still works.
    let mut second = run();
    let lines = read_until_listening(&mut second);
    let listening = lines
        .last()
        .unwrap()
        .trim_start_matches("Ferry is listening on ")
        .to_owned();
    assert!(!lines.join("\n").contains("first admin"), "{lines:?}");
    let client = TestApp::new_client();
    let login = client
        .get(format!("{listening}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = ferry_tests::app::csrf_from(&login).unwrap();
    let resp = client
        .post(format!("{listening}/login"))
        .form(&[
            ("email", email.as_str()),
            ("password", password.as_str()),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    ferry_tests::net::terminate(&mut second);
}

#[tokio::test]
async fn token_create_prints_only_the_token_and_the_api_accepts_it() {
    let app = TestApp::spawn().await;
    let out = app
        .ferry_command()
        .args([
            "token",
            "create",
            "--name",
            "ci",
            "--scope",
            "migrations:read",
            "--scope",
            "audit:read",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the token on stdout: {stdout:?}");
    let token = lines[0];
    assert!(token.starts_with("fy_"));
    let resp = app
        .client
        .get(app.url("/api/v1/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["scopes"],
        serde_json::json!(["migrations:read", "audit:read"])
    );

    let bad = app
        .ferry_command()
        .args(["token", "create", "--name", "x", "--scope", "mail:all"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--scope: \"mail:all\" is not a scope"),
        "{err}"
    );
    let listed = app
        .ferry_command()
        .args(["token", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("ci\t") && !listed.contains(token),
        "{listed}"
    );
}

#[tokio::test]
async fn user_add_and_seed_work_from_the_shell_and_seed_is_idempotent() {
    let app = TestApp::spawn().await;
    let out = app
        .ferry_command()
        .args([
            "user",
            "add",
            "--email",
            "ops@provider.test",
            "--name",
            "Ops",
            "--role",
            "admin",
        ])
        .env("FERRY_USER_PASSWORD", "ops password long enough")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        app.sign_in(
            &TestApp::new_client(),
            "ops@provider.test",
            "ops password long enough"
        )
        .await
        .status(),
        303
    );

    let dup = app
        .ferry_command()
        .args([
            "user",
            "add",
            "--email",
            "ops@provider.test",
            "--name",
            "Ops",
        ])
        .env("FERRY_USER_PASSWORD", "ops password long enough")
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(
        String::from_utf8_lossy(&dup.stderr)
            .contains("--email: an account with ops@provider.test already exists")
    );

    let first = app.ferry_command().arg("seed").output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first = String::from_utf8_lossy(&first.stdout).to_string();
    assert_eq!(first.matches("created ").count(), 3, "{first}");
    let second = app.ferry_command().arg("seed").output().unwrap();
    let second = String::from_utf8_lossy(&second.stdout).to_string();
    assert_eq!(second.matches("created ").count(), 0, "{second}");
    assert_eq!(second.matches("kept ").count(), 3, "{second}");
    assert_eq!(app.services.store().count_users().await.unwrap(), 5);
}

#[test]
fn help_explains_every_command() {
    let out = Command::new(ferry_binary()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "user", "token", "seed"] {
        assert!(help.contains(cmd), "{cmd} missing from {help}");
    }
    let out = Command::new(ferry_binary())
        .args(["token", "create", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations:override"));
}

#[test]
fn a_wrong_word_in_a_migrate_flag_is_refused_with_the_words_it_takes() {
    let out = Command::new(ferry_binary())
        .args([
            "migrate",
            "--source-host",
            "127.0.0.1",
            "--source-user",
            "a@old.example",
            "--dest-host",
            "127.0.0.1",
            "--dest-user",
            "a@new.example",
            "--duplicates",
            "sometimes",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 1, "anything else": 2 means a refused login to `ferry migrate`'s callers.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--duplicates"), "{stderr}");
    for word in ["skip", "overwrite", "create"] {
        assert!(stderr.contains(word), "{word} in {stderr}");
    }
    let out = Command::new(ferry_binary())
        .args(["migrate", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("inbox-only") && help.contains("folders-only"),
        "{help}"
    );
}
