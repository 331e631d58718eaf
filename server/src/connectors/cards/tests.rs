//! The readers on the kinds of cards and calendars customers send: every version,
//! exceptions with their series, items without UID, broken and cut-off files.

use super::*;

const CARDS: &str = "BEGIN:VCARD\r\n\
VERSION:2.1\r\n\
N:Muster;Max;;;\r\n\
FN:Max Muster\r\n\
TEL;WORK;VOICE:+49 30 1234567\r\n\
TEL;CELL:+49 170 7654321\r\n\
EMAIL;INTERNET:max@example.de\r\n\
UID:max-21\r\n\
END:VCARD\r\n\
BEGIN:VCARD\r\n\
VERSION:3.0\r\n\
UID:ana-30\r\n\
FN:Ana Lima\r\n\
N:Lima;Ana;;;\r\n\
EMAIL;TYPE=work:ana@work.example\r\n\
EMAIL;TYPE=home:ana@home.example\r\n\
ADR;TYPE=home:;;Rua A 1;Lisboa;;1000-001;Portugal\r\n\
ADR;TYPE=work:;;Av. B 2;Porto;;4000-002;Portugal\r\n\
CATEGORIES:Friends,Football\r\n\
item1.X-ABLABEL:Favourite\r\n\
item1.URL:https://ana.example\r\n\
X-CUSTOM-FIELD:kept as it is\r\n\
PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n\
END:VCARD\r\n\
BEGIN:VCARD\r\n\
VERSION:4.0\r\n\
FN:Bo Chen\r\n\
EMAIL:bo@example.org\r\n\
END:VCARD\r\n";

#[test]
fn every_card_of_a_file_is_an_item_with_its_uid_and_its_properties() {
    let read = read_vcards(CARDS);
    assert_eq!(read.bad, []);
    let uids: Vec<&str> = read.items.iter().map(|i| i.uid.as_str()).collect();
    assert_eq!(uids[..2], ["max-21", "ana-30"]);
    let labels: Vec<&str> = read.items.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(labels, ["Max Muster", "Ana Lima", "Bo Chen"]);
    let ana = &read.items[1].data;
    for kept in [
        "ana@work.example",
        "ana@home.example",
        "Rua A 1",
        "Av. B 2",
        "Friends",
        "Football",
        "item1.X-ABLABEL:Favourite",
        "item1.URL:https://ana.example",
        "X-CUSTOM-FIELD:kept as it is",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
    ] {
        assert!(
            ana.replace("\r\n ", "").contains(kept),
            "{kept:?} is kept in:\n{ana}"
        );
    }
    let max = &read.items[0].data;
    assert!(
        max.contains("+49 30 1234567") && max.contains("+49 170 7654321"),
        "{max}"
    );
}

#[test]
fn a_card_without_a_uid_gets_the_same_derived_one_every_time() {
    let first = read_vcards(CARDS);
    let again = read_vcards(CARDS);
    let bo = &first.items[2];
    assert!(bo.uid.starts_with("ferry-"), "{}", bo.uid);
    assert_eq!(bo.uid, again.items[2].uid);
    assert!(bo.data.contains(&format!("UID:{}", bo.uid)), "{}", bo.data);
    // Read again from what Ferry writes, the card keeps that UID.
    assert_eq!(read_vcards(&bo.data).items[0].uid, bo.uid);
}

#[test]
fn a_bad_card_is_reported_with_its_place_and_the_rest_are_read() {
    let text = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:a\r\nFN:A\r\nEND:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:3.0\r\nUID:nameless\r\nEMAIL:x@example.com\r\nEND:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c\r\nFN:C\r\nEND:VCARD\r\n\
BEGIN:VCARD\r\nVERSION:3.0\r\nUID:cut\r\nFN:Cut off\r\n";
    let read = read_vcards(text);
    let uids: Vec<&str> = read.items.iter().map(|i| i.uid.as_str()).collect();
    assert_eq!(uids, ["a", "c"]);
    assert_eq!(read.bad.len(), 2, "{:?}", read.bad);
    assert_eq!(read.bad[0].position, 2);
    assert!(read.bad[0].reason.contains("no name"), "{:?}", read.bad[0]);
    assert_eq!(read.bad[1].position, 4);
    assert!(
        read.bad[1].reason.contains("not closed"),
        "{:?}",
        read.bad[1]
    );
}

const CALENDAR: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Example//Exporter//EN\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:Europe/Berlin\r\n\
BEGIN:STANDARD\r\n\
DTSTART:19701025T030000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n\
TZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\n\
END:STANDARD\r\n\
BEGIN:DAYLIGHT\r\n\
DTSTART:19700329T020000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n\
TZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0200\r\n\
END:DAYLIGHT\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
UID:weekly-1\r\n\
DTSTAMP:20261101T090000Z\r\n\
DTSTART;TZID=Europe/Berlin:20261102T100000\r\n\
DTEND;TZID=Europe/Berlin:20261102T103000\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10\r\n\
SUMMARY:Team meeting\r\n\
CATEGORIES:Work\r\n\
BEGIN:VALARM\r\n\
ACTION:DISPLAY\r\n\
DESCRIPTION:Team meeting\r\n\
TRIGGER:-PT15M\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VTODO\r\n\
UID:task-1\r\n\
DTSTAMP:20261101T090000Z\r\n\
DUE:20261110T170000Z\r\n\
COMPLETED:20261105T120000Z\r\n\
STATUS:COMPLETED\r\n\
SUMMARY:Send the report\r\n\
END:VTODO\r\n\
BEGIN:VEVENT\r\n\
UID:weekly-1\r\n\
RECURRENCE-ID;TZID=Europe/Berlin:20261109T100000\r\n\
DTSTAMP:20261101T090000Z\r\n\
DTSTART;TZID=Europe/Berlin:20261109T113000\r\n\
DTEND;TZID=Europe/Berlin:20261109T120000\r\n\
SUMMARY:Team meeting (moved)\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:no-start\r\n\
DTSTAMP:20261101T090000Z\r\n\
SUMMARY:Someday\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
DTSTAMP:20261101T090000Z\r\n\
DTSTART:20261201T090000Z\r\n\
SUMMARY:No UID\r\n\
X-MS-OLK-CONFTYPE:0\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

