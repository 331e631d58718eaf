//! `scripts/bench-tickets`: how fast emails queued in the support mailbox become
//! tickets. 1,000 emails (one in ten with a five-row list attached, hosts given as
//! addresses so no DNS is asked) wait in a Dovecot INBOX; Ferry (SQLite, in this
//! process) reads, stores and files them away, acknowledging each new ticket. The peer
//! is the same IMAP work and nothing else: Python's imaplib fetching each email and
//! moving it to another folder, on the same server, the same 1,000 emails.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry::domain::Actor;
use ferry_tests::app::TestApp;
use ferry_tests::dovecot::{Dovecot, Layout, Options};
use ferry_tests::imap::{SeedMessage, login, read_folder, seed};
use ferry_tests::mime::Email;

const EMAILS: usize = 1000;
const USER: &str = "support@provider.test";
const PASSWORD: &str = "bench-desk-pw";

const PEER: &str = r#"
import imaplib, sys, time
port = int(sys.argv[1])
m = imaplib.IMAP4("127.0.0.1", port)
m.login(sys.argv[2], sys.argv[3])
m.create("Peer")
m.select("INBOX")
start = time.monotonic()
typ, data = m.uid("SEARCH", None, "UNDELETED")
n = 0
for uid in data[0].split():
    typ, body = m.uid("FETCH", uid, "(BODY.PEEK[])")
    assert typ == "OK" and body[0] is not None
    typ, _ = m.uid("MOVE", uid, "Peer")
    assert typ == "OK"
    n += 1
print(n, time.monotonic() - start)
m.logout()
"#;

fn emails() -> Vec<SeedMessage> {
    (0..EMAILS)
        .map(|i| {
            let mut email = Email::new(
                &format!("customer{i}@customer.example"),
                &format!("Please move mailbox {i}"),
                &format!("bench-{i}@customer.example"),
                "Hello,\n\nplease move our mail; the details are attached or follow.\n\nThanks",
            );
            if i % 10 == 0 {
                let mut list = "source email;source password;source IMAP server\n".to_owned();
                for r in 0..5 {
                    list.push_str(&format!("u{i}-{r}@old.example;pw-{r};192.0.2.10:993\n"));
                }
                email = email.file("mailboxes.csv", "text/csv", list.into_bytes());
            }
            SeedMessage {
                body: email.bytes(),
                flags: Vec::new(),
                internal_date: None,
            }
        })
        .collect()
}

async fn count(server: &Dovecot, folder: &str) -> usize {
    let mut session = login(server, USER, PASSWORD).await.expect("a login");
    let n = read_folder(&mut session, folder)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let _ = session.logout().await;
    n
}

#[tokio::main]
async fn main() {
    let server = Dovecot::start_with(Options {
        layout: Layout::Slash,
        fsync: false,
        ..Default::default()
    })
    .expect("Dovecot");
    server.add_user(USER, PASSWORD).expect("a user");
    let batch = emails();
    let bytes: usize = batch.iter().map(|m| m.body.len()).sum();

    // The peer: the same IMAP work, nothing kept.
    let mut session = login(&server, USER, PASSWORD).await.expect("a login");
    seed(&mut session, "INBOX", &batch).await.expect("APPEND");
    let _ = session.logout().await;
    let out = Command::new("python3")
        .args(["-c", PEER, &server.port.to_string(), USER, PASSWORD])
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&out.stdout);
    let mut parts = said.split_whitespace();
    let moved: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let peer: f64 = parts
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    assert_eq!(
        moved,
        EMAILS,
        "the peer moved every email: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Ferry.
    let mut session = login(&server, USER, PASSWORD).await.expect("a login");
    seed(&mut session, "INBOX", &batch).await.expect("APPEND");
    let _ = session.logout().await;
    let app = TestApp::spawn().await;
    let form: HashMap<String, String> = [
        ("support.enabled", "on".to_owned()),
        ("support.host", "127.0.0.1".to_owned()),
        ("support.port", server.port.to_string()),
        ("support.security", "none".to_owned()),
        ("support.username", USER.to_owned()),
        ("support.password", PASSWORD.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let start = Instant::now();
    app.services
        .change_settings(&Actor::Cli, &form, None)
        .await
        .expect("the settings");
    loop {
        if app.services.support_status().emails as usize >= EMAILS {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "stuck: {:?}",
            app.services.support_status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ferry = start.elapsed().as_secs_f64();
    assert_eq!(count(&server, "INBOX").await, 0);
    assert_eq!(count(&server, "Ferry/Processed").await, EMAILS);
    let (_, tickets) = app
        .services
        .store()
        .list_tickets(&ferry::store::TicketFilter {
            per_page: 1,
            ..Default::default()
        })
        .await
        .expect("the tickets");
    assert_eq!(tickets as usize, EMAILS, "one ticket per email");
    let acks = app
        .services
        .store()
        .count_outbox(ferry::domain::DeliveryStatus::Pending)
        .await
        .expect("the outbox");
    println!(
        "{EMAILS} emails ({:.1} MB, {} with a list): Ferry {ferry:.2} s ({:.0} emails/s, {tickets} tickets, {acks} acknowledgements queued), imaplib fetch+move {peer:.2} s ({:.0} emails/s); Ferry/imaplib {:.2}",
        bytes as f64 / 1e6,
        EMAILS / 10,
        EMAILS as f64 / ferry,
        EMAILS as f64 / peer,
        ferry / peer
    );
    app.stop().await;
}
