//! Contacts and calendars migrations end to end, through the API, against Radicale
//! and Xandikos each as source and as destination, and from uploaded files: every
//! card and event arrives with its UID and properties (read back by a plain DAV
//! client, not Ferry's), the policies, the merge of the same people under different
//! UIDs, a second pass that copies nothing, a bad item failing alone with its reason,
//! and `ferry serve` killed mid-copy resuming with nothing doubled.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ferry::domain::Scope;
use ferry_tests::api::{call, fields};
use ferry_tests::app::TestApp;
use ferry_tests::dav::{DavServer, Dialect};
use ferry_tests::serve::FerryProcess;
use serde_json::{Value, json};

const JANE: (&str, &str) = ("jane", "jane-secret");
const BOB: (&str, &str) = ("bob", "bob-secret");

/// Contacts as exports write them: vCard 4.0, 3.0 and 2.1, a photo, a group, several
/// emails, phones and addresses, categories, X- properties; the fifth has no name.
const CONTACTS_VCF: &str = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:jane-1\r\nFN:Jane Doe\r\n\
N:Doe;Jane;;;\r\nEMAIL;TYPE=work:jane@work.example\r\nEMAIL;TYPE=home:jane@home.example\r\n\
TEL;TYPE=cell:+49 30 1234567\r\nTEL;TYPE=work:+49 30 7654321\r\n\
ADR;TYPE=home:;;Main St 1;Berlin;;10115;Germany\r\nADR;TYPE=work:;;Work Rd 9;Hamburg;;20095;Germany\r\n\
CATEGORIES:friends,work\r\nX-FERRY-NICKNAME:JJ\r\nBDAY:19800102\r\n\
PHOTO:data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n\
END:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob-2\r\nFN:Bob Builder\r\nN:Builder;Bob;;;\r\n\
ORG:Builders Inc.\r\nNOTE:Likes tools\\, and sheds\r\nEMAIL:bob@builders.example\r\n\
PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n\
END:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Elodie Martin\r\nN:Martin;Elodie\r\nTEL;HOME:+33 1 23 45 67 89\r\n\
EMAIL;INTERNET:elodie@example.fr\r\nEND:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:4.0\r\nUID:family-4\r\nKIND:group\r\nFN:Family\r\n\
MEMBER:urn:uuid:jane-1\r\nMEMBER:urn:uuid:bob-2\r\nEND:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:3.0\r\nUID:nameless-5\r\nEMAIL:who@example.com\r\nEND:VCARD\r\n";

/// A calendar: a time zone, a weekly meeting with an exception and an alarm, a task
/// done, and an event without a start (refused).
const CALENDAR_ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Ferry tests//EN\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n\
END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n\
TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:weekly-1\r\nDTSTAMP:20261201T090000Z\r\nDTSTART;TZID=Europe/Berlin:20261207T100000\r\n\
DTEND;TZID=Europe/Berlin:20261207T110000\r\nRRULE:FREQ=WEEKLY;COUNT=10\r\n\
EXDATE;TZID=Europe/Berlin:20261221T100000\r\nSUMMARY:Team meeting\r\nCATEGORIES:work\r\n\
X-FERRY-ROOM:Blue\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\n\
END:VALARM\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:weekly-1\r\nRECURRENCE-ID;TZID=Europe/Berlin:20261214T100000\r\n\
DTSTAMP:20261201T090000Z\r\nDTSTART;TZID=Europe/Berlin:20261214T140000\r\n\
DTEND;TZID=Europe/Berlin:20261214T150000\r\nSUMMARY:Team meeting (moved)\r\nEND:VEVENT\r\n\
BEGIN:VTODO\r\nUID:task-2\r\nDTSTAMP:20261201T090000Z\r\nSUMMARY:File the taxes\r\n\
DUE:20261215T170000Z\r\nSTATUS:COMPLETED\r\nCOMPLETED:20261210T120000Z\r\nPERCENT-COMPLETE:100\r\n\
PRIORITY:1\r\nEND:VTODO\r\n\
BEGIN:VEVENT\r\nUID:nostart-3\r\nDTSTAMP:20261201T090000Z\r\nSUMMARY:No start\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

async fn app() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let token = app
        .token(
            "contacts",
            &[
                Scope::MigrationsRead,
                Scope::MigrationsWrite,
                Scope::MigrationsOverride,
                Scope::SettingsAdmin,
            ],
        )
        .await;
    (app, token)
}

