//! The pieces of the IMAP protocol Ferry writes itself, with no socket: UID sets
//! (compact, and cut to a length servers accept), quoted names, APPEND's literal
//! prefix, flags as text, the server's own words from a refusal, and the NAMESPACE
//! answer, which async-imap's parser cannot read (see `ImapConnection::ask_namespace`).

use async_imap::types::Flag;
use chrono::{DateTime, FixedOffset};

use crate::domain::Namespace;

/// The longest UID set put in one command. Servers limit a command line (Dovecot
/// 64 KiB, others far less: Courier 8 KiB); chatmail core keeps sets under ~1000
/// characters, and so does Ferry, which costs one command per thousand characters.
pub const MAX_UID_SET: usize = 1000;

/// How much of a raw answer is read before giving up on it (NAMESPACE answers are a
/// few dozen bytes).
pub const MAX_RAW_ANSWER: usize = 64 * 1024;

/// A compact UID set: `1:5,9,12:14`, whatever its length.
pub fn uid_set(uids: &[u32]) -> String {
    ranges(uids).join(",")
}

/// The same UIDs as sets of at most `MAX_UID_SET` characters each (none when empty).
pub fn uid_sets(uids: &[u32]) -> Vec<String> {
    let mut sets = Vec::new();
    let mut current = String::new();
    for range in ranges(uids) {
        if !current.is_empty() && current.len() + 1 + range.len() > MAX_UID_SET {
            sets.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&range);
    }
    if !current.is_empty() {
        sets.push(current);
    }
    sets
}

fn ranges(uids: &[u32]) -> Vec<String> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut iter = sorted.into_iter();
    let Some(mut start) = iter.next() else {
        return parts;
    };
    let mut end = start;
    let range = |start: u32, end: u32| {
        if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        }
    };
    for uid in iter {
        if uid == end + 1 {
            end = uid;
        } else {
            parts.push(range(start, end));
            start = uid;
            end = uid;
        }
    }
    parts.push(range(start, end));
    parts
}

/// Where the tagged completion line `tag …\r\n` ends in `buf`, if it has arrived.
pub fn tagged_end(buf: &[u8], tag: &str) -> Option<usize> {
    let mut line_start = 0;
    while let Some(pos) = buf[line_start..].windows(2).position(|w| w == b"\r\n") {
        let line_end = line_start + pos;
        if buf[line_start..line_end].starts_with(tag.as_bytes()) {
            return Some(line_end);
        }
        line_start = line_end + 2;
    }
    None
}

/// The personal namespace of an untagged `* NAMESPACE (("INBOX." ".")) NIL NIL` line:
/// its first prefix and delimiter. `None` for another line, or when the server has no
/// personal namespace (`NIL`) or no hierarchy (delimiter `NIL`).
pub fn parse_namespace(line: &str) -> Option<Namespace> {
    let rest = line.strip_prefix("* ")?.trim_start();
    let rest = strip_prefix_ignore_case(rest, "NAMESPACE")?.trim_start();
    let rest = rest.strip_prefix("((")?;
    let (prefix, rest) = quoted(rest)?;
    let rest = rest.trim_start();
    let delimiter = if strip_prefix_ignore_case(rest, "NIL").is_some() {
        return None;
    } else {
        let (d, _) = quoted(rest)?;
        let mut chars = d.chars();
        let c = chars.next()?;
        if chars.next().is_some() {
            return None;
        }
        c
    };
    Some(Namespace { delimiter, prefix })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get`, not indexing: the cut may fall inside a character of a server's answer
    // (found by fuzz/imap_answers).
    let (head, rest) = (s.get(..prefix.len())?, s.get(prefix.len()..)?);
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

/// A quoted string at the start of `s` (with `\"` and `\\` escapes) and what follows.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        match c {
            _ if escaped => {
                out.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => return Some((out, &s[i + 1..])),
            _ => out.push(c),
        }
    }
    None
}

pub fn flag_text(flag: &Flag<'_>) -> Option<String> {
    Some(match flag {
        Flag::Recent => return None,
        Flag::Seen => "\\Seen".into(),
        Flag::Answered => "\\Answered".into(),
        Flag::Flagged => "\\Flagged".into(),
        Flag::Deleted => "\\Deleted".into(),
        Flag::Draft => "\\Draft".into(),
        Flag::MayCreate => return None,
        Flag::Custom(name) => name.to_string(),
    })
}

/// The server's own sentence from async-imap's rendering of a NO/BAD
/// (`code: …, info: Some("…")`).
pub fn server_words(text: &str) -> String {
    text.split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(words, _)| words.replace("\\\"", "\""))
        .unwrap_or_else(|| text.trim().to_owned())
}

