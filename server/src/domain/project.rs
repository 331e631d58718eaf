//! Projects: many mailboxes moved as one. Their code (`FY-7K3M-Q9P2`), which a person
//! reads aloud and types, their options applied to every row, and the totals that say
//! where a project stands. Pure.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{
    DuplicatePolicy, FieldError, ItemPolicy, Migration, MigrationKind, MigrationStatus, Mode,
    ProjectId, TicketId,
};

/// The code's alphabet: Crockford's base 32 (no I, L, O, U), so that what a person
/// reads aloud cannot be typed as another code.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A project's public ID: `FY-` and two groups of four from `ALPHABET` (40 bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectCode(String);

impl ProjectCode {
    /// The code of eight random bytes (five are used).
    pub fn from_random(bytes: [u8; 8]) -> Self {
        let chars: String = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % 32]))
            .collect();
        Self(format!("FY-{}-{}", &chars[..4], &chars[4..]))
    }

    /// A code as a person typed it: any case, spaces or dashes anywhere, the prefix
    /// optional, and the letters Crockford reads as digits (O as 0, I and L as 1).
    pub fn parse(field: &'static str, text: &str) -> Result<Self, FieldError> {
        let mut chars: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            })
            .collect();
        if chars.len() == 10 && chars.starts_with("FY") {
            chars.drain(..2);
        }
        if chars.len() != 8 || !chars.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(FieldError::new(
                field,
                "a project ID looks like FY-7K3M-Q9P2; copy it from the email that announced the project",
            ));
        }
        Ok(Self(format!("FY-{}-{}", &chars[..4], &chars[4..])))
    }

    /// As stored; only the store builds a code from it.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What every mailbox of a project copies, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectOptions {
    /// Folders and messages, or the folder tree only.
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub duplicates: DuplicatePolicy,
    /// Only messages from this day on.
    #[serde(default)]
    pub import_since: Option<NaiveDate>,
    /// A full copy before the MX change and a final one after it; false: one pass.
    #[serde(default = "yes")]
    pub two_pass: bool,
    /// A daily digest to the requester while it runs.
    #[serde(default = "yes")]
    pub digest: bool,
    /// Each row's mail (true unless turned off: a contacts-only project).
    #[serde(default = "yes")]
    pub mail: bool,
    /// Each row's address books too, from the old provider's CardDAV server.
    #[serde(default)]
    pub contacts: bool,
    /// Each row's calendars and tasks too, from its CalDAV server.
    #[serde(default)]
    pub calendars: bool,
    /// The old provider's CardDAV/CalDAV server (a URL, or a host to discover it
    /// from); each row's source host when not given.
    #[serde(default)]
    pub dav_url: Option<String>,
    /// Contacts and calendar items already at the destination; `merge` merges
    /// contacts, and calendars then keep the destination's item (`skip`).
    #[serde(default)]
    pub policy: ItemPolicy,
}

fn yes() -> bool {
    true
}

impl Default for ProjectOptions {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            duplicates: DuplicatePolicy::default(),
            import_since: None,
            two_pass: true,
            digest: true,
            mail: true,
            contacts: false,
            calendars: false,
            dav_url: None,
            policy: ItemPolicy::default(),
        }
    }
}

/// A project's options as a form's text fields give them (the console's, the API's
/// multipart): empty is the default; each wrong word is its field's error.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionTexts<'a> {
    pub mode: &'a str,
    pub duplicates: &'a str,
    pub import_since: &'a str,
    pub two_pass: Option<bool>,
    pub digest: Option<bool>,
    pub mail: Option<bool>,
    pub contacts: Option<bool>,
    pub calendars: Option<bool>,
    pub dav_url: &'a str,
    pub policy: &'a str,
}

