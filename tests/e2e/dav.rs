//! The CardDAV/CalDAV connector against two real dialects, Radicale and Xandikos:
//! discovery from the server's root (`.well-known`, the principal, the home set), the
//! address books and calendars with their names and item counts, a refused login.

use ferry::connectors::dav::{self, Holds};
use ferry::connectors::imap::ConnectError;
use ferry::connectors::net::Reach;
use ferry::domain::DavEndpoint;
use ferry_tests::dav::{DavServer, Dialect};

const JANE: (&str, &str) = ("jane", "jane-secret");

fn card(uid: &str, name: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\n\
         EMAIL;TYPE=work:{uid}@example.com\r\nEND:VCARD\r\n"
    )
}

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Ferry tests//EN\r\nBEGIN:VEVENT\r\n\
         UID:{uid}\r\nDTSTAMP:20261201T090000Z\r\nDTSTART:20261202T090000Z\r\n\
         DTEND:20261202T100000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn endpoint(url: String, password: &str) -> DavEndpoint {
    DavEndpoint {
        url,
        username: JANE.0.into(),
        password: password.to_owned().into(),
        verify_tls: true,
    }
}

fn loopback() -> Reach {
    Reach {
        allow_private: true,
        ..Reach::default()
    }
}

async fn lists_collections_with_counts(dialect: Dialect) {
    ferry_tests::init_crypto();
    let server = seeded(dialect).await;

    // From the server's root: discovery finds the home set.
    let reach = loopback();
    let books = dav::connect(&endpoint(server.url(), JANE.1), Holds::AddressBooks, &reach)
        .await
        .unwrap_or_else(|e| panic!("{dialect:?}: {e}\n{}", server.log()));
    let found: Vec<(String, u64)> = books
        .collections(&reach)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.label(), c.items))
        .filter(|(name, _)| name != "addressbook")
        .collect();
    assert_eq!(
        found,
        [("Friends".to_owned(), 3), ("Work people".to_owned(), 1)],
        "{dialect:?}"
    );
    let calendars = dav::connect(&endpoint(server.url(), JANE.1), Holds::Calendars, &reach)
        .await
        .unwrap();
    let found: Vec<(String, u64)> = calendars
        .collections(&reach)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.label(), c.items))
        .filter(|(name, _)| name != "calendar")
        .collect();
    assert_eq!(found, [("Meetings".to_owned(), 2)], "{dialect:?}");

    // A calendar is never made over an address book of the same name.
    let err = calendars
        .create_collection("friends", "Friends", &reach)
        .await
        .err();
    assert!(
        matches!(err, Some(ConnectError::Protocol(..))) || dialect == Dialect::Xandikos,
        "{dialect:?}: {err:?}"
    );

    // From the home itself (a URL a customer copies from their old provider's page).
    let direct = dav::connect(
        &endpoint(server.home(JANE.0), JANE.1),
        Holds::AddressBooks,
        &reach,
    )
    .await
    .unwrap();
    assert_eq!(
        direct
            .collections(&reach)
            .await
            .unwrap()
            .iter()
            .filter(|c| c.items > 0)
            .count(),
        2,
        "{dialect:?}"
    );
}

#[tokio::test]
async fn radicale_lists_address_books_and_calendars_with_their_counts() {
    lists_collections_with_counts(Dialect::Radicale).await;
}

#[tokio::test]
async fn xandikos_lists_address_books_and_calendars_with_their_counts() {
    lists_collections_with_counts(Dialect::Xandikos).await;
}

#[tokio::test]
async fn a_wrong_dav_password_is_a_refused_login() {
    ferry_tests::init_crypto();
    let server = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let err = dav::connect(
        &endpoint(server.url(), "wrong"),
        Holds::AddressBooks,
        &loopback(),
    )
    .await
    .err()
    .expect("a wrong password is refused");
    assert!(matches!(err, ConnectError::Auth(..)), "{err:?}");
}

#[tokio::test]
async fn a_dav_server_on_a_private_address_is_refused_as_an_imap_server_is() {
    ferry_tests::init_crypto();
    let server = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let err = dav::connect(
        &endpoint(server.url(), JANE.1),
        Holds::AddressBooks,
        &Reach::default(),
    )
    .await
    .err()
    .expect("loopback is refused by default");
    assert!(matches!(err, ConnectError::Target(..)), "{err:?}");
}

