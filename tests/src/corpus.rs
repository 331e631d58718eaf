//! Deterministic test mailboxes: nested and Unicode folders, special folders under
//! another provider's names, flags and keywords, dates over years, messages without a
//! Message-ID, and a message twice in its folder.

use chrono::{FixedOffset, TimeZone};

use crate::imap::SeedMessage;

/// A message of about `size` bytes; `n` makes it unique.
pub fn message(n: usize, message_id: bool, size: usize) -> Vec<u8> {
    let mut m = String::new();
    m.push_str(&format!(
        "From: Sender {n} <sender{n}@old.example>\r\nTo: Jane <jane@old.example>\r\n"
    ));
    m.push_str(&format!(
        "Subject: Message {n} =?utf-8?q?caf=C3=A9?=\r\nDate: Tue, 3 Mar 2020 10:{:02}:00 +0100\r\n",
        n % 60
    ));
    if message_id {
        m.push_str(&format!("Message-ID: <msg-{n}@old.example>\r\n"));
    }
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    let line = format!("Line of message {n}: the quick brown fox jumps over the lazy dog.\r\n");
    while m.len() < size {
        m.push_str(&line);
    }
    m.push_str("-- \r\nJane\r\n");
    m.into_bytes()
}

fn seed(n: usize, flags: &[&str], year: i32) -> SeedMessage {
    let tz = FixedOffset::east_opt(3600).expect("an offset");
    SeedMessage {
        body: message(n, n % 7 != 3, 600 + (n * 37) % 3000),
        flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        internal_date: tz
            .with_ymd_and_hms(year, 1 + (n % 12) as u32, 1 + (n % 28) as u32, 9, 30, 0)
            .single(),
    }
}

/// The source mailbox: folder path (with `/` between levels) → messages.
pub fn mailbox() -> Vec<(&'static str, Vec<SeedMessage>)> {
    let dup = seed(900, &["\\Seen"], 2021);
    vec![
        (
            "INBOX",
            (0..12)
                .map(|n| seed(n, if n % 2 == 0 { &["\\Seen"] } else { &[] }, 2024))
                .chain([dup.clone(), dup])
                .collect(),
        ),
        (
            "Sent Items",
            (20..26)
                .map(|n| seed(n, &["\\Seen", "\\Answered"], 2023))
                .collect(),
        ),
        (
            "Deleted Items",
            (30..33)
                .map(|n| seed(n, &["\\Seen", "\\Deleted"], 2022))
                .collect(),
        ),
        (
            "Projects",
            (40..43)
                .map(|n| seed(n, &["$Important", "\\Flagged"], 2021))
                .collect(),
        ),
        (
            "Projects/2019",
            (50..52).map(|n| seed(n, &["$Label1"], 2019)).collect(),
        ),
        (
            "Café & Crème",
            (60..63).map(|n| seed(n, &["\\Seen"], 2018)).collect(),
        ),
        ("Empty", Vec::new()),
    ]
}
