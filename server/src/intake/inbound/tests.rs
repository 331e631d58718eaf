//! Support emails as mail clients, robots and broken senders write them.

use super::*;

fn email(headers: &str, body: &str) -> Vec<u8> {
    format!("{headers}\r\n\r\n{body}").into_bytes()
}

#[test]
fn a_reply_carries_its_sender_tag_and_thread() {
    let e = read(&email(
        "From: Jane Doe <Jane@Customer.Example>\r\nTo: support@provider.example\r\nSubject: Re: [#42] Your migration request\r\nMessage-ID: <r1@customer.example>\r\nIn-Reply-To: <ack-42@provider.example>\r\nReferences: <first@customer.example> <ack-42@provider.example>",
        "Here is the password.\r\n",
    ));
    assert_eq!(e.from.as_deref(), Some("jane@customer.example"));
    assert_eq!(e.ticket_tag, Some(42));
    assert_eq!(e.message_id.as_deref(), Some("r1@customer.example"));
    assert_eq!(
        e.answers,
        ["ack-42@provider.example", "first@customer.example"]
    );
    assert_eq!(e.text, "Here is the password.");
    assert_eq!(e.automatic, None);
    assert_eq!(e.unreadable, None);
}

#[test]
fn html_only_mail_is_read_as_text_and_attachments_come_whole() {
    let raw = email(
        "From: a@customer.example\r\nSubject: list\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"",
        "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Please move <b>these</b> mailboxes.</p>\r\n--b\r\nContent-Type: text/csv; name=\"list.csv\"\r\nContent-Disposition: attachment; filename=\"list.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\nc291cmNlIGVtYWlsO3NvdXJjZSBwYXNzd29yZAo=\r\n--b--\r\n",
    );
    let e = read(&raw);
    assert!(
        e.text.contains("Please move these mailboxes."),
        "{:?}",
        e.text
    );
    assert!(!e.text.contains("<b>"), "{:?}", e.text);
    assert_eq!(e.attachments.len(), 1);
    let a = &e.attachments[0];
    assert_eq!(a.file_name, "list.csv");
    assert_eq!(a.content_type, "text/csv");
    assert_eq!(a.bytes, b"source email;source password\n");
}

#[test]
fn machines_are_known_and_never_answered() {
    let cases = [
        (
            "From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered Mail",
            "a delivery report (bounce)",
        ),
        (
            "From: a@x.example\r\nSubject: r\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"z\"",
            "a delivery report (bounce)",
        ),
        (
            "From: a@x.example\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied",
            "marked Auto-Submitted",
        ),
        (
            "From: a@x.example\r\nSubject: Away\r\nX-Autoreply: yes",
            "an auto-reply",
        ),
        (
            "From: a@x.example\r\nSubject: News\r\nPrecedence: bulk",
            "bulk or list mail (Precedence)",
        ),
        (
            "From: a@x.example\r\nSubject: [list] hi\r\nList-Id: <users.lists.example>",
            "mail from a mailing list",
        ),
    ];
    for (headers, why) in cases {
        assert_eq!(read(&email(headers, "x")).automatic, Some(why), "{headers}");
    }
    let person = read(&email(
        "From: a@x.example\r\nSubject: hi\r\nAuto-Submitted: no",
        "x",
    ));
    assert_eq!(person.automatic, None, "Auto-Submitted: no is a person");
}

#[test]
fn broken_mail_is_still_an_email_with_a_reason() {
    let no_sender = read(&email("Subject: who am I", "body"));
    assert_eq!(no_sender.from, None);
    assert_eq!(no_sender.subject, "who am I");
    let garbage = read(b"");
    assert!(garbage.unreadable.is_some());
    // A Latin-1 subject sent raw, and one as an encoded word: both readable text.
    let mut raw = b"From: a@x.example\r\nSubject: Migration termin\xe9e\r\n\r\nx".to_vec();
    let e = read(&raw);
    assert!(e.subject.starts_with("Migration termin"), "{:?}", e.subject);
    raw = email(
        "From: a@x.example\r\nSubject: =?ISO-8859-1?Q?Migration_termin=E9e?=",
        "x",
    );
    assert_eq!(read(&raw).subject, "Migration terminée");
    // A multipart without its closing boundary: its sender and subject still read.
    let cut = read(&email(
        "From: a@x.example\r\nSubject: cut\r\nContent-Type: multipart/mixed; boundary=\"q\"",
        "--q\r\nContent-Type: text/plain\r\n\r\nthe start",
    ));
    assert_eq!(
        (cut.from.as_deref(), cut.subject.as_str()),
        (Some("a@x.example"), "cut")
    );
}

#[test]
fn the_tag_is_the_first_well_formed_one() {
    assert_eq!(ticket_tag("Re: [#7] hello"), Some(7));
    assert_eq!(ticket_tag("[#x] then [#19]"), Some(19));
    assert_eq!(ticket_tag("[#] [#12"), None);
    assert_eq!(ticket_tag("no tag"), None);
}
