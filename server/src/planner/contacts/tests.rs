//! The merge rule, case by case: who is the same person, and what the merged card holds.

use calcard::Entry;
use calcard::vcard::VCard;

use super::*;

fn card(lines: &str) -> VCard {
    let text = format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\n{}\r\nEND:VCARD\r\n",
        lines.replace('\n', "\r\n")
    );
    match calcard::Parser::new(&text).entry() {
        Entry::VCard(card) => card,
        other => panic!("{other:?}"),
    }
}

/// The card's lines, unfolded, without BEGIN/END, sorted.
fn lines(card: &VCard) -> Vec<String> {
    let mut lines: Vec<String> = card
        .to_string()
        .replace("\r\n ", "")
        .lines()
        .filter(|l| !l.starts_with("BEGIN:") && !l.starts_with("END:"))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[test]
fn the_same_person_is_found_by_uid_then_email_then_phone_then_name() {
    let dest = [
        card("UID:d-1\nFN:Ana Lima\nEMAIL:ana@old.example"),
        card("UID:d-2\nFN:Bo Chen\nTEL:+49 30 1234567"),
        card("UID:d-3\nFN:Cy Diaz"),
        card("UID:d-4\nFN:Someone Else\nEMAIL:ANA@new.example"),
    ];
    let cases: [(&str, Option<(usize, MatchedBy)>); 9] = [
        ("UID:d-3\nFN:Renamed", Some((2, MatchedBy::Uid))),
        // A UID match wins over an email match elsewhere.
        (
            "UID:d-2\nFN:X\nEMAIL:ana@old.example",
            Some((1, MatchedBy::Uid)),
        ),
        (
            "UID:s-1\nFN:Ana L.\nEMAIL:mailto:Ana@Old.Example ",
            Some((0, MatchedBy::Email)),
        ),
        (
            "UID:s-2\nFN:A\nEMAIL:ana@new.example",
            Some((3, MatchedBy::Email)),
        ),
        (
            "UID:s-3\nFN:B\nTEL:0049-30-1234567",
            Some((1, MatchedBy::Phone)),
        ),
        (
            "UID:s-4\nFN:B\nTEL;TYPE=cell:tel:+4930 123 4567",
            Some((1, MatchedBy::Phone)),
        ),
        // A national number is not matched to an international one.
        ("UID:s-5\nFN:B\nTEL:030 1234567", None),
        ("UID:s-6\nFN:Cy  Diaz", Some((2, MatchedBy::Name))),
        ("UID:s-7\nFN:cy diaz", None),
    ];
    // The index finds what the rule finds, from the cards sharing a key only.
    let people = People::new(dest.to_vec());
    for (source, want) in cases {
        assert_eq!(find_match(&card(source), &dest), want, "{source}");
        assert_eq!(people.find(&card(source)), want, "indexed: {source}");
    }
}

#[test]
fn a_merged_card_keeps_every_value_of_both_sides() {
    let cases = [
        // Multi-valued properties: the source's new ones are added; equal ones are not
        // doubled (emails without case, phones by digits).
        (
            "UID:d\nFN:Ana Lima\nEMAIL:ana@old.example\nTEL:+49 30 1234567",
            "UID:s\nFN:Ana Lima\nEMAIL:ANA@old.example\nEMAIL:ana@home.example\nTEL:0049 30 1234567\nTEL:+351 21 000 0000",
            vec![
                "EMAIL:ana@home.example",
                "EMAIL:ana@old.example",
                "FN:Ana Lima",
                "TEL:+351 21 000 0000",
                "TEL:+49 30 1234567",
                "UID:d",
                "VERSION:3.0",
            ],
        ),
        // Single-valued: taken when missing; when both differ, the destination's stays
        // and the source's is kept in a note.
        (
            "UID:d\nFN:Ana Lima\nBDAY:19800102",
            "UID:s\nFN:Ana Maria Lima\nN:Lima;Ana;Maria;;\nBDAY:19800102",
            vec![
                "BDAY:1980-01-02",
                "FN:Ana Lima",
                "N:Lima;Ana;Maria;;",
                "NOTE:From the old address book: FN:Ana Maria Lima",
                "UID:d",
                "VERSION:3.0",
            ],
        ),
        // Categories joined, each once; unknown and X- properties and photos added.
        (
            "UID:d\nFN:Bo\nCATEGORIES:Friends,Work",
            "UID:s\nFN:Bo\nCATEGORIES:work,Football\nX-SPOUSE:Cy\nPHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgo=",
            vec![
                "CATEGORIES:Friends,Work,Football",
                "FN:Bo",
                "PHOTO;TYPE=PNG;ENCODING=b:iVBORw0KGgo=",
                "UID:d",
                "VERSION:3.0",
                "X-SPOUSE:Cy",
            ],
        ),
    ];
    for (dest, source, want) in cases {
        let merged = merge(&card(dest), &card(source));
        assert_eq!(lines(&merged), want, "{dest}\n+\n{source}");
        // Merging again changes nothing.
        assert_eq!(lines(&merge(&merged, &card(source))), want);
    }
}
