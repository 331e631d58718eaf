//! An email to the support address, read into what a ticket keeps (mail-parser): the
//! sender, the subject, the text (HTML reduced to text when there is no text part),
//! the attachments, the threading keys (a `[#N]` tag in the subject, In-Reply-To and
//! References), and whether it was sent by a machine, which never gets an answer
//! (bounces, vacation and other auto-replies, mailing lists: the rules help desks such
//! as Zammad and FreeScout follow). Pure: the bytes in, the facts out; an email that
//! cannot be parsed is still an email, kept with its reason.

use mail_parser::{MessageParser, MimeHeaders};

pub use crate::domain::{Attachment, Inbound};

/// Reads an email. Never fails: what cannot be read is said in `unreadable`.
pub fn read(raw: &[u8]) -> Inbound {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Inbound {
            from: None,
            subject: String::new(),
            message_id: None,
            ticket_tag: None,
            answers: Vec::new(),
            text: String::new(),
            attachments: Vec::new(),
            automatic: None,
            unreadable: Some("the email has no header Ferry could read".into()),
        };
    };
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_lowercase())
        .filter(|a| a.contains('@'));
    let subject = message.subject().unwrap_or_default().trim().to_owned();
    let mut answers: Vec<String> = Vec::new();
    for value in [message.in_reply_to(), message.references()] {
        let ids: Vec<String> = match (value.as_text_list(), value.as_text()) {
            (Some(list), _) => list.iter().rev().map(|id| id.to_string()).collect(),
            (None, Some(one)) => vec![one.to_owned()],
            (None, None) => Vec::new(),
        };
        for id in ids {
            if !answers.contains(&id) {
                answers.push(id);
            }
        }
    }
    let attachments = message
        .attachments()
        .map(|part| Attachment {
            file_name: part
                .attachment_name()
                .map(str::to_owned)
                .unwrap_or_else(|| "attachment".into()),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_lowercase(),
            bytes: file_bytes(raw, part),
        })
        .collect();
    let header = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    let automatic = automatic(from.as_deref(), report, &header);
    Inbound {
        ticket_tag: ticket_tag(&subject),
        subject,
        from,
        message_id: message.message_id().map(str::to_owned),
        answers,
        text: message
            .body_text(0)
            .map(|t| t.trim().to_owned())
            .unwrap_or_default(),
        attachments,
        automatic,
        unreadable: None,
    }
}

/// An attached file's bytes as sent. mail-parser turns a text part (a CSV is one)
/// into UTF-8 text, lossily when its charset is unknown: a Windows-1252 list would
/// lose its accents. So a text part's bytes are its transfer-decoded body.
fn file_bytes(raw: &[u8], part: &mail_parser::MessagePart<'_>) -> Vec<u8> {
    use mail_parser::PartType;
    use mail_parser::decoders::{base64::base64_decode, quoted_printable::quoted_printable_decode};
    if !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
        return part.contents().to_vec();
    }
    let Some(body) = raw.get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)
    else {
        return part.contents().to_vec();
    };
    let decoded = match part
        .content_transfer_encoding()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("base64") => base64_decode(body),
        Some("quoted-printable") => quoted_printable_decode(body),
        _ => Some(body.to_vec()),
    };
    decoded.unwrap_or_else(|| part.contents().to_vec())
}

/// Why a machine sent it, if one did.
fn automatic(
    from: Option<&str>,
    report: bool,
    header: &dyn Fn(&str) -> Option<String>,
) -> Option<&'static str> {
    let local = from.and_then(|f| f.split('@').next()).unwrap_or_default();
    if report || local == "mailer-daemon" || local == "postmaster" {
        return Some("a delivery report (bounce)");
    }
    if header("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        return Some("marked Auto-Submitted");
    }
    if header("X-Autoreply").is_some() || header("X-Autorespond").is_some() {
        return Some("an auto-reply");
    }
    if header("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list")) {
        return Some("bulk or list mail (Precedence)");
    }
    if header("List-Id").is_some() {
        return Some("mail from a mailing list");
    }
    None
}

/// The number of the first `[#N]` in a subject.
pub fn ticket_tag(subject: &str) -> Option<u64> {
    let mut rest = subject;
    while let Some(at) = rest.find("[#") {
        let after = &rest[at + 2..];
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && after[digits.len()..].starts_with(']') {
            return digits.parse().ok();
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests;
