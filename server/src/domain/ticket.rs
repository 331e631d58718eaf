//! The support desk's records: a ticket, the emails of its thread (in from the
//! customer, out from Ferry) and the files attached to them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AttachmentId, MigrationId, TicketId, UserId};

/// Where a ticket is (the API's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Nobody has answered yet.
    New,
    /// Staff are on it.
    Open,
    /// Staff answered; the customer's turn.
    WaitingOnCustomer,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 4] =
        [Self::New, Self::Open, Self::WaitingOnCustomer, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Open => "open",
            Self::WaitingOnCustomer => "waiting_on_customer",
            Self::Closed => "closed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::Open => "Open",
            Self::WaitingOnCustomer => "Waiting on customer",
            Self::Closed => "Closed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl std::str::FromStr for TicketStatus {
    type Err = super::FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.trim()).ok_or_else(|| {
            super::FieldError::new(
                "status",
                format!("{s:?} is not a status; use new, open, waiting_on_customer or closed"),
            )
        })
    }
}

/// A ticket, without its thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ticket {
    pub id: TicketId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub subject: String,
    /// The sender of the email that opened it; `None` when it named none.
    pub requester: Option<String>,
    pub status: TicketStatus,
    pub assignee: Option<UserId>,
    /// The customer wrote last: staff owe an answer.
    pub awaiting_staff: bool,
    pub closed_at: Option<DateTime<Utc>>,
}

impl Ticket {
    /// The number people quote (`[#12]`).
    pub fn number(&self) -> i64 {
        self.id.0
    }

    /// What a reply's subject says: the tag, then the subject without older tags
    /// and answer prefixes.
    pub fn reply_subject(&self) -> String {
        let mut subject = self.subject.trim();
        loop {
            let lower = subject.to_ascii_lowercase();
            if let Some(rest) = ["re:", "aw:", "fw:", "fwd:"]
                .iter()
                .find_map(|p| lower.starts_with(p).then(|| &subject[p.len()..]))
            {
                subject = rest.trim_start();
            } else {
                break;
            }
        }
        let tag = format!("[#{}]", self.number());
        let subject = subject.replace(&tag, "");
        let subject = subject.trim();
        if subject.is_empty() {
            format!("Re: {tag} Your request")
        } else {
            format!("Re: {tag} {subject}")
        }
    }
}

/// Which way an email went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer (or a machine) to the support address.
    In,
    /// From Ferry: a staff reply, an acknowledgement, a migration's news.
    Out,
}

/// One email of a ticket's thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketMessage {
    pub direction: Direction,
    /// The row: a ticket message for `in`, an outbox row for `out`.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    /// Why no answer may go to it, when a machine sent it.
    pub automatic: Option<String>,
    /// Why it could not be read (its bytes are kept).
    pub unreadable: Option<String>,
    /// For `out`: whether it has left (`pending`, `sent`, `failed`).
    pub delivery: Option<String>,
    /// The migration it is about, for a migration's news.
    pub migration: Option<MigrationId>,
}

/// What an attached file is, as far as the desk cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// A list of mailboxes (CSV or spreadsheet).
    List,
    /// vCards (`.vcf`), for the contacts import.
    Contacts,
    /// iCalendar (`.ics`), for the calendar import.
    Calendar,
    Other,
}

impl AttachmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Contacts => "contacts",
            Self::Calendar => "calendar",
            Self::Other => "other",
        }
    }

    pub fn parse(raw: &str) -> Self {
        match raw {
            "list" => Self::List,
            "contacts" => Self::Contacts,
            "calendar" => Self::Calendar,
            _ => Self::Other,
        }
    }

    /// By the file's name, then its type.
    pub fn of(file_name: &str, content_type: &str) -> Self {
        let name = file_name.to_ascii_lowercase();
        let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
        match ext {
            "csv" | "tsv" | "txt" | "xlsx" | "xlsm" | "xls" | "ods" => Self::List,
            "vcf" | "vcard" => Self::Contacts,
            "ics" | "ical" | "ifb" => Self::Calendar,
            _ => match content_type {
                "text/csv" | "text/tab-separated-values" => Self::List,
                "text/vcard" | "text/x-vcard" => Self::Contacts,
                "text/calendar" => Self::Calendar,
                _ => Self::Other,
            },
        }
    }

    /// The cards or events in a contacts or calendar file, counted by their BEGIN
    /// lines (the import that reads them comes later).
    pub fn count_items(self, bytes: &[u8]) -> Option<u64> {
        let begin: &[u8] = match self {
            Self::Contacts => b"BEGIN:VCARD",
            Self::Calendar => b"BEGIN:VEVENT",
            _ => return None,
        };
        let n = bytes
            .split(|b| *b == b'\n')
            .filter(|line| {
                let line = line.trim_ascii();
                line.len() == begin.len() && line.eq_ignore_ascii_case(begin)
            })
            .count();
        Some(n as u64)
    }
}

/// A file attached to one of a ticket's emails, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketAttachment {
    pub id: AttachmentId,
    pub ticket: TicketId,
    pub message: i64,
    pub file_name: String,
    pub content_type: String,
    pub kind: AttachmentKind,
    /// Cards or events, for contacts and calendar files.
    pub items: Option<u64>,
    pub size: u64,
    /// When migrations were made from its rows.
    pub used_at: Option<DateTime<Utc>>,
    /// When its bytes were erased (the metadata stays).
    pub purged_at: Option<DateTime<Utc>>,
}

/// The headers that thread an email of Ferry's into a ticket's conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Thread {
    pub ticket: Option<TicketId>,
    /// The tag to put in the subject (`[#12]`), when not there already.
    pub tag: Option<String>,
    pub in_reply_to: Option<String>,
    /// Oldest first, space-separated as the header wants them.
    pub references: Vec<String>,
    /// The support address, so that the answer reaches the support mailbox.
    pub reply_to: Option<String>,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(subject: &str) -> Ticket {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        Ticket {
            id: TicketId(12),
            created_at: now,
            updated_at: now,
            subject: subject.into(),
            requester: None,
            status: TicketStatus::New,
            assignee: None,
            awaiting_staff: true,
            closed_at: None,
        }
    }

    #[test]
    fn a_reply_subject_has_one_tag_and_one_re() {
        assert_eq!(ticket("Move us").reply_subject(), "Re: [#12] Move us");
        assert_eq!(
            ticket("RE: Aw: [#12] Move us").reply_subject(),
            "Re: [#12] Move us"
        );
        assert_eq!(ticket("").reply_subject(), "Re: [#12] Your request");
    }

    #[test]
    fn files_are_sorted_by_kind_and_cards_counted() {
        assert_eq!(AttachmentKind::of("List.XLSX", ""), AttachmentKind::List);
        assert_eq!(
            AttachmentKind::of("a", "text/vcard"),
            AttachmentKind::Contacts
        );
        assert_eq!(AttachmentKind::of("cal.ics", ""), AttachmentKind::Calendar);
        assert_eq!(
            AttachmentKind::of("photo.jpg", "image/jpeg"),
            AttachmentKind::Other
        );
        let vcf = b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\nbegin:vcard\r\nFN:B\r\nEND:VCARD\r\n";
        assert_eq!(AttachmentKind::Contacts.count_items(vcf), Some(2));
        let ics =
            b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VEVENT\nBEGIN:VTODO\nEND:VTODO\nEND:VCALENDAR\n";
        assert_eq!(AttachmentKind::Calendar.count_items(ics), Some(1));
        assert_eq!(AttachmentKind::List.count_items(vcf), None);
    }
}