impl ProjectOptions {
    pub fn from_texts(texts: OptionTexts<'_>) -> Result<Self, Vec<FieldError>> {
        let defaults = Self::default();
        let mut errors = Vec::new();
        let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        let mode = given(texts.mode).and_then(|t| {
            super::choice::<Mode>("mode", &t)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let duplicates = given(texts.duplicates).and_then(|t| {
            super::choice::<DuplicatePolicy>("duplicates", &t)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let import_since = given(texts.import_since).and_then(|t| {
            super::day("import_since", &t)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let policy = given(texts.policy).and_then(|t| {
            super::choice::<ItemPolicy>("policy", &t)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let dav_url = given(texts.dav_url).and_then(|t| {
            super::dav_url("dav_url", &t)
                .map_err(|e| errors.push(e))
                .ok()
        });
        let options = Self {
            mode: mode.unwrap_or(defaults.mode),
            duplicates: duplicates.unwrap_or(defaults.duplicates),
            import_since,
            two_pass: texts.two_pass.unwrap_or(defaults.two_pass),
            digest: texts.digest.unwrap_or(defaults.digest),
            mail: texts.mail.unwrap_or(defaults.mail),
            contacts: texts.contacts.unwrap_or(defaults.contacts),
            calendars: texts.calendars.unwrap_or(defaults.calendars),
            dav_url,
            policy: policy.unwrap_or(defaults.policy),
        };
        errors.extend(options.nothing_chosen());
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(options)
    }

    /// Why the options copy nothing: none of mail, contacts and calendars is chosen.
    pub fn nothing_chosen(&self) -> Option<FieldError> {
        (!self.mail && !self.contacts && !self.calendars).then(|| {
            FieldError::new(
                "mail",
                "choose what to move: mail, contacts, calendars, or several",
            )
        })
    }

    /// The kinds of migration each row makes, mail first.
    pub fn kinds(&self) -> Vec<MigrationKind> {
        [
            (self.mail, MigrationKind::Mail),
            (self.contacts, MigrationKind::Contacts),
            (self.calendars, MigrationKind::Calendars),
        ]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
        .collect()
    }
}

/// A project's concurrency as a form's text gives it (empty: none given).
pub fn concurrency_text(text: &str) -> Result<Option<u32>, FieldError> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse::<u32>()
            .map(Some)
            .map_err(|_| FieldError::new("concurrency", "give a number of mailboxes from 1 to 64")),
    }
}

/// A project as stored (its password only as a hash, which never leaves the store).
#[derive(Debug, Clone)]
pub struct Project {
    pub id: ProjectId,
    pub code: ProjectCode,
    pub name: String,
    pub requester_email: String,
    pub time_zone: String,
    pub options: ProjectOptions,
    /// The project's window (UTC); a row may give its own.
    pub window_start: Option<DateTime<Utc>>,
    /// How many of its mailboxes copy at once.
    pub concurrency: u32,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub ticket: Option<TicketId>,
    /// `None` while it waits for staff's approval (a customer's own request).
    pub approved_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub digest_at: Option<DateTime<Utc>>,
    /// When its completion report was queued.
    pub completed_at: Option<DateTime<Utc>>,
}

/// Where a project stands, from its migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, poem_openapi::Enum)]
#[serde(rename_all = "snake_case")]
#[oai(rename_all = "snake_case")]
pub enum ProjectStatus {
    /// A customer's request that staff have not approved yet.
    AwaitingApproval,
    Paused,
    /// Some mailbox has work ahead of it.
    Running,
    /// Every mailbox is finished (completed, failed or stopped).
    Finished,
}

impl ProjectStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting_approval",
            Self::Paused => "paused",
            Self::Running => "running",
            Self::Finished => "finished",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting approval",
            Self::Paused => "paused",
            Self::Running => "in progress",
            Self::Finished => "finished",
        }
    }
}

/// A project's mailboxes counted by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProjectCounts {
    pub mailboxes: u64,
    pub active: u64,
    pub paused: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl ProjectCounts {
    pub fn of(migrations: &[Migration]) -> Self {
        let mut counts = Self::default();
        for m in migrations {
            counts.add(m.status);
        }
        counts
    }

    pub fn add(&mut self, status: MigrationStatus) {
        self.mailboxes += 1;
        match status {
            MigrationStatus::Completed => self.completed += 1,
            MigrationStatus::Failed => self.failed += 1,
            MigrationStatus::Cancelled => self.cancelled += 1,
            MigrationStatus::Paused => {
                self.paused += 1;
                self.active += 1;
            }
            _ => self.active += 1,
        }
    }
}

/// One mailbox's progress in its current pass, and what all its passes did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MailboxProgress {
    /// Of the current pass; `None` before it has listed its folders.
    pub percent: Option<u64>,
    /// Messages to copy in the current pass, and done of them.
    pub expected: u64,
    pub done: u64,
    pub bytes: u64,
    /// Copied in every pass, and refused in the last.
    pub copied: u64,
    pub failed: u64,
    pub messages_per_second: f64,
    pub bytes_per_second: f64,
}

impl MailboxProgress {
    pub fn of(
        folders: &[super::FolderProgress],
        passes: &[super::Pass],
        now: DateTime<Utc>,
    ) -> Self {
        let expected: u64 = folders.iter().map(|f| f.expected).sum();
        let done: u64 = folders
            .iter()
            .map(|f| f.copied + f.skipped + f.failed)
            .sum();
        let percent = (!folders.is_empty()).then(|| {
            if folders.iter().all(|f| f.status == "done") {
                100
            } else {
                (done * 100).checked_div(expected).unwrap_or(0).min(99)
            }
        });
        let pace = passes
            .iter()
            .rev()
            .find(|p| p.status == "running")
            .and_then(|p| super::Pace::of(folders, p.started_at, now));
        Self {
            percent,
            expected,
            done,
            bytes: folders.iter().map(|f| f.bytes).sum(),
            copied: passes.iter().map(|p| p.copied).sum(),
            failed: passes.last().map_or(0, |p| p.failed),
            messages_per_second: pace.map_or(0.0, |p| p.messages_per_second),
            bytes_per_second: pace.map_or(0.0, |p| p.bytes_per_second),
        }
    }
}

/// A whole project's progress: its mailboxes' sums, and the time left at the rate of
/// those copying now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProjectTotals {
    pub expected: u64,
    pub done: u64,
    pub copied: u64,
    pub bytes: u64,
    pub messages_per_second: f64,
    pub bytes_per_second: f64,
    pub seconds_left: Option<u64>,
    pub percent: Option<u64>,
}

impl ProjectTotals {
    pub fn of<'a>(mailboxes: impl IntoIterator<Item = &'a MailboxProgress>) -> Self {
        let mut t = Self::default();
        let mut any = false;
        for m in mailboxes {
            any |= m.percent.is_some();
            t.expected += m.expected;
            t.done += m.done.min(m.expected.max(m.done));
            t.copied += m.copied;
            t.bytes += m.bytes;
            t.messages_per_second += m.messages_per_second;
            t.bytes_per_second += m.bytes_per_second;
        }
        t.percent = any.then(|| (t.done * 100).checked_div(t.expected).unwrap_or(0).min(100));
        t.seconds_left = (t.messages_per_second > 0.0 && t.expected > t.done)
            .then(|| ((t.expected - t.done) as f64 / t.messages_per_second).ceil() as u64);
        t
    }
}

