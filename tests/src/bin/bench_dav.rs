//! `scripts/bench-dav`: contacts and calendars at scale. ITEMS (default 10,000) cards
//! and as many events are written as files and imported by Ferry (release build, in
//! this process, SQLite) into Radicale; then the address book goes from Radicale to
//! Xandikos. Each is set against a plain loop of PUTs with curl (one curl process,
//! its connection kept, the same items) into the same server: Ferry's items per
//! second, curl's, their ratio, and this process's peak RSS (Ferry and the harness).

use std::io::Write;
use std::time::{Duration, Instant};

use ferry::domain::Scope;
use ferry_tests::api::call;
use ferry_tests::app::TestApp;
use ferry_tests::dav::{DavServer, Dialect};
use serde_json::{Value, json};

const JANE: (&str, &str) = ("jane", "bench-dav-pw");

fn items() -> usize {
    std::env::var("ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn card(i: usize) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bench-card-{i}\r\nFN:Person {i}\r\nN:{i};Person;;;\r\n\
         EMAIL;TYPE=work:person{i}@work.example\r\nEMAIL;TYPE=home:person{i}@home.example\r\n\
         TEL;TYPE=cell:+49 30 {i:07}\r\nADR;TYPE=home:;;Street {i};Berlin;;10115;Germany\r\n\
         CATEGORIES:bench,people\r\nNOTE:A note about person {i}\r\nEND:VCARD\r\n"
    )
}

fn event(i: usize) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Ferry bench//EN\r\nBEGIN:VEVENT\r\n\
         UID:bench-event-{i}\r\nDTSTAMP:20261201T090000Z\r\nDTSTART:20270101T{:02}0000Z\r\n\
         DURATION:PT1H\r\nSUMMARY:Meeting {i}\r\nDESCRIPTION:About item {i}\r\n\
         BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n",
        i % 24
    )
}