/// Quotes a string for an IMAP command (names come from LIST or from our planner).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `(flags) "date" {n+}`: the part of APPEND before each literal.
pub fn literal_spec(
    flags: &[String],
    internal_date: Option<DateTime<FixedOffset>>,
    len: usize,
    non_sync: bool,
) -> String {
    let flags: Vec<&str> = flags
        .iter()
        .map(String::as_str)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    let date = internal_date
        .map(|d| format!(" \"{}\"", d.format("%d-%b-%Y %H:%M:%S %z")))
        .unwrap_or_default();
    format!(
        "({}){date} {{{len}{}}}",
        flags.join(" "),
        if non_sync { "+" } else { "" }
    )
}

pub fn refusal(words: Option<&str>) -> String {
    words.unwrap_or("APPEND refused").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_with_their_quotes_and_backslashes_escaped() {
        assert_eq!(quote("INBOX"), "\"INBOX\"");
        assert_eq!(quote(r#"Say "hi"\now"#), r#""Say \"hi\"\\now""#);
    }

    #[test]
    fn an_append_literal_carries_flags_date_and_size_and_never_recent() {
        let flags = vec![
            "\\Seen".to_owned(),
            "\\Recent".to_owned(),
            "$Label1".to_owned(),
        ];
        let date = DateTime::parse_from_rfc3339("2024-03-05T09:07:01+01:00").ok();
        assert_eq!(
            literal_spec(&flags, date, 1234, true),
            "(\\Seen $Label1) \"05-Mar-2024 09:07:01 +0100\" {1234+}"
        );
        assert_eq!(literal_spec(&[], None, 7, false), "() {7}");
    }

    #[test]
    fn the_servers_own_words_are_taken_from_a_refusal() {
        assert_eq!(
            server_words(r#"code: None, info: Some("Mailbox doesn't \"exist\"")"#),
            r#"Mailbox doesn't "exist""#
        );
        assert_eq!(server_words("  plain text  "), "plain text");
        assert_eq!(refusal(None), "APPEND refused");
        assert_eq!(refusal(Some(" [TOOBIG] too large ")), "[TOOBIG] too large");
    }

    #[test]
    fn a_namespace_answer_with_non_ascii_bytes_is_refused_not_a_panic() {
        // The ninth byte, where NAMESPACE would end, falls inside a character.
        assert_eq!(parse_namespace("* NAMESP*\u{fffd}\u{fffd} NIL"), None);
        assert_eq!(
            parse_namespace("* NAMESPAC\u{e9} ((\"\" \"/\")) NIL NIL"),
            None
        );
    }

    #[test]
    fn uid_sets_are_compact_and_cut_to_a_length_servers_accept() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 12, 13, 14, 3]), "1:3,5,9,12:14");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[]), "");
        assert!(uid_sets(&[]).is_empty());
        assert_eq!(uid_sets(&(1..=100_000).collect::<Vec<_>>()), ["1:100000"]);
        let every_other: Vec<u32> = (1..=20_000).step_by(2).collect();
        let sets = uid_sets(&every_other);
        assert!(sets.len() > 10, "{}", sets.len());
        assert!(sets.iter().all(|s| s.len() <= MAX_UID_SET));
        let back: Vec<u32> = sets
            .iter()
            .flat_map(|s| s.split(','))
            .map(|n| n.parse::<u32>().unwrap())
            .collect();
        assert_eq!(back, every_other);
    }

    #[test]
    fn namespace_answers_give_the_personal_prefix_and_delimiter() {
        let check = |line: &str, expect: Option<(&str, char)>| {
            let got = parse_namespace(line).map(|n| (n.prefix, n.delimiter));
            assert_eq!(got, expect.map(|(p, d)| (p.to_owned(), d)), "{line}");
        };
        check("* NAMESPACE ((\"\" \"/\")) NIL NIL", Some(("", '/')));
        check(
            "* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\"))",
            Some(("INBOX.", '.')),
        );
        check(
            "* namespace ((\"\" \".\")(\"#mh/\" \"/\")) NIL NIL",
            Some(("", '.')),
        );
        check(
            "* NAMESPACE ((\"a\\\"b/\" \"/\")) NIL NIL",
            Some(("a\"b/", '/')),
        );
        check("* NAMESPACE NIL NIL NIL", None);
        check("* NAMESPACE ((\"\" NIL)) NIL NIL", None);
        check("* OK still here", None);
        check("* NAMESPACE ((\"unterminated", None);
    }

    #[test]
    fn the_tagged_line_is_found_once_it_is_whole() {
        let tag = "A7 ";
        assert_eq!(tagged_end(b"* NAMESPACE NIL NIL NIL\r\nA7 OK", tag), None);
        let buf = b"* NAMESPACE NIL NIL NIL\r\nA7 OK done\r\n";
        assert_eq!(tagged_end(buf, tag), Some(buf.len() - 2));
        assert_eq!(tagged_end(b"A70 OK\r\n", tag), None);
    }
}