#[test]
fn a_recurring_event_and_its_exceptions_are_one_item_with_the_time_zone_and_alarm() {
    let read = read_icalendar(CALENDAR);
    let uids: Vec<&str> = read.items.iter().map(|i| i.uid.as_str()).collect();
    assert_eq!(uids.len(), 3, "{uids:?}");
    assert_eq!(uids[..2], ["weekly-1", "task-1"]);
    let weekly = read.items[0].data.replace("\r\n ", "");
    assert_eq!(weekly.matches("BEGIN:VEVENT").count(), 2, "{weekly}");
    for kept in [
        "TZID:Europe/Berlin",
        "BEGIN:DAYLIGHT",
        "RRULE:FREQ=WEEKLY",
        "RECURRENCE-ID;TZID=Europe/Berlin:20261109T100000",
        "SUMMARY:Team meeting (moved)",
        "BEGIN:VALARM",
        "TRIGGER:-PT15M",
        "CATEGORIES:Work",
        "PRODID:-//Example//Exporter//EN",
    ] {
        assert!(weekly.contains(kept), "{kept:?} is kept in:\n{weekly}");
    }
    assert!(!weekly.contains("Send the report"), "one UID per item");
    assert_eq!(read.items[0].label, "Team meeting");
    let task = read.items[1].data.replace("\r\n ", "");
    for kept in [
        "BEGIN:VTODO",
        "STATUS:COMPLETED",
        "DUE:20261110T170000Z",
        "COMPLETED:20261105T120000Z",
    ] {
        assert!(task.contains(kept), "{kept:?} is kept in:\n{task}");
    }
    // The event without UID gets a derived one, written into it; X- properties stay.
    let no_uid = &read.items[2];
    assert!(no_uid.uid.starts_with("ferry-"));
    assert!(
        no_uid.data.contains(&format!("UID:{}", no_uid.uid)),
        "{}",
        no_uid.data
    );
    assert!(
        no_uid.data.contains("X-MS-OLK-CONFTYPE:0"),
        "{}",
        no_uid.data
    );
    assert_eq!(read_icalendar(CALENDAR).items[2].uid, no_uid.uid);
    // The event without a start is reported, the rest read.
    assert_eq!(read.bad.len(), 1, "{:?}", read.bad);
    assert!(read.bad[0].reason.contains("Someday") && read.bad[0].reason.contains("DTSTART"));
}

#[test]
fn a_contact_in_a_calendar_file_and_a_calendar_in_a_contacts_file_are_named() {
    let read = read_icalendar("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n");
    assert!(read.bad[0].reason.contains(".vcf"), "{:?}", read.bad);
    let read = read_vcards(CALENDAR);
    assert!(read.items.is_empty());
    assert!(read.bad[0].reason.contains(".ics"), "{:?}", read.bad);
}

#[test]
fn a_file_cut_off_in_its_last_entry_refuses_that_entry_not_the_ones_before() {
    let cut = &CALENDAR[..CALENDAR.find("BEGIN:VEVENT\r\nUID:no-start").unwrap()];
    let whole = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:first\r\n\
DTSTAMP:20261101T090000Z\r\nDTSTART:20261201T090000Z\r\nSUMMARY:First\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let read = read_icalendar(&format!("{whole}{cut}"));
    let uids: Vec<&str> = read.items.iter().map(|i| i.uid.as_str()).collect();
    assert_eq!(uids, ["first"]);
    assert!(
        read.bad.iter().any(|b| b.reason.contains("cut off")),
        "{:?}",
        read.bad
    );
}

#[test]
fn control_characters_are_dropped_from_what_is_written() {
    let read = read_vcards(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:nul\r\nFN:Nul\u{0}l\u{7}\r\nNOTE:a\tb\r\nEND:VCARD\r\n",
    );
    let data = &read.items[0].data;
    assert!(
        !data.contains('\u{0}') && !data.contains('\u{7}'),
        "{data:?}"
    );
    assert!(data.contains("Null") && data.contains("a\tb"), "{data:?}");
}

#[test]
fn a_photo_of_nul_bytes_is_refused_not_shortened() {
    let read = read_vcards(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:z\r\nFN:Zero\r\nPHOTO;ENCODING=b;TYPE=JPEG:AAAAAAAA\r\nEND:VCARD\r\n\
         BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ok\r\nFN:Fine\r\nEND:VCARD\r\n",
    );
    assert_eq!(read.items.len(), 1);
    assert_eq!(read.bad.len(), 1);
    assert!(read.bad[0].reason.contains("PHOTO"), "{:?}", read.bad[0]);
}