/// A migration of `body` started now and followed to its end: the wall time.
async fn migrate(app: &TestApp, token: &str, body: Value) -> Duration {
    let start = Instant::now();
    let (status, m) = call(
        &app.client,
        &app.base,
        token,
        "POST",
        "/migrations",
        Some(body),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{m}");
    let id = m["id"].as_i64().expect("an id");
    loop {
        let (_, m) = call(
            &app.client,
            &app.base,
            token,
            "GET",
            &format!("/migrations/{id}"),
            None,
            &[],
        )
        .await;
        match m["status"].as_str() {
            Some("completed") => {
                let pass = &m["passes"][0];
                assert_eq!(pass["failed"], 0, "{m:#}");
                return start.elapsed();
            }
            Some("failed" | "cancelled") => panic!("{m:#}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Uploads `text` as `name`: its id.
async fn upload(app: &TestApp, token: &str, name: &str, text: String) -> Value {
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(token)
        .header("Content-Type", "application/octet-stream")
        .header("X-Filename", name)
        .body(text)
        .send()
        .await
        .expect("Ferry answers");
    assert_eq!(resp.status().as_u16(), 201);
    resp.json::<Value>().await.expect("JSON")["id"].clone()
}

/// One curl process PUTting every item into `collection`, its connection kept: the
/// wall time.
fn curl_loop(collection: &str, items: &[(String, String)], content_type: &str) -> Duration {
    let dir = tempfile::tempdir().expect("a directory");
    let mut config = std::fs::File::create(dir.path().join("curl.conf")).expect("a file");
    for (name, data) in items {
        let path = dir.path().join(name);
        std::fs::write(&path, data).expect("an item file");
        writeln!(
            config,
            "upload-file = \"{}\"\nurl = \"{collection}{name}\"\noutput = /dev/null",
            path.display()
        )
        .expect("written");
    }
    drop(config);
    let start = Instant::now();
    let status = std::process::Command::new("curl")
        // No `Expect: 100-continue`: Radicale's server never answers it, and curl
        // would wait a second before each item.
        .args([
            "-s",
            "-f",
            "-u",
            &format!("{}:{}", JANE.0, JANE.1),
            "-H",
            "Expect:",
            "-H",
        ])
        .arg(format!("Content-Type: {content_type}"))
        .arg("-K")
        .arg(dir.path().join("curl.conf"))
        .status()
        .expect("curl runs");
    assert!(status.success(), "curl's PUTs failed");
    start.elapsed()
}

fn line(what: &str, n: usize, ferry: Duration, curl: Duration) {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{what}: {n} items, Ferry {:.1} s ({:.0} items/s), curl PUT loop {:.1} s ({:.0} items/s), ratio {:.2}",
        ferry.as_secs_f64(),
        rate(ferry),
        curl.as_secs_f64(),
        rate(curl),
        ferry.as_secs_f64() / curl.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let n = items();
    let radicale = DavServer::start(Dialect::Radicale, &[JANE]).expect("Radicale");
    let xandikos = DavServer::start(Dialect::Xandikos, &[]).expect("Xandikos");
    radicale.open_home(JANE).await.expect("Radicale's home");
    xandikos.open_home(JANE).await.expect("Xandikos's home");
    let app = TestApp::spawn().await;
    let token = app
        .token(
            "bench",
            &[
                Scope::MigrationsRead,
                Scope::MigrationsWrite,
                Scope::MigrationsOverride,
            ],
        )
        .await;
    let side =
        |s: &DavServer| json!({ "dav_url": s.url(), "username": JANE.0, "password": JANE.1 });
    let cards: Vec<(String, String)> = (0..n)
        .map(|i| (format!("bench-card-{i}.vcf"), card(i)))
        .collect();
    let events: Vec<(String, String)> = (0..n)
        .map(|i| (format!("bench-event-{i}.ics"), event(i)))
        .collect();

    // Contacts: a file into Radicale, and curl into another address book there.
    let id = upload(
        &app,
        &token,
        "cards.vcf",
        cards.iter().map(|(_, c)| c.as_str()).collect(),
    )
    .await;
    let ferry = migrate(
        &app,
        &token,
        json!({
            "kind": "contacts", "source": { "upload_id": id }, "destination": side(&radicale),
            "requester_email": "jane@new.example",
        }),
    )
    .await;
    let book = radicale
        .make_collection(JANE, "curl-cards", "curl", false)
        .await
        .expect("MKCOL");
    line(
        "contacts, .vcf → Radicale",
        n,
        ferry,
        curl_loop(&book, &cards, "text/vcard"),
    );

    // Calendars: the same with events.
    let id = upload(&app, &token, "events.ics", {
        let mut ics =
            String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Ferry bench//EN\r\n");
        for i in 0..n {
            let e = event(i);
            let body = e
                .split("BEGIN:VEVENT")
                .nth(1)
                .and_then(|b| b.split("END:VCALENDAR").next())
                .unwrap_or_default();
            ics.push_str("BEGIN:VEVENT");
            ics.push_str(body);
        }
        ics.push_str("END:VCALENDAR\r\n");
        ics
    })
    .await;
    let ferry = migrate(
        &app,
        &token,
        json!({
            "kind": "calendars", "source": { "upload_id": id }, "destination": side(&radicale),
            "requester_email": "jane@new.example",
        }),
    )
    .await;
    let cal = radicale
        .make_collection(JANE, "curl-events", "curl", true)
        .await
        .expect("MKCOL");
    line(
        "calendars, .ics → Radicale",
        n,
        ferry,
        curl_loop(&cal, &events, "text/calendar"),
    );

    // Server to server: Radicale's address books (the imported one) into Xandikos;
    // curl writes the same cards into Xandikos.
    let ferry = migrate(
        &app,
        &token,
        json!({
            "kind": "contacts", "source": side(&radicale), "destination": side(&xandikos),
            "requester_email": "jane@new.example",
        }),
    )
    .await;
    let copied = 2 * n; // the imported address book and curl's
    let book = xandikos
        .make_collection(JANE, "curl-cards-x", "curl", false)
        .await
        .expect("MKCOL");
    let doubled: Vec<(String, String)> = cards
        .iter()
        .chain(cards.iter())
        .enumerate()
        .map(|(i, (_, c))| {
            (
                format!("c{i}.vcf"),
                c.replace("UID:bench-card-", &format!("UID:{}-", i / n)),
            )
        })
        .collect();
    line(
        "contacts, Radicale → Xandikos",
        copied,
        ferry,
        curl_loop(&book, &doubled, "text/vcard"),
    );
    println!(
        "peak RSS (Ferry and this harness): {} MiB",
        ferry_tests::peak_rss() / (1024 * 1024)
    );
    app.stop().await;
}