/// A server whose home is made (Radicale makes it at the first authenticated
/// request) and seeded: two address
/// books (3 cards and 1) and a calendar of 2 events.
async fn seeded(dialect: Dialect) -> DavServer {
    let server = DavServer::start(dialect, &[JANE]).expect("the DAV server starts");
    server.open_home(JANE).await.unwrap();
    let friends = server
        .make_collection(JANE, "friends", "Friends", false)
        .await
        .unwrap();
    let work = server
        .make_collection(JANE, "work", "Work people", false)
        .await
        .unwrap();
    let calendar = server
        .make_collection(JANE, "meetings", "Meetings", true)
        .await
        .unwrap();
    for n in 0..3 {
        let uid = format!("friend-{n}");
        server
            .put_item(
                JANE,
                &friends,
                &format!("{uid}.vcf"),
                &card(&uid, &format!("Friend {n}")),
            )
            .await
            .unwrap();
    }
    server
        .put_item(JANE, &work, "boss.vcf", &card("boss", "The Boss"))
        .await
        .unwrap();
    for n in 0..2 {
        let uid = format!("meeting-{n}");
        server
            .put_item(
                JANE,
                &calendar,
                &format!("{uid}.ics"),
                &event(&uid, "Standup"),
            )
            .await
            .unwrap();
    }
    server
}

