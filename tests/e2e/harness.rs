//! The harness itself works: Dovecot speaks real IMAP on both listeners and both
//! layouts, and what is appended reads back byte for byte.

use chrono::{DateTime, TimeZone, Utc};
use ferry_tests::dovecot::{Dovecot, Layout};
use ferry_tests::imap::{self, SeedMessage};

fn message(n: usize) -> Vec<u8> {
    format!(
        "From: Ana <ana@old.example>\r\nTo: Bob <bob@old.example>\r\nSubject: Test {n} \u{e9}t\u{e9}\r\n\
         Message-ID: <{n}@old.example>\r\nDate: Mon, 2 Mar 2020 10:00:00 +0100\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nBody {n}\r\n.\r\n..leading dots\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn dovecot_keeps_appended_messages_byte_for_byte_with_flags_and_dates() {
    let server = Dovecot::start(Layout::Slash).unwrap();
    server.add_user("jane", "secret-jane").unwrap();
    let mut session = imap::login(&server, "jane", "secret-jane").await.unwrap();
    let date = chrono::FixedOffset::east_opt(3600)
        .unwrap()
        .with_ymd_and_hms(2019, 5, 17, 8, 30, 0)
        .unwrap();
    let seeded: Vec<SeedMessage> = (0..3)
        .map(|n| SeedMessage {
            body: message(n),
            flags: if n == 1 {
                vec!["\\Seen".into(), "$Important".into()]
            } else {
                vec![]
            },
            internal_date: Some(date),
        })
        .collect();
    imap::seed(&mut session, "Archive/2019", &seeded)
        .await
        .unwrap();
    let back = imap::read_folder(&mut session, "Archive/2019")
        .await
        .unwrap();
    assert_eq!(back.len(), 3);
    for (sent, got) in seeded.iter().zip(&back) {
        assert_eq!(sent.body, got.body, "bytes differ");
        assert_eq!(got.internal_date, date.with_timezone(&Utc) as DateTime<Utc>);
    }
    assert_eq!(
        back[1].flags,
        vec!["$Important".to_owned(), "\\Seen".to_owned()]
    );
    let folders = imap::folders(&mut session).await.unwrap();
    for f in [
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
        "Junk",
        "Archive",
        "Archive/2019",
    ] {
        assert!(
            folders.contains(&f.to_owned()),
            "{f} missing from {folders:?}"
        );
    }
    session.logout().await.unwrap();
}

#[tokio::test]
async fn dovecot_with_a_dot_separator_and_inbox_prefix_nests_under_inbox() {
    let server = Dovecot::start(Layout::DotInboxPrefix).unwrap();
    server.add_user("ana", "secret-ana").unwrap();
    let mut session = imap::login(&server, "ana", "secret-ana").await.unwrap();
    let folder = server.folder("Projects/Ferry");
    assert_eq!(folder, "INBOX.Projects.Ferry");
    imap::seed(
        &mut session,
        &folder,
        &[SeedMessage {
            body: message(7),
            flags: vec![],
            internal_date: None,
        }],
    )
    .await
    .unwrap();
    let folders = imap::folders(&mut session).await.unwrap();
    assert!(folders.contains(&"INBOX.Sent".to_owned()), "{folders:?}");
    assert!(
        folders.contains(&"INBOX.Projects.Ferry".to_owned()),
        "{folders:?}"
    );
    assert_eq!(
        imap::read_folder(&mut session, &folder).await.unwrap()[0].body,
        message(7)
    );
}

#[tokio::test]
async fn dovecot_speaks_implicit_tls_with_a_certificate_only_the_test_ca_vouches_for() {
    let server = Dovecot::start(Layout::Slash).unwrap();
    server.add_user("tls", "secret-tls").unwrap();
    let mut session = imap::login_tls(&server, "tls", "secret-tls").await.unwrap();
    assert!(
        imap::folders(&mut session)
            .await
            .unwrap()
            .contains(&"INBOX".to_owned())
    );

    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.tls_port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let refused = ferry_tests::tls_client::system_connector()
        .unwrap()
        .connect(name, tcp)
        .await;
    let err = refused
        .expect_err("the system roots do not know the test CA")
        .to_string();
    assert!(
        err.contains("UnknownIssuer") || err.contains("unknown issuer"),
        "{err}"
    );
}

#[tokio::test]
async fn dovecot_refuses_a_wrong_password_and_lets_a_master_user_in() {
    let server = Dovecot::start(Layout::Slash).unwrap();
    server.add_user("jane", "right-password").unwrap();
    server.add_master_user("admin", "master-secret").unwrap();
    assert!(
        imap::login(&server, "jane", "wrong-password")
            .await
            .is_err()
    );
    let mut session = imap::login(&server, "jane*admin", "master-secret")
        .await
        .unwrap();
    imap::seed(
        &mut session,
        "INBOX",
        &[SeedMessage {
            body: message(1),
            flags: vec![],
            internal_date: None,
        }],
    )
    .await
    .unwrap();
    let mut own = imap::login(&server, "jane", "right-password")
        .await
        .unwrap();
    assert_eq!(
        imap::read_folder(&mut own, "INBOX").await.unwrap()[0].body,
        message(1)
    );
}