/// Uploads `body` as a raw body named `name`: the answer's status and JSON.
async fn upload(app: &TestApp, token: &str, name: &str, body: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(token)
        .header("Content-Type", "text/vcard")
        .header("X-Filename", name)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn dav_side(server: &DavServer, user: (&str, &str)) -> Value {
    json!({ "dav_url": server.url(), "username": user.0, "password": user.1 })
}

/// Imports the uploaded `.vcf` into JANE's account on `server`, now: the migration's
/// id and its answer once completed.
async fn import_contacts(
    app: &TestApp,
    token: &str,
    up: &Value,
    server: &DavServer,
) -> (i64, Value) {
    let id = request(
        app,
        token,
        json!({
            "kind": "contacts",
            "source": { "upload_id": up["id"] },
            "destination": dav_side(server, JANE),
            "requester_email": "jane@new.example",
        }),
    )
    .await;
    (id, wait_status(app, token, id, "completed").await)
}

/// Sets `provider.dav_url` through the API.
async fn set_provider_dav_url(app: &TestApp, token: &str, url: &str) {
    let (status, body) = call(
        &app.client,
        &app.base,
        token,
        "PATCH",
        "/settings",
        Some(json!({ "provider.dav_url": url })),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Requests a migration starting now: its id.
async fn request(app: &TestApp, token: &str, body: Value) -> i64 {
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
    m["id"].as_i64().unwrap()
}

async fn wait_status(app: &TestApp, token: &str, id: i64, status: &str) -> Value {
    wait_on(&app.client, &app.base, token, id, status).await
}

async fn wait_on(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    id: i64,
    status: &str,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, m) = call(
            client,
            base,
            token,
            "GET",
            &format!("/migrations/{id}"),
            None,
            &[],
        )
        .await;
        if m["status"] == status {
            return m;
        }
        let done =
            ["completed", "failed", "cancelled"].contains(&m["status"].as_str().unwrap_or(""));
        assert!(
            !done && Instant::now() < deadline,
            "waiting for {status}: {m:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each item's properties by UID, as calcard reads them from what a server holds:
/// name and values, parameters aside (servers rewrite their case and order).
fn by_uid(items: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for text in items {
        let mut parser = calcard::Parser::new(text);
        loop {
            match parser.entry() {
                calcard::Entry::VCard(card) => {
                    let uid = card.uid().unwrap_or_default().to_owned();
                    let props = out.entry(uid).or_insert_with(BTreeSet::new);
                    for e in &card.entries {
                        // A structured value's empty trailing parts are no value
                        // (Radicale writes N with all five).
                        let mut values = e.values.clone();
                        while values.last().is_some_and(|v| v.as_text() == Some("")) {
                            values.pop();
                        }
                        props.insert(format!("{:?}={values:?}", e.name));
                    }
                }
                calcard::Entry::ICalendar(cal) => {
                    for c in &cal.components {
                        let uid = c.uid().map(str::to_owned);
                        let key = uid.clone().unwrap_or_else(|| "(calendar)".into());
                        let props = out.entry(key).or_insert_with(BTreeSet::new);
                        for e in &c.entries {
                            props.insert(format!(
                                "{:?}:{:?}={:?}",
                                c.component_type, e.name, e.values
                            ));
                        }
                    }
                }
                calcard::Entry::Eof => break,
                _ => {}
            }
        }
    }
    out
}

/// Every property of every source item is at the destination under the same UID.
fn assert_all_arrived(
    source: &BTreeMap<String, BTreeSet<String>>,
    dest: &BTreeMap<String, BTreeSet<String>>,
    what: &str,
) {
    for (uid, props) in source {
        if uid == "(calendar)" {
            continue;
        }
        let Some(got) = dest.get(uid) else {
            panic!(
                "{what}: {uid} did not arrive; the destination has {:?}",
                dest.keys()
            );
        };
        let missing: Vec<&String> = props
            .iter()
            .filter(|p| !p.contains("Prodid") && !p.contains("Rev=") && !p.contains("Version="))
            .filter(|p| !got.contains(*p))
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: {uid} lost {missing:#?}\nit has {got:#?}"
        );
    }
}

/// A card with a 10 MB photo, over the destination server's limit, and one whose
/// photo calcard cannot write back whole: each fails with its reason and the others
/// are copied.
#[tokio::test]
async fn a_card_too_large_for_the_server_fails_alone() {
    let radicale = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let (app, token) = app().await;
    // Base64 of bytes that are not text, as a real picture's are.
    let photo = "iVBORw0K".repeat(1_250_000);
    assert!(photo.len() > ferry_tests::dav::RADICALE_MAX_BODY);
    let vcf = format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:small-1\r\nFN:Small One\r\nEND:VCARD\r\n\
         BEGIN:VCARD\r\nVERSION:3.0\r\nUID:huge-2\r\nFN:Huge Photo\r\n\
         PHOTO;ENCODING=b;TYPE=JPEG:{photo}\r\nEND:VCARD\r\n\
         BEGIN:VCARD\r\nVERSION:3.0\r\nUID:small-3\r\nFN:Small Three\r\nEND:VCARD\r\n\
         BEGIN:VCARD\r\nVERSION:3.0\r\nUID:zeros-4\r\nFN:Zero Bytes\r\n\
         PHOTO;ENCODING=b;TYPE=JPEG:AAAAAAAAAAAA\r\nEND:VCARD\r\n"
    );
    let (status, up) = upload(&app, &token, "big.vcf", &vcf).await;
    assert_eq!(status, 201, "{up}");
    let (_, m) = import_contacts(&app, &token, &up, &radicale).await;
    let folder = &m["passes"][0]["report"]["folders"][0];
    assert_eq!(
        (folder["copied"].as_u64(), folder["failed"].as_u64()),
        (Some(2), Some(2)),
        "{m:#}"
    );
    let reasons: BTreeMap<String, String> = folder["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["item"].as_str().unwrap().to_owned(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Radicale answers 413, or closes the connection before its answer is read.
    let too_large = &reasons["item 2 of the file"];
    assert!(
        too_large.contains("too large (413)") || too_large.contains("size limit"),
        "{reasons:#?}"
    );
    // A photo of NUL bytes, which calcard reads as text: refused, not shortened.
    assert!(
        reasons["entry 4 of the file"].contains("NUL"),
        "{reasons:#?}"
    );
    let book = format!("{}imported-big-vcf/", radicale.addressbook_home(JANE.0));
    let got = radicale.read_collection(JANE, &book).await.unwrap();
    let uids: BTreeSet<String> = by_uid(&got).into_keys().collect();
    assert_eq!(uids, BTreeSet::from(["small-1".into(), "small-3".into()]));
    app.stop().await;
}

#[tokio::test]
async fn contacts_from_a_vcf_upload_arrive_whole_in_radicale_and_a_second_pass_copies_nothing() {
    let radicale = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let (app, token) = app().await;

    let (status, up) = upload(&app, &token, "My contacts.vcf", CONTACTS_VCF).await;
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["kind"], "vcf");
    assert_eq!(up["size"], CONTACTS_VCF.len());
    // Encrypted at rest: no card's text in the data directory.
    for entry in std::fs::read_dir(app.data_dir.path().join("uploads")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("Jane Doe"));
    }

    let (id, m) = import_contacts(&app, &token, &up, &radicale).await;
    assert_eq!(m["kind"], "contacts", "{m}");
    let pass = &m["passes"][0];
    assert_eq!(
        (pass["copied"].as_u64(), pass["failed"].as_u64()),
        (Some(4), Some(1)),
        "{m:#}"
    );
    let folder = &pass["report"]["folders"][0];
    assert_eq!(folder["source_path"], "My contacts.vcf");
    assert_eq!(folder["dest_path"], "Imported — My contacts.vcf");
    assert_eq!(folder["unaccounted"], 0);
    let failure = &folder["failures"][0];
    assert_eq!(failure["item"], "entry 5 of the file", "{failure}");
    assert!(
        failure["reason"].as_str().unwrap().contains("no name"),
        "{failure}"
    );

    let book = format!(
        "{}imported-my-contacts-vcf/",
        radicale.addressbook_home(JANE.0)
    );
    let got = radicale.read_collection(JANE, &book).await.unwrap();
    assert_eq!(got.len(), 4, "{got:#?}");
    let expected = by_uid(
        &ferry::connectors::cards::read_vcards(CONTACTS_VCF)
            .items
            .into_iter()
            .map(|i| i.data)
            .collect::<Vec<_>>(),
    );
    assert_eq!(expected.len(), 4);
    assert_all_arrived(&expected, &by_uid(&got), "Radicale");

    // A second pass: nothing copied again, the nameless card tried (and refused) again.
    sync(&app, &token, id).await;
    let m = wait_until_passes(&app, &token, id, 2).await;
    let second = &m["passes"][1];
    assert_eq!(second["copied"], 0, "{m:#}");
    assert_eq!(second["report"]["folders"][0]["already_done"], 4, "{m:#}");
    assert_eq!(
        radicale.read_collection(JANE, &book).await.unwrap().len(),
        4
    );
    app.stop().await;
}

/// Waits for a completed migration with `n` passes.
async fn wait_until_passes(app: &TestApp, token: &str, id: i64, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
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
        if m["status"] == "completed" && m["passes"].as_array().map_or(0, Vec::len) == n {
            return m;
        }
        assert!(
            Instant::now() < deadline && m["status"] != "failed",
            "{m:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The calendar file's objects, each as a CalDAV item.
fn calendar_items() -> Vec<ferry::connectors::cards::Item> {
    ferry::connectors::cards::read_icalendar(CALENDAR_ICS).items
}

#[tokio::test]
async fn calendars_move_from_radicale_to_xandikos_and_from_xandikos_to_radicale_whole() {
    let radicale = DavServer::start(Dialect::Radicale, &[JANE, BOB]).unwrap();
    let xandikos = DavServer::start(Dialect::Xandikos, &[]).unwrap();
    radicale.open_home(JANE).await.unwrap();
    let source = radicale
        .make_collection(JANE, "work", "Work", true)
        .await
        .unwrap();
    let items = calendar_items();
    assert_eq!(
        items.len(),
        2,
        "the meeting with its exception, and the task"
    );
    for item in &items {
        radicale
            .put_item(JANE, &source, &format!("{}.ics", item.uid), &item.data)
            .await
            .unwrap();
    }
    // An event already at the destination under a UID of the source's: skipped, left.
    xandikos.open_home(JANE).await.unwrap();
    let dest_cal = xandikos
        .make_collection(JANE, "work", "Work", true)
        .await
        .unwrap();
    let theirs = items[1].data.replace("File the taxes", "Their own task");
    xandikos
        .put_item(JANE, &dest_cal, "task-2.ics", &theirs)
        .await
        .unwrap();

    let (app, token) = app().await;
    let id = request(
        &app,
        &token,
        json!({
            "kind": "calendars",
            "source": dav_side(&radicale, JANE),
            "destination": dav_side(&xandikos, JANE),
            "requester_email": "jane@new.example",
        }),
    )
    .await;
    let m = wait_status(&app, &token, id, "completed").await;
    let work = m["passes"][0]["report"]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source_path"] == "Work")
        .cloned()
        .unwrap_or_else(|| panic!("{m:#}"));
    assert_eq!(
        (work["copied"].as_u64(), work["skipped"].as_u64()),
        (Some(1), Some(1)),
        "{work}"
    );
    let got = by_uid(&xandikos.read_collection(JANE, &dest_cal).await.unwrap());
    let expected = by_uid(&items.iter().map(|i| i.data.clone()).collect::<Vec<_>>());
    assert!(
        got["task-2"].iter().any(|p| p.contains("Their own task")),
        "skip leaves theirs"
    );
    let meeting: BTreeMap<String, BTreeSet<String>> = expected
        .iter()
        .filter(|(k, _)| *k == "weekly-1")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_all_arrived(&meeting, &got, "Xandikos");
    let text = xandikos
        .read_collection(JANE, &dest_cal)
        .await
        .unwrap()
        .join("\n");
    for part in [
        "RECURRENCE-ID",
        "EXDATE",
        "BEGIN:VALARM",
        "TZID:Europe/Berlin",
        "X-FERRY-ROOM",
    ] {
        assert!(
            text.contains(part),
            "{part} is missing at Xandikos:\n{text}"
        );
    }

    // The meeting changes at the source; under skip, a second pass leaves the copy.
    let renamed = items[0]
        .data
        .replace("SUMMARY:Team meeting\r\n", "SUMMARY:Board meeting\r\n");
    assert_ne!(renamed, items[0].data);
    radicale
        .put_item(JANE, &source, "weekly-1.ics", &renamed)
        .await
        .unwrap();
    sync(&app, &token, id).await;
    let m = wait_until_passes(&app, &token, id, 2).await;
    assert_eq!(m["passes"][1]["copied"], 0, "{m:#}");
    let text = xandikos
        .read_collection(JANE, &dest_cal)
        .await
        .unwrap()
        .join("\n");
    assert!(!text.contains("Board meeting"), "skip keeps the copy");

    // Back the other way, with overwrite: Xandikos as the source, Radicale as the
    // destination (another account), every item replaced or written.
    let id = request(
        &app,
        &token,
        json!({
            "kind": "calendars",
            "policy": "overwrite",
            "source": dav_side(&xandikos, JANE),
            "destination": dav_side(&radicale, BOB),
            "requester_email": "bob@new.example",
        }),
    )
    .await;
    let m = wait_status(&app, &token, id, "completed").await;
    let cal = format!("{}work/", radicale.calendar_home(BOB.0));
    let got = by_uid(&radicale.read_collection(BOB, &cal).await.unwrap());
    assert!(
        got.contains_key("weekly-1") && got.contains_key("task-2"),
        "{m:#}\n{got:#?}"
    );
    assert_all_arrived(&meeting, &got, "Radicale");

    // Under overwrite, an item changed at the source since its copy (its ETag) is
    // copied again by the next pass; the unchanged ones are not.
    let renamed = theirs.replace("Their own task", "Their own task (renamed)");
    xandikos
        .put_item(JANE, &dest_cal, "task-2.ics", &renamed)
        .await
        .unwrap();
    sync(&app, &token, id).await;
    let m = wait_until_passes(&app, &token, id, 2).await;
    assert_eq!(m["passes"][1]["copied"], 1, "{m:#}");
    let text = radicale
        .read_collection(BOB, &cal)
        .await
        .unwrap()
        .join("\n");
    assert!(text.contains("Their own task (renamed)"), "{text}");
    assert_eq!(
        radicale.read_collection(BOB, &cal).await.unwrap().len(),
        2,
        "replaced, not doubled"
    );
    app.stop().await;
}

/// Asks for another pass now.
async fn sync(app: &TestApp, token: &str, id: i64) {
    let (status, body) = call(
        &app.client,
        &app.base,
        token,
        "POST",
        &format!("/migrations/{id}:sync"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn merging_contacts_leaves_one_card_per_person_with_every_value_of_both() {
    let xandikos = DavServer::start(Dialect::Xandikos, &[]).unwrap();
    let radicale = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    xandikos.open_home(JANE).await.unwrap();
    let old = xandikos
        .make_collection(JANE, "people", "People", false)
        .await
        .unwrap();
    let card = |uid: &str, body: &str| {
        format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\n{body}END:VCARD\r\n")
    };
    // The same three people at both ends under other UIDs (found by email, phone,
    // name), and one only at the source.
    for (uid, body) in [
        (
            "old-jane",
            "FN:Jane Doe\r\nEMAIL:Jane@Example.com\r\nTEL:+49 30 111\r\n",
        ),
        (
            "old-bob",
            "FN:Bob B\r\nTEL:+49-30-222\r\nNOTE:old friend\r\n",
        ),
        ("old-eve", "FN:Eve Adams\r\nEMAIL:eve@old.example\r\n"),
        ("old-zed", "FN:Zed Only\r\nEMAIL:zed@example.com\r\n"),
    ] {
        xandikos
            .put_item(JANE, &old, &format!("{uid}.vcf"), &card(uid, body))
            .await
            .unwrap();
    }
    radicale.open_home(JANE).await.unwrap();
    let new = radicale
        .make_collection(JANE, "people", "People", false)
        .await
        .unwrap();
    for (uid, body) in [
        (
            "new-jane",
            "FN:Jane Doe\r\nEMAIL:jane@example.com\r\nEMAIL:jd@work.example\r\n",
        ),
        ("new-bob", "FN:Robert Builder\r\nTEL:+49 30 222\r\n"),
        ("new-eve", "FN:Eve Adams\r\nTEL:+1 555 0100\r\n"),
    ] {
        radicale
            .put_item(JANE, &new, &format!("{uid}.vcf"), &card(uid, body))
            .await
            .unwrap();
    }

    let (app, token) = app().await;
    let id = request(
        &app,
        &token,
        json!({
            "kind": "contacts",
            "policy": "merge",
            "source": dav_side(&xandikos, JANE),
            "destination": dav_side(&radicale, JANE),
            "requester_email": "jane@new.example",
        }),
    )
    .await;
    let m = wait_status(&app, &token, id, "completed").await;
    let got = radicale.read_collection(JANE, &new).await.unwrap();
    assert_eq!(got.len(), 4, "three merged, one new: {m:#}\n{got:#?}");
    let all = got.join("\n");
    let find = |uid: &str| {
        got.iter()
            .find(|c| c.contains(&format!("UID:{uid}")))
            .cloned()
            .unwrap_or_else(|| panic!("{uid}: {all}"))
    };
    let jane = find("new-jane");
    assert!(
        jane.contains("jd@work.example") && jane.contains("+49 30 111"),
        "{jane}"
    );
    let bob = find("new-bob");
    assert!(
        bob.contains("Robert Builder") && bob.contains("old friend") && bob.contains("Bob B"),
        "{bob}"
    );
    let eve = find("new-eve");
    assert!(
        eve.contains("eve@old.example") && eve.contains("+1 555 0100"),
        "{eve}"
    );
    find("old-zed");

    // Run again: nothing new to bring.
    let (status, _) = call(
        &app.client,
        &app.base,
        &token,
        "POST",
        &format!("/migrations/{id}:sync"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let m = wait_until_passes(&app, &token, id, 2).await;
    assert_eq!(m["passes"][1]["copied"], 0, "{m:#}");
    assert_eq!(radicale.read_collection(JANE, &new).await.unwrap().len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_and_uploads_name_their_field() {
    let radicale = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let (app, token) = app().await;
    let post = |body: Value| {
        let (client, base, token) = (app.client.clone(), app.base.clone(), token.clone());
        async move {
            call(
                &client,
                &base,
                &token,
                "POST",
                "/migrations",
                Some(body),
                &["jane-secret"],
            )
            .await
        }
    };

    // Not a contacts or calendar file; an empty one.
    let (status, body) = upload(&app, &token, "notes.txt", "hello\n").await;
    assert_eq!((status, fields(&body)), (422, vec!["file"]), "{body}");
    let (status, body) = upload(&app, &token, "empty.vcf", "").await;
    assert_eq!((status, fields(&body)), (422, vec!["file"]), "{body}");
    // No Content-Type: 415 saying what to send.
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .header("X-Filename", "c.vcf")
        .body(CONTACTS_VCF)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert!(resp.text().await.unwrap().contains("X-Filename"));
    // Multipart, as a browser sends it.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::text(CALENDAR_ICS).file_name("cal.ics"),
    );
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let ics: Value = resp.json().await.unwrap();
    assert_eq!(ics["kind"], "ics");

    // A calendar file for contacts; merge for calendars; no destination server.
    let (status, body) = post(json!({
        "kind": "contacts",
        "source": { "upload_id": ics["id"] },
        "destination": { "username": "jane", "password": "jane-secret" },
        "requester_email": "jane@new.example",
    }))
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        fields(&body),
        vec!["source.upload_id", "destination.dav_url"],
        "{body}"
    );
    let (status, body) = post(json!({
        "kind": "calendars",
        "policy": "merge",
        "source": { "upload_id": ics["id"] },
        "destination": dav_side(&radicale, JANE),
        "requester_email": "jane@new.example",
    }))
    .await;
    assert_eq!((status, fields(&body)), (422, vec!["policy"]), "{body}");
    // A file is no mail source (yet).
    let (status, body) = post(json!({
        "source": { "upload_id": ics["id"] },
        "destination": { "host": "127.0.0.1", "username": "jane", "password": "x" },
        "requester_email": "jane@new.example",
    }))
    .await;
    assert_eq!(status, 422);
    assert!(fields(&body).contains(&"source.upload_id"), "{body}");

    // With provider.dav_url set, the destination needs only its login.
    set_provider_dav_url(&app, &token, &radicale.url()).await;
    let id = request(
        &app,
        &token,
        json!({
            "kind": "calendars",
            "source": { "upload_id": ics["id"] },
            "destination": { "username": "jane", "password": "jane-secret" },
            "requester_email": "jane@new.example",
        }),
    )
    .await;
    let m = wait_status(&app, &token, id, "completed").await;
    let pass = &m["passes"][0];
    assert_eq!(
        (pass["copied"].as_u64(), pass["failed"].as_u64()),
        (Some(2), Some(1)),
        "{m:#}"
    );
    assert!(
        pass["report"]["folders"][0]["failures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no start"),
        "{m:#}"
    );
    assert_eq!(m["destination"]["dav_url"], radicale.url(), "{m:#}");
    assert!(!m.to_string().contains("jane-secret"));
    app.stop().await;
}

#[tokio::test]
async fn ferry_killed_mid_import_resumes_with_no_card_doubled() {
    ferry_tests::init_crypto();
    let radicale = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let mut ferry = FerryProcess::start(&[
        ("FERRY_ALLOW_PRIVATE_TARGETS", "true".into()),
        ("FERRY_WORKERS__POLL_SECONDS", "1".into()),
        ("FERRY_WORKERS__LEASE_SECONDS", "3".into()),
    ])
    .unwrap();
    let token = ferry
        .token(&["migrations:read", "migrations:write", "migrations:override"])
        .unwrap();
    let n = 800;
    let vcf: String = (1..=n)
        .map(|i| format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:person-{i}\r\nFN:Person {i}\r\nEMAIL:p{i}@example.com\r\nEND:VCARD\r\n"))
        .collect();
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/api/v1/uploads", ferry.base()))
        .bearer_auth(&token)
        .header("X-Filename", "people.vcf")
        .header("Content-Type", "text/vcard")
        .body(vcf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", ferry.log());
    let up: Value = resp.json().await.unwrap();
    let (status, m) = call(
        &client,
        &ferry.base(),
        &token,
        "POST",
        "/migrations",
        Some(json!({
            "kind": "contacts",
            "source": { "upload_id": up["id"] },
            "destination": dav_side(&radicale, JANE),
            "requester_email": "jane@new.example",
        })),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{m}");
    let id = m["id"].as_i64().unwrap();
    // kill -9 once a few hundred cards are written.
    let book = format!("{}imported-people-vcf/", radicale.addressbook_home(JANE.0));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let there = std::fs::read_dir(
            radicale
                .storage()
                .join("collection-root/jane/imported-people-vcf"),
        )
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "vcf"))
            })
            .count()
        })
        .unwrap_or(0);
        if there >= 300 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {}", ferry.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ferry.kill();
    ferry.restart().unwrap();
    let client = reqwest::Client::new();
    let m = wait_on(&client, &ferry.base(), &token, id, "completed").await;
    let passes = m["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 1, "one pass, resumed: {m:#}");
    assert_eq!(passes[0]["copied"], n, "every card counted once: {m:#}");
    let got = radicale.read_collection(JANE, &book).await.unwrap();
    let uids: BTreeSet<String> = by_uid(&got).into_keys().collect();
    assert_eq!(
        (got.len(), uids.len()),
        (n, n),
        "nothing doubled, nothing lost"
    );
    assert!(
        ferry.log().contains("Resuming an interrupted pass"),
        "{}",
        ferry.log()
    );
}

#[tokio::test]
async fn deleting_at_the_source_removes_what_was_copied_and_nothing_else() {
    let radicale = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let xandikos = DavServer::start(Dialect::Xandikos, &[]).unwrap();
    radicale.open_home(JANE).await.unwrap();
    let old = radicale
        .make_collection(JANE, "friends", "Friends", false)
        .await
        .unwrap();
    for i in 1..=3 {
        let card = format!(
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:friend-{i}\r\nFN:Friend {i}\r\nEND:VCARD\r\n"
        );
        radicale
            .put_item(JANE, &old, &format!("friend-{i}.vcf"), &card)
            .await
            .unwrap();
    }
    // The customer's calendar stays: a contacts migration deletes cards only.
    let cal = radicale
        .make_collection(JANE, "home", "Home", true)
        .await
        .unwrap();
    radicale
        .put_item(JANE, &cal, "e.ics", &calendar_items()[1].data)
        .await
        .unwrap();
    let (app, token) = app().await;
    let id = request(
        &app,
        &token,
        json!({
            "kind": "contacts",
            "delete_source": true,
            "source": dav_side(&radicale, JANE),
            "destination": dav_side(&xandikos, JANE),
            "requester_email": "jane@new.example",
        }),
    )
    .await;
    let m = wait_status(&app, &token, id, "completed").await;
    let folder = &m["passes"][0]["report"]["folders"][0];
    assert_eq!(
        (folder["copied"].as_u64(), folder["removed"].as_u64()),
        (Some(3), Some(3)),
        "{m:#}"
    );
    let copied = xandikos
        .read_collection(
            JANE,
            &format!("{}friends/", xandikos.addressbook_home(JANE.0)),
        )
        .await
        .unwrap();
    assert_eq!(copied.len(), 3);
    assert!(
        radicale
            .read_collection(JANE, &old)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(radicale.read_collection(JANE, &cal).await.unwrap().len(), 1);
    app.stop().await;
}

/// "Import these contacts into jane@new.example": a `.vcf` a customer sent to the
/// support address, imported from its ticket in the console, the migration linked to
/// the ticket.
#[tokio::test]
async fn a_contacts_file_sent_to_support_is_imported_from_its_ticket() {
    let radicale = DavServer::start(Dialect::Radicale, &[JANE]).unwrap();
    let (app, token) = app().await;
    let raw = ferry_tests::mime::Email::new(
        "jane@customer.example",
        "Import these contacts into jane@new.example",
        "contacts-1@customer.example",
        "Here they are.",
    )
    .file(
        "contacts.vcf",
        "text/vcard",
        CONTACTS_VCF.as_bytes().to_vec(),
    )
    .bytes();
    let received = app
        .services
        .receive_email(ferry::service::IncomingEmail {
            mail: ferry::intake::inbound::read(&raw),
            raw,
            source: None,
            lists: Vec::new(),
        })
        .await
        .unwrap();
    let ticket = received.ticket;
    let view = app.services.ticket_view(ticket).await.unwrap();
    let file = view
        .attachments
        .iter()
        .find(|a| a.file_name == "contacts.vcf")
        .unwrap();

    let staff = TestApp::new_client();
    app.sign_in(
        &staff,
        ferry_tests::app::ADMIN_EMAIL,
        ferry_tests::app::ADMIN_PASSWORD,
    )
    .await;
    let page = app.page(&staff, &format!("/tickets/{ticket}")).await;
    assert!(page.contains("Import these contacts"), "{page}");
    let csrf = ferry_tests::app::csrf_from(&page).unwrap();
    let resp = staff
        .post(app.url(&format!("/tickets/{ticket}/files/{}/import", file.id)))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let form_path = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        form_path.starts_with("/migrations/new-items?kind=contacts&upload="),
        "{form_path}"
    );
    let page = app.page(&staff, &form_path).await;
    assert!(
        page.contains("Uploaded: contacts.vcf") && page.contains("jane@customer.example"),
        "{page}"
    );
    let upload_id = form_path
        .split("upload=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let resp = staff
        .post(app.url("/migrations/new-items"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("kind", "contacts"),
            ("source_from", "file"),
            ("source.upload_id", upload_id.as_str()),
            ("destination.dav_url", radicale.url().as_str()),
            ("destination.username", JANE.0),
            ("destination.password", JANE.1),
            ("policy", "skip"),
            ("start_now", "on"),
            ("terms", "on"),
            ("requester_email", "jane@customer.example"),
            ("ticket", ticket.to_string().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        303,
        "{}",
        resp.text().await.unwrap()
    );
    let id: i64 = resp.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let m = wait_status(&app, &token, id, "completed").await;
    assert_eq!(m["ticket_id"], ticket.0, "{m:#}");
    let book = format!(
        "{}imported-contacts-vcf/",
        radicale.addressbook_home(JANE.0)
    );
    assert_eq!(
        radicale.read_collection(JANE, &book).await.unwrap().len(),
        4
    );
    app.stop().await;
}

/// A project whose options add contacts and calendars: each row makes three
/// migrations (mail from Dovecot, address books and calendars from the old
/// provider's Radicale into the provider's, with the row's logins); each person's
/// cards and events arrive in their own account; a row whose destination password
/// is missing is refused for all three, naming the kind; the report CSV and the API
/// say which is which.
#[tokio::test]
async fn a_project_moves_each_rows_mail_contacts_and_calendars() {
    use ferry_tests::dovecot::{Dovecot, Layout};
    use ferry_tests::imap;

    let people = [
        ("jane@acme.example", "old-jane-pw", "new-jane-pw"),
        ("bob@acme.example", "old-bob-pw", "new-bob-pw"),
    ];
    let src = Dovecot::start(Layout::Slash).unwrap();
    let dst = Dovecot::start(Layout::Slash).unwrap();
    for (user, old, new) in people {
        src.add_user(user, old).unwrap();
        dst.add_user(user, new).unwrap();
    }
    let old_logins: Vec<(&str, &str)> = people.iter().map(|p| (p.0, p.1)).collect();
    let new_logins: Vec<(&str, &str)> = people.iter().map(|p| (p.0, p.2)).collect();
    let old_dav = DavServer::start(Dialect::Radicale, &old_logins).unwrap();
    let new_dav = DavServer::start(Dialect::Radicale, &new_logins).unwrap();
    for (n, (user, old, _)) in people.into_iter().enumerate() {
        let mut s = imap::login(&src, user, old).await.unwrap();
        let messages: Vec<imap::SeedMessage> = (0..3)
            .map(|i| imap::SeedMessage {
                body: ferry_tests::corpus::message(n * 100 + i, true, 2_000),
                flags: vec![],
                internal_date: None,
            })
            .collect();
        imap::seed(&mut s, "INBOX", &messages).await.unwrap();
        s.logout().await.unwrap();
        let login = (user, old);
        old_dav.open_home(login).await.unwrap();
        let book = old_dav
            .make_collection(login, "contacts", "Contacts", false)
            .await
            .unwrap();
        for k in 0..2 {
            let card = format!(
                "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{user}-card-{k}\r\nFN:Friend {k} of {user}\r\n\
                 EMAIL:friend{k}@{n}.example\r\nEND:VCARD\r\n"
            );
            old_dav
                .put_item(login, &book, &format!("c{k}.vcf"), &card)
                .await
                .unwrap();
        }
        let cal = old_dav
            .make_collection(login, "work", "Work", true)
            .await
            .unwrap();
        let event = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Ferry tests//EN\r\nBEGIN:VEVENT\r\n\
             UID:{user}-event\r\nDTSTAMP:20261201T090000Z\r\nDTSTART:20261207T100000Z\r\n\
             SUMMARY:Meeting of {user}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
        old_dav
            .put_item(login, &cal, "e.ics", &event)
            .await
            .unwrap();
    }

    let app = TestApp::spawn().await;
    let token = app
        .token(
            "projects",
            &[
                Scope::ProjectsRead,
                Scope::ProjectsWrite,
                Scope::MigrationsRead,
                Scope::MigrationsOverride,
                Scope::SettingsAdmin,
            ],
        )
        .await;
    set_provider_dav_url(&app, &token, &new_dav.url()).await;
    let row = |(user, old, new): (&str, &str, &str)| {
        json!({
            "source_email": user, "source_password": old,
            "source_host": format!("127.0.0.1:{}", src.port), "source_security": "none",
            "destination_email": user, "destination_password": new,
            "destination_host": format!("127.0.0.1:{}", dst.port), "destination_security": "none",
        })
    };
    let mut no_password = row(("eve@acme.example", "old-eve-pw", ""));
    no_password["destination_password"] = Value::Null;
    let (status, made) = call(
        &app.client,
        &app.base,
        &token,
        "POST",
        "/projects",
        Some(json!({
            "name": "Acme, everything",
            "requester_email": "it@acme.example",
            "options": {
                "two_pass": false, "contacts": true, "calendars": true,
                "dav_url": old_dav.url(), "policy": "merge",
            },
            "rows": [row(people[0]), row(people[1]), no_password],
        })),
        &[],
    )
    .await;
    assert_eq!(status, 201, "{made:#}");
    assert_eq!(made["contacts"], true, "{made:#}");
    assert_eq!(made["policy"], "merge");
    let rows = made["rows"].as_array().unwrap();
    assert_eq!(
        rows[0]["migrations"].as_array().unwrap().len(),
        3,
        "{made:#}"
    );
    assert_eq!(rows[0]["migration"], rows[0]["migrations"][0]);
    // Eve's row: refused whole, her contacts' missing password named as theirs.
    assert_eq!(rows[2]["status"], "invalid", "{made:#}");
    assert!(rows[2]["migrations"].as_array().unwrap().is_empty());
    let problems = rows[2]["problems"].to_string();
    assert!(
        problems.contains("contacts: ") && problems.contains("calendars: "),
        "{problems}"
    );
    let kinds: Vec<&str> = made["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 6, "{made:#}");
    for kind in ["mail", "contacts", "calendars"] {
        assert_eq!(kinds.iter().filter(|k| **k == kind).count(), 2, "{kinds:?}");
    }

    // Every migration completes.
    let ids: Vec<i64> = made["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    for id in &ids {
        let m = wait_status(&app, &token, *id, "completed").await;
        let pass = &m["passes"][0];
        assert_eq!(pass["failed"], 0, "{m:#}");
        let want = match m["kind"].as_str().unwrap() {
            "mail" => 3,
            "contacts" => 2,
            _ => 1,
        };
        assert_eq!(pass["copied"], want, "{m:#}");
    }

    // Each person's mail, cards and event are in their own new account.
    for (user, _, new) in people {
        let mut s = imap::login(&dst, user, new).await.unwrap();
        let got = imap::read_all(&mut s).await.unwrap();
        assert_eq!(got["INBOX"].len(), 3, "{user}");
        let login = (user, new);
        let cards = new_dav
            .read_collection(login, &format!("{}contacts/", new_dav.home(user)))
            .await
            .unwrap();
        assert_eq!(cards.len(), 2, "{user}: {cards:#?}");
        assert!(cards.iter().all(|c| c.contains(&format!("of {user}"))));
        let events = new_dav
            .read_collection(login, &format!("{}work/", new_dav.home(user)))
            .await
            .unwrap();
        assert_eq!(events.len(), 1, "{user}: {events:#?}");
        assert!(events[0].contains(&format!("UID:{user}-event")));
    }
    app.stop().await;
}