#[tokio::test]
async fn test_connection_lists_a_dav_accounts_address_books_and_calendars() {
    use ferry::domain::Scope;
    use ferry_tests::app::TestApp;
    use serde_json::{Value, json};

    let server = seeded(Dialect::Radicale).await;
    let app = TestApp::spawn().await;
    let token = app.token("dav", &[Scope::MigrationsWrite]).await;
    let call = |body: Value| {
        let (app, token) = (&app, &token);
        async move {
            ferry_tests::api::call(
                &app.client,
                &app.base,
                token,
                "POST",
                "/migrations/test-connection",
                Some(body),
                &[JANE.1],
            )
            .await
        }
    };
    // Just the host and port: discovery finds the home.
    let host = server.url().trim_end_matches('/').to_owned();
    let (status, body) =
        call(json!({"dav_url": host, "username": JANE.0, "password": JANE.1})).await;
    assert_eq!(status, 200, "{body}");
    let folders: Vec<(String, String, u64)> = body["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["name"].as_str().unwrap().to_owned(),
                f["messages"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        folders,
        [
            ("contacts".to_owned(), "Friends".to_owned(), 3),
            ("contacts".to_owned(), "Work people".to_owned(), 1),
            ("calendars".to_owned(), "Meetings".to_owned(), 2),
        ]
    );
    // A wrong password: 422 with the class every connection test answers.
    let (status, body) =
        call(json!({"dav_url": host, "username": JANE.0, "password": "nope"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("auth")),
        "{body}"
    );
    // A DAV address in a mail migration's request is named as the field in error.
    let (status, body) = ferry_tests::api::call(
        &app.client,
        &app.base,
        &app.token("dav2", &[Scope::MigrationsWrite, Scope::MigrationsOverride]).await,
        "POST",
        "/migrations",
        Some(json!({
            "source": {"host": "127.0.0.1", "username": "jane", "password": JANE.1, "dav_url": host},
            "destination": {"username": "jane@new.example", "password": "x"},
            "requester_email": "jane@new.example",
        })),
        &[JANE.1],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("source.dav_url"), "{body}");
    app.stop().await;
}

/// An item's content lines, unfolded (RFC 6350 and 5545: a line that starts with a
/// space or a tab goes on the line before), in order.
fn content_lines(data: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in data.split("\r\n").flat_map(|l| l.split('\n')) {
        match (line.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ if line.is_empty() => {}
            _ => lines.push(line.to_owned()),
        }
    }
    lines.sort();
    lines
}

/// The connector's item operations between the two dialects, both ways: list, fetch
/// (multiget), make the destination's collection, write create-only (a second write
/// of the same item finds it there), and read back with every property.
async fn copies_items_between(from: Dialect, to: Dialect) {
    ferry_tests::init_crypto();
    let source_server = seeded(from).await;
    let dest_server = DavServer::start(to, &[JANE]).unwrap();
    let reach = loopback();
    for holds in [Holds::AddressBooks, Holds::Calendars] {
        let source = dav::connect(&endpoint(source_server.url(), JANE.1), holds, &reach)
            .await
            .unwrap();
        let dest = dav::connect(&endpoint(dest_server.url(), JANE.1), holds, &reach)
            .await
            .unwrap_or_else(|e| panic!("{to:?}: {e}\n{}", dest_server.log()));
        for collection in source.collections(&reach).await.unwrap() {
            if collection.items == 0 {
                continue;
            }
            let slug = collection.label().to_lowercase().replace(' ', "-");
            let made = dest
                .create_collection(&slug, &collection.label(), &reach)
                .await
                .unwrap_or_else(|e| panic!("{to:?}: {e}\n{}", dest_server.log()));
            // Made again: the one there is used.
            assert_eq!(
                dest.create_collection(&slug, &collection.label(), &reach)
                    .await
                    .unwrap(),
                made
            );
            let items = source.items(&collection.href, &reach).await.unwrap();
            assert_eq!(items.len() as u64, collection.items);
            let hrefs: Vec<String> = items.iter().map(|i| i.href.clone()).collect();
            let fetched = source
                .fetch(&collection.href, &hrefs, &reach)
                .await
                .unwrap();
            assert_eq!(fetched.len(), items.len(), "{from:?} {holds:?}");
            for item in &fetched {
                let (data, _etag) = item.content.clone().expect("the item's data");
                let name = item.href.rsplit('/').next().unwrap();
                let href = format!("{made}{name}");
                dest.put_new(&href, &data, &reach)
                    .await
                    .unwrap_or_else(|e| panic!("{from:?} → {to:?} {href}: {e}"));
                assert!(
                    matches!(
                        dest.put_new(&href, &data, &reach).await,
                        Err(dav::PutError::Exists)
                    ),
                    "a second create-only write of {href} finds it there"
                );
            }
            // Read back from the destination: the same items with every property (both
            // servers re-serialise what they store, so the order of the lines may change).
            let copied = dest.items(&made, &reach).await.unwrap();
            let back = dest
                .fetch(
                    &made,
                    &copied.iter().map(|i| i.href.clone()).collect::<Vec<_>>(),
                    &reach,
                )
                .await
                .unwrap();
            let mut want: Vec<Vec<String>> = fetched
                .iter()
                .map(|f| content_lines(&f.content.clone().unwrap().0))
                .collect();
            let mut got: Vec<Vec<String>> = back
                .iter()
                .map(|f| content_lines(&f.content.clone().unwrap().0))
                .collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "{from:?} → {to:?}, {}", collection.label());
        }
    }
}

#[tokio::test]
async fn the_connector_copies_cards_and_events_from_radicale_to_xandikos() {
    copies_items_between(Dialect::Radicale, Dialect::Xandikos).await;
}

#[tokio::test]
async fn the_connector_copies_cards_and_events_from_xandikos_to_radicale() {
    copies_items_between(Dialect::Xandikos, Dialect::Radicale).await;
}

/// Where calcard's sources (and its round-trip fixtures) are: the version Cargo.lock
/// holds, in cargo's registry.
fn calcard_resources() -> std::path::PathBuf {
    let lock = std::fs::read_to_string(ferry_tests::workspace_root().join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"calcard\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("calcard in Cargo.lock");
    let cargo_home = std::env::var_os("CARGO_HOME").map_or_else(
        || std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"),
        std::path::PathBuf::from,
    );
    std::fs::read_dir(cargo_home.join("registry/src"))
        .expect("cargo's registry")
        .filter_map(Result::ok)
        .map(|index| index.path().join(format!("calcard-{version}/resources")))
        .find(|p| p.is_dir())
        .expect("calcard's sources in cargo's registry")
}

/// What became of a set of fixture files written to a DAV server.
#[derive(Debug, Default)]
struct FixtureCounts {
    files: usize,
    items: usize,
    bad: usize,
    accepted: usize,
    refused: usize,
    duplicates: usize,
    /// PUTs the server did not answer within the deadline (Radicale spins on a few of
    /// calcard's iCalendar fixtures).
    timed_out: usize,
    intact: usize,
}

/// Reads every fixture file with `ext` through Ferry's reader, writes each item to a
/// fresh collection, reads the collection back and counts the items that arrive with
/// their UID. Every item read is accounted for: accepted, refused with a reason, or a
/// UID seen before.
async fn fixtures_through(
    server: &DavServer,
    holds: Holds,
    dir: &str,
    ext: &str,
    every: usize,
) -> FixtureCounts {
    let reach = Reach {
        io_timeout: std::time::Duration::from_secs(20),
        ..loopback()
    };
    let dav = dav::connect(&endpoint(server.url(), JANE.1), holds, &reach)
        .await
        .unwrap();
    let collection = dav
        .create_collection(&format!("fixtures-{ext}"), "Fixtures", &reach)
        .await
        .unwrap();
    let mut files: Vec<_> = std::fs::read_dir(calcard_resources().join(dir))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    let files: Vec<_> = files.into_iter().step_by(every).collect();
    let mut counts = FixtureCounts::default();
    let mut accepted = std::collections::BTreeSet::new();
    for file in files {
        counts.files += 1;
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        let read = match holds {
            Holds::AddressBooks => ferry::connectors::cards::read_vcards(&text),
            Holds::Calendars => ferry::connectors::cards::read_icalendar(&text),
        };
        counts.bad += read.bad.len();
        for item in read.items {
            counts.items += 1;
            let href = format!("{collection}{}", dav::item_name(&item.uid, holds));
            match dav.put_new(&href, &item.data, &reach).await {
                Ok(_) => {
                    counts.accepted += 1;
                    accepted.insert(item.uid);
                }
                Err(dav::PutError::Exists) => counts.duplicates += 1,
                Err(dav::PutError::Refused(_)) => counts.refused += 1,
                Err(dav::PutError::Connection(ConnectError::Timeout(..))) => {
                    counts.timed_out += 1;
                    eprintln!("{}: the server did not answer the PUT", file.display());
                }
                Err(dav::PutError::Connection(err)) => panic!("{}: {err}", file.display()),
            }
        }
    }
    let listed = dav.items(&collection, &reach).await.unwrap();
    let mut back = std::collections::BTreeSet::new();
    for chunk in listed.chunks(100) {
        let hrefs: Vec<String> = chunk.iter().map(|i| i.href.clone()).collect();
        let fetched = dav
            .fetch(&collection, &hrefs, &reach)
            .await
            .unwrap_or_else(|e| panic!("{holds:?} {hrefs:?}: {e}\n{}", server.log()));
        for fetched in fetched {
            let (data, _) = fetched.content.expect("a stored item reads back");
            let read = match holds {
                Holds::AddressBooks => ferry::connectors::cards::read_vcards(&data),
                Holds::Calendars => ferry::connectors::cards::read_icalendar(&data),
            };
            back.extend(read.items.into_iter().map(|i| i.uid));
        }
    }
    counts.intact = accepted.intersection(&back).count();
    assert_eq!(
        counts.accepted + counts.refused + counts.duplicates + counts.timed_out,
        counts.items,
        "every item read is accounted for: {counts:?}"
    );
    assert_eq!(
        counts.intact, counts.accepted,
        "every accepted item reads back with its UID: {counts:?}"
    );
    counts
}

#[tokio::test]
async fn a_sample_of_calcards_vcard_fixtures_goes_into_radicale_and_reads_back() {
    ferry_tests::init_crypto();
    let server = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let cards = fixtures_through(&server, Holds::AddressBooks, "vcard", "vcf", 4).await;
    println!("a quarter of calcard's vCard fixtures into Radicale: {cards:?}");
    assert!(cards.intact > 0, "{cards:?}");
}

/// Every fixture, both formats: the figures of the note. Long (Radicale spins
/// on a few iCalendar fixtures), so run apart: `scripts/bench-dav-fixtures`.
#[tokio::test]
#[ignore = "long: every calcard fixture; scripts/bench-dav-fixtures runs it"]
async fn every_calcard_fixture_goes_into_radicale_and_reads_back() {
    ferry_tests::init_crypto();
    let server = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let cards = fixtures_through(&server, Holds::AddressBooks, "vcard", "vcf", 1).await;
    println!("calcard's vCard fixtures into Radicale: {cards:?}");
    let server = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let events = fixtures_through(&server, Holds::Calendars, "ical", "ics", 1).await;
    println!("calcard's iCalendar fixtures into Radicale: {events:?}");
}

/// An item stored with a NUL (by another client: Ferry's reader drops control
/// characters) makes Radicale's multiget answer unreadable XML; the fetch asks for each
/// item alone then, and only that one fails.
#[tokio::test]
async fn one_unreadable_item_fails_alone_and_the_others_are_fetched() {
    ferry_tests::init_crypto();
    let server = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    server.open_home(JANE).await.unwrap();
    let book = server
        .make_collection(JANE, "mixed", "Mixed", false)
        .await
        .unwrap();
    for n in 0..3 {
        let uid = format!("good-{n}");
        server
            .put_item(JANE, &book, &format!("{uid}.vcf"), &card(&uid, "Good"))
            .await
            .unwrap();
    }
    server
        .put_item(JANE, &book, "nul.vcf", &card("nul", "Bad\u{0}Name"))
        .await
        .unwrap();
    let reach = loopback();
    let dav = dav::connect(&endpoint(server.url(), JANE.1), Holds::AddressBooks, &reach)
        .await
        .unwrap();
    let collection = dav
        .collections(&reach)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.label() == "Mixed")
        .unwrap();
    let hrefs: Vec<String> = dav
        .items(&collection.href, &reach)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.href)
        .collect();
    assert_eq!(hrefs.len(), 4);
    let fetched = dav.fetch(&collection.href, &hrefs, &reach).await.unwrap();
    let good = fetched.iter().filter(|f| f.content.is_ok()).count();
    let bad: Vec<&str> = fetched
        .iter()
        .filter(|f| f.content.is_err())
        .map(|f| f.href.as_str())
        .collect();
    assert_eq!((good, bad.len()), (3, 1), "{fetched:?}");
    assert!(bad[0].ends_with("nul.vcf"), "{bad:?}");
}