impl Project {
    pub fn status(&self, counts: &ProjectCounts) -> ProjectStatus {
        if self.approved_at.is_none() {
            ProjectStatus::AwaitingApproval
        } else if counts.active == 0 && counts.mailboxes > 0 {
            ProjectStatus::Finished
        } else if self.paused_at.is_some() {
            ProjectStatus::Paused
        } else {
            ProjectStatus::Running
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_as_people_type_them() {
        let code = ProjectCode::from_random([0, 1, 2, 3, 31, 30, 29, 28]);
        assert_eq!(code.as_str(), "FY-0123-ZYXW");
        for typed in ["FY-0123-ZYXW", "fy 0123 zyxw", "o123zyxw", "FY-O1Z3-ZYXW"] {
            let parsed = ProjectCode::parse("project_id", typed);
            if typed == "FY-O1Z3-ZYXW" {
                assert_ne!(parsed.ok().as_ref(), Some(&code));
            } else {
                assert_eq!(parsed.ok().as_ref(), Some(&code), "{typed}");
            }
        }
        assert_eq!(
            ProjectCode::parse("project_id", "FY-ILO0-0000")
                .unwrap()
                .as_str(),
            "FY-1100-0000"
        );
        for bad in ["", "FY-123", "FY-0123-ZYXU", "FY-0123-ZYXW-1", "0123ZYX!"] {
            let err = ProjectCode::parse("project_id", bad).unwrap_err();
            assert_eq!(err.field, "project_id");
        }
    }

    #[test]
    fn options_default_to_two_passes_and_a_digest() {
        let options: ProjectOptions = serde_json::from_str("{}").unwrap();
        assert!(options.two_pass && options.digest);
        assert_eq!(options.mode, Mode::Full);
        // A project stored before contacts and calendars moves its mail only.
        assert_eq!(options.kinds(), [MigrationKind::Mail]);
        assert_eq!(options.policy, ItemPolicy::Skip);
    }

    #[test]
    fn options_choose_the_kinds_and_refuse_none() {
        let texts = OptionTexts {
            mail: Some(false),
            contacts: Some(true),
            calendars: Some(true),
            dav_url: "dav.old.example",
            policy: "merge",
            ..Default::default()
        };
        let options = ProjectOptions::from_texts(texts).unwrap();
        assert_eq!(
            options.kinds(),
            [MigrationKind::Contacts, MigrationKind::Calendars]
        );
        assert_eq!(options.dav_url.as_deref(), Some("https://dav.old.example"));
        assert_eq!(options.policy, ItemPolicy::Merge);
        let none = OptionTexts {
            mail: Some(false),
            ..Default::default()
        };
        let errors = ProjectOptions::from_texts(none).unwrap_err();
        assert_eq!(errors[0].field, "mail");
        let bad = OptionTexts {
            dav_url: "user:pw@dav.example",
            policy: "sometimes",
            ..Default::default()
        };
        let fields: Vec<&str> = ProjectOptions::from_texts(bad)
            .unwrap_err()
            .iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["policy", "dav_url"]);
    }
}
