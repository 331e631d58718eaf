//! An email to the support address, read into what a ticket keeps (mail-parser): the
//! sender, the subject, the text (HTML reduced to text when there is no text part),
//! the attachments, the threading keys (a `[#N]` tag in the subject, In-Reply-To and
//! References), and whether it was sent by a machine, which never gets an answer
//! (bounces, vacation and other auto-replies, mailing lists: the rules help desks such
//! as Zammad and FreeScout follow). Pure: the bytes in, the facts out; an email that
//! cannot be parsed is still an email, kept with its reason.

use mail_parser::{MessageParser, MimeHeaders};

/// What a ticket needs of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The sender's address, lowercased; `None` when the email names none.
    pub from: Option<String>,
    pub subject: String,
    pub message_id: Option<String>,
    /// The ticket number of a `[#N]` tag in the subject (Ferry's replies carry one).
    pub ticket_tag: Option<u64>,
    /// In-Reply-To, then References, newest first: the messages this one answers.
    pub answers: Vec<String>,
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// Why no reply may go to it, when a machine sent it.
    pub automatic: Option<&'static str>,
    /// Why it could not be read, when it could not (the bytes are kept anyway).
    pub unreadable: Option<String>,
}

/// One attached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

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
            bytes: part.contents().to_vec(),
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
