//! The settings an admin may change in the console, and how each is typed, shown and
//! checked. Everything else (addresses, the database, workers, logging) is read once at
//! start from `ferry.toml` and the environment.
//!
//! A value crosses this module as the text of a form field: [`Settings::editable_text`]
//! gives it, [`Settings::set_editable`] parses it back (one message per field, fit to
//! show beside it). The stored override is that text, normalised, so a round trip
//! through the database changes nothing.

use chrono::NaiveTime;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::Settings;

/// How a value is typed in the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EditKind {
    /// A host name.
    Host,
    Port,
    /// `ssl`, `starttls` or `none`.
    Security,
    /// One value per line.
    Lines,
    /// `HH:MM`.
    Time,
    /// A whole number between `min` and `max`.
    Number,
    /// A mailbox, optionally with a display name: `Ferry <ferry@provider.example>`.
    Mailbox,
    /// An email address, or empty for none.
    OptionalEmail,
    /// Never shown; left empty to keep the value in force.
    Secret,
    /// `on` or `off`.
    Switch,
    /// A host name, or empty for none.
    OptionalHost,
    /// A folder's name on an IMAP server, such as `INBOX` or `Ferry/Processed`.
    Folder,
    /// One line of text people read (a name, a contact), up to 200 characters.
    Text,
    /// A colour as `#rrggbb`.
    Colour,
}

/// One setting the console edits.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Editable {
    pub key: &'static str,
    pub group: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: EditKind,
    pub min: u64,
    pub max: u64,
}

const fn field(
    key: &'static str,
    group: &'static str,
    label: &'static str,
    help: &'static str,
    kind: EditKind,
) -> Editable {
    Editable {
        key,
        group,
        label,
        help,
        kind,
        min: 0,
        max: 0,
    }
}

const fn number(
    key: &'static str,
    group: &'static str,
    label: &'static str,
    help: &'static str,
    min: u64,
    max: u64,
) -> Editable {
    Editable {
        min,
        max,
        ..field(key, group, label, help, EditKind::Number)
    }
}

const PROVIDER: &str = "Provider";
const SCHEDULING: &str = "Scheduling";
const EMAIL: &str = "Email";
const RETENTION: &str = "Retention";
const SUPPORT: &str = "Support mailbox";
const INTAKE: &str = "Customers' request form";

/// In the order the settings page shows them.
pub const EDITABLE: &[Editable] = &[
    field(
        "provider.name",
        PROVIDER,
        "Provider's name",
        "How emails and the customer's page name you, e.g. Example Mail.",
        EditKind::Text,
    ),
    field(
        "provider.support_contact",
        PROVIDER,
        "Support contact",
        "Shown to customers on their migration page and in emails: an address, a phone number, or both.",
        EditKind::Text,
    ),
    field(
        "provider.colour",
        PROVIDER,
        "Colour",
        "The customer's pages (/track, /request) take it for their buttons and links, as #rrggbb.",
        EditKind::Colour,
    ),
    field(
        "provider.imap_host",
        PROVIDER,
        "IMAP server",
        "Where migrated mail goes when a request names no destination server.",
        EditKind::Host,
    ),
    field(
        "provider.imap_port",
        PROVIDER,
        "IMAP port",
        "",
        EditKind::Port,
    ),
    field(
        "provider.imap_security",
        PROVIDER,
        "IMAP security",
        "",
        EditKind::Security,
    ),
    field(
        "provider.dav_url",
        PROVIDER,
        "CardDAV/CalDAV server",
        "Where contacts and calendars go when a request names no server: a URL such as https://dav.provider.example/, or just the host. Empty: each request names its own.",
        EditKind::Text,
    ),
    field(
        "provider.mx_hosts",
        PROVIDER,
        "MX records customers set",
        "One per line, priority then host: 10 mx1.provider.example",
        EditKind::Lines,
    ),
    field(
        "provider.mx_patterns",
        PROVIDER,
        "MX hosts that mean switched",
        "One per line; *.provider.example matches any host under it. A domain counts as switched when every MX host matches.",
        EditKind::Lines,
    ),
    field(
        "schedule.off_hours_start",
        SCHEDULING,
        "Off-hours start",
        "HH:MM in the requester's time zone; a window must start inside the off-hours.",
        EditKind::Time,
    ),
    field(
        "schedule.off_hours_end",
        SCHEDULING,
        "Off-hours end",
        "HH:MM; the next morning when earlier than the start.",
        EditKind::Time,
    ),
    number(
        "schedule.notice_hours",
        SCHEDULING,
        "Notice (hours)",
        "How far ahead a requested window must be.",
        0,
        720,
    ),
    number(
        "schedule.weekend_notice_hours",
        SCHEDULING,
        "Weekend notice (hours)",
        "For a window that starts on a Saturday or Sunday.",
        0,
        720,
    ),
    number(
        "capacity.max_concurrent",
        SCHEDULING,
        "Passes at once",
        "Migrations copying at the same time; the others wait their turn.",
        1,
        256,
    ),
    number(
        "capacity.per_source_host",
        SCHEDULING,
        "Copies from one source server at once",
        "Old providers throttle or ban a client with too many connections.",
        1,
        256,
    ),
    number(
        "capacity.project_concurrency",
        SCHEDULING,
        "A new project's mailboxes at once",
        "The default; each project can set its own.",
        1,
        256,
    ),
    number(
        "capacity.max_active",
        SCHEDULING,
        "Migrations in progress at most",
        "Requests beyond this are refused until some finish.",
        1,
        1_000_000,
    ),
    number(
        "mx.grace_seconds",
        SCHEDULING,
        "Post-MX pass after the switch (seconds)",
        "Senders' DNS caches keep delivering to the old server for a while.",
        0,
        7 * 86_400,
    ),
    field(
        "smtp.url",
        EMAIL,
        "SMTP server",
        "smtp://user:password@host:587?tls=required, or smtps://host:465. Never shown; leave empty to keep the one in force.",
        EditKind::Secret,
    ),
    field(
        "smtp.from",
        EMAIL,
        "From",
        "The sender of every notification: Ferry <ferry@provider.example>",
        EditKind::Mailbox,
    ),
    field(
        "smtp.staff_address",
        EMAIL,
        "Staff copy to",
        "Gets a copy of every notification about a customer; empty for nobody.",
        EditKind::OptionalEmail,
    ),
    field(
        "support.enabled",
        SUPPORT,
        "Read the support mailbox",
        "on: emails to the support address become tickets. Fill in the server below first.",
        EditKind::Switch,
    ),
    field(
        "support.host",
        SUPPORT,
        "IMAP server",
        "The support mailbox's server, such as imap.provider.example.",
        EditKind::OptionalHost,
    ),
    field(
        "support.port",
        SUPPORT,
        "Port",
        "993 for ssl, 143 for starttls.",
        EditKind::Port,
    ),
    field(
        "support.security",
        SUPPORT,
        "Security",
        "ssl, starttls or none (none only on a trusted network).",
        EditKind::Security,
    ),
    field(
        "support.username",
        SUPPORT,
        "User",
        "The support mailbox's login, such as support@provider.example.",
        EditKind::Text,
    ),
    field(
        "support.password",
        SUPPORT,
        "Password",
        "Never shown; leave empty to keep the one in force.",
        EditKind::Secret,
    ),
    field(
        "support.folder",
        SUPPORT,
        "Folder to read",
        "Where customers' emails arrive, usually INBOX.",
        EditKind::Folder,
    ),
    field(
        "support.processed_folder",
        SUPPORT,
        "Folder for processed emails",
        "Where an email goes once its ticket holds it; created when missing.",
        EditKind::Folder,
    ),
    number(
        "support.poll_seconds",
        SUPPORT,
        "Look for new emails every (seconds)",
        "When the server cannot tell Ferry of new mail at once (IDLE).",
        5,
        86_400,
    ),
    field(
        "support.acknowledge",
        SUPPORT,
        "Acknowledge new tickets",
        "on: the sender of a new ticket gets its number and the check of the list they sent. Never sent to automatic mail.",
        EditKind::Switch,
    ),
    number(
        "support.acknowledgements_per_hour",
        SUPPORT,
        "Acknowledgements per sender and hour",
        "Stops a loop with a robot that answers every email.",
        1,
        1000,
    ),
    field(
        "intake.destination_domains",
        INTAKE,
        "The provider's domains",
        "One per line. /request takes only destination mailboxes in these domains; empty: the form is closed.",
        EditKind::Lines,
    ),
    field(
        "intake.auto_approve",
        INTAKE,
        "Start requests at once",
        "on: a customer's request starts without staff's approval; off: it waits in Projects.",
        EditKind::Switch,
    ),
    number(
        "intake.requests_per_hour",
        INTAKE,
        "Requests per address and hour",
        "Beyond this, /request refuses until the hour has passed.",
        1,
        10_000,
    ),
    number(
        "intake.checks_per_hour",
        INTAKE,
        "Authenticate attempts per address and hour",
        "The form's Authenticate button logs in to a server; this keeps it from being used to guess passwords.",
        1,
        10_000,
    ),
    number(
        "retention.credential_days",
        RETENTION,
        "Erase stored passwords after (days)",
        "Counted from the end of a migration.",
        0,
        3650,
    ),
    number(
        "retention.upload_days",
        RETENTION,
        "Delete uploaded files after (days)",
        "Contacts and calendar files uploaded to import; counted from the upload.",
        1,
        3650,
    ),
];

pub fn editable(key: &str) -> Option<&'static Editable> {
    EDITABLE.iter().find(|e| e.key == key)
}

fn lines(v: &[String]) -> String {
    v.join("\n")
}

fn parse_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn normalise_host(text: &str) -> Result<String, String> {
    let host = text.trim_end_matches('.').to_ascii_lowercase();
    if is_host(&host) {
        Ok(host)
    } else {
        Err("Give a host name such as imap.provider.example.".into())
    }
}

impl Editable {
    /// The text typed in the form, normalised, or what is wrong with it.
    pub fn normalise(&self, text: &str) -> Result<String, String> {
        let text = text.trim();
        match self.kind {
            EditKind::Host => normalise_host(text),
            EditKind::Port => match text.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p.to_string()),
                _ => Err("Give a port between 1 and 65535.".into()),
            },
            EditKind::Security => match text {
                "ssl" | "starttls" | "none" => Ok(text.to_owned()),
                _ => Err("Choose ssl, starttls or none.".into()),
            },
            EditKind::Time => NaiveTime::parse_from_str(text, "%H:%M")
                .map(|t| t.format("%H:%M").to_string())
                .map_err(|_| "Give a time as HH:MM, such as 20:00.".into()),
            EditKind::Number => match text.parse::<u64>() {
                Ok(n) if (self.min..=self.max).contains(&n) => Ok(n.to_string()),
                _ => Err(format!(
                    "Give a whole number from {} to {}.",
                    self.min, self.max
                )),
            },
            EditKind::Lines => self.normalise_lines(text),
            EditKind::Mailbox => text
                .parse::<lettre::message::Mailbox>()
                .map(|m| m.to_string())
                .map_err(|_| "Give an address such as Ferry <ferry@provider.example>.".into()),
            EditKind::OptionalEmail if text.is_empty() => Ok(String::new()),
            EditKind::OptionalEmail => crate::domain::EmailAddress::parse(self.key, text)
                .map(|e| e.as_str().to_owned())
                .map_err(|_| "Give one email address, or leave it empty for nobody.".into()),
            EditKind::Text if text.chars().count() > 200 => {
                Err("Keep it to 200 characters.".into())
            }
            EditKind::Text if text.chars().any(char::is_control) => {
                Err("Keep it on one line.".into())
            }
            EditKind::Text => Ok(text.to_owned()),
            EditKind::Colour
                if text.len() == 7
                    && text.starts_with('#')
                    && text[1..].chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                Ok(text.to_ascii_lowercase())
            }
            EditKind::Colour => Err("Give a colour as #rrggbb, such as #1d5fbf.".into()),
            EditKind::Switch => match text.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => Ok("on".into()),
                "off" | "false" | "no" | "0" => Ok("off".into()),
                _ => Err("Choose on or off.".into()),
            },
            EditKind::OptionalHost if text.is_empty() => Ok(String::new()),
            EditKind::OptionalHost => normalise_host(text),
            EditKind::Folder
                if text.is_empty()
                    || text.chars().count() > 200
                    || text
                        .chars()
                        .any(|c| c.is_control() || c == '"' || c == '*' || c == '%') =>
            {
                Err("Give a folder's name, such as INBOX or Ferry/Processed.".into())
            }
            EditKind::Folder => Ok(text.to_owned()),
            EditKind::Secret if self.key != "smtp.url" => {
                if text.chars().any(char::is_control) {
                    Err("Keep it on one line.".into())
                } else {
                    Ok(text.to_owned())
                }
            }
            EditKind::Secret => {
                if text.is_empty()
                    || ["smtp://", "smtps://"]
                        .iter()
                        .any(|scheme| text.starts_with(scheme))
                {
                    Ok(text.to_owned())
                } else {
                    Err("Give an address starting with smtp:// or smtps://.".into())
                }
            }
        }
    }

    fn normalise_lines(&self, text: &str) -> Result<String, String> {
        let items = parse_lines(text);
        // The request form's domains may be none (the form closed).
        if items.is_empty() && self.key != "intake.destination_domains" {
            return Err("Give at least one, one per line.".into());
        }
        let mut out = Vec::with_capacity(items.len());
        for (n, item) in items.iter().enumerate() {
            let line = n + 1;
            if self.key == "provider.mx_hosts" {
                let mut parts = item.split_whitespace();
                let (Some(prio), Some(host), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(format!(
                        "Line {line}: give a priority and a host, such as 10 mx1.provider.example."
                    ));
                };
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                match prio.parse::<u16>() {
                    Ok(prio) if is_host(&host) => out.push(format!("{prio} {host}")),
                    _ => {
                        return Err(format!(
                            "Line {line}: give a priority (0 to 65535) and a host, such as 10 mx1.provider.example."
                        ));
                    }
                }
            } else if self.key == "intake.destination_domains" {
                let domain = item
                    .trim_start_matches('@')
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                if !is_host(&domain) {
                    return Err(format!(
                        "Line {line}: give a domain, such as provider.example."
                    ));
                }
                out.push(domain);
            } else {
                let pattern = item.trim_end_matches('.').to_ascii_lowercase();
                if !is_host(pattern.strip_prefix("*.").unwrap_or(&pattern)) {
                    return Err(format!(
                        "Line {line}: give a host name or *. and a domain, such as *.provider.example."
                    ));
                }
                out.push(pattern);
            }
        }
        Ok(out.join("\n"))
    }
}

impl Settings {
    /// The value of an editable key as a form shows it. A secret's text comes out too:
    /// callers compare it, and never render it.
    pub fn editable_text(&self, key: &str) -> String {
        let p = &self.provider;
        let s = &self.schedule;
        match key {
            "provider.name" => p.name.clone(),
            "provider.support_contact" => p.support_contact.clone(),
            "provider.colour" => p.colour.clone(),
            "provider.imap_host" => p.imap_host.clone(),
            "provider.imap_port" => p.imap_port.to_string(),
            "provider.imap_security" => p.imap_security.as_str().to_owned(),
            "provider.dav_url" => p.dav_url.clone(),
            "provider.mx_hosts" => lines(&p.mx_hosts),
            "provider.mx_patterns" => lines(&p.mx_patterns),
            "schedule.off_hours_start" => s.off_hours_start.clone(),
            "schedule.off_hours_end" => s.off_hours_end.clone(),
            "schedule.notice_hours" => s.notice_hours.to_string(),
            "schedule.weekend_notice_hours" => s.weekend_notice_hours.to_string(),
            "capacity.max_concurrent" => self.capacity.max_concurrent.to_string(),
            "capacity.max_active" => self.capacity.max_active.to_string(),
            "capacity.per_source_host" => self.capacity.per_source_host.to_string(),
            "capacity.project_concurrency" => self.capacity.project_concurrency.to_string(),
            "mx.grace_seconds" => self.mx.grace_seconds.to_string(),
            "smtp.url" => self
                .smtp
                .url
                .as_ref()
                .map(|u| u.expose_secret().to_owned())
                .unwrap_or_default(),
            "smtp.from" => self.smtp.from.clone(),
            "smtp.staff_address" => self.smtp.staff_address.clone().unwrap_or_default(),
            "retention.credential_days" => self.retention.credential_days.to_string(),
            "retention.upload_days" => self.retention.upload_days.to_string(),
            key if key.starts_with("support.") => self.support_text(key),
            "intake.destination_domains" => lines(&self.intake.destination_domains),
            "intake.auto_approve" => if self.intake.auto_approve {
                "on"
            } else {
                "off"
            }
            .to_owned(),
            "intake.requests_per_hour" => self.intake.requests_per_hour.to_string(),
            "intake.checks_per_hour" => self.intake.checks_per_hour.to_string(),
            _ => String::new(),
        }
    }

    /// Sets an editable key from a form's text, or says what is wrong with the text.
    pub fn set_editable(&mut self, key: &str, text: &str) -> Result<(), String> {
        let Some(spec) = editable(key) else {
            return Err(format!("{key} cannot be changed in the console."));
        };
        let v = spec.normalise(text)?;
        // `normalise` checked every number against its range, so these parse.
        let num = || v.parse::<u64>().map_err(|e| e.to_string());
        let small = || num().and_then(|n| u32::try_from(n).map_err(|e| e.to_string()));
        match key {
            "provider.name" => self.provider.name = v,
            "provider.support_contact" => self.provider.support_contact = v,
            "provider.colour" => self.provider.colour = v,
            "provider.imap_host" => self.provider.imap_host = v,
            "provider.dav_url" => {
                self.provider.dav_url = if v.trim().is_empty() {
                    String::new()
                } else {
                    crate::domain::dav_url("provider.dav_url", v.trim()).map_err(|e| e.message)?
                };
            }
            "provider.imap_port" => {
                self.provider.imap_port = v.parse().map_err(|_| "Give a port.".to_owned())?;
            }
            "provider.imap_security" => {
                self.provider.imap_security = v
                    .parse()
                    .map_err(|e: crate::domain::FieldError| e.message)?;
            }
            "provider.mx_hosts" => self.provider.mx_hosts = parse_lines(&v),
            "provider.mx_patterns" => self.provider.mx_patterns = parse_lines(&v),
            "schedule.off_hours_start" => self.schedule.off_hours_start = v,
            "schedule.off_hours_end" => self.schedule.off_hours_end = v,
            "schedule.notice_hours" => self.schedule.notice_hours = small()?,
            "schedule.weekend_notice_hours" => self.schedule.weekend_notice_hours = small()?,
            "capacity.max_concurrent" => self.capacity.max_concurrent = small()?,
            "capacity.max_active" => self.capacity.max_active = small()?,
            "capacity.per_source_host" => self.capacity.per_source_host = small()?,
            "capacity.project_concurrency" => self.capacity.project_concurrency = small()?,
            "mx.grace_seconds" => self.mx.grace_seconds = num()?,
            "smtp.url" => self.smtp.url = (!v.is_empty()).then(|| SecretString::from(v)),
            "smtp.from" => self.smtp.from = v,
            "smtp.staff_address" => self.smtp.staff_address = (!v.is_empty()).then_some(v),
            "retention.credential_days" => self.retention.credential_days = small()?,
            "retention.upload_days" => self.retention.upload_days = small()?,
            key if key.starts_with("support.") => self.set_support(key, v)?,
            "intake.destination_domains" => {
                self.intake.destination_domains = parse_lines(&v)
                    .into_iter()
                    .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
                    .collect();
            }
            "intake.auto_approve" => self.intake.auto_approve = v == "on",
            "intake.requests_per_hour" => self.intake.requests_per_hour = small()?,
            "intake.checks_per_hour" => self.intake.checks_per_hour = small()?,
            _ => return Err(format!("{key} cannot be changed in the console.")),
        }
        Ok(())
    }

    fn support_text(&self, key: &str) -> String {
        let s = &self.support;
        let switch = |on: bool| if on { "on" } else { "off" }.to_owned();
        match key {
            "support.enabled" => switch(s.enabled),
            "support.host" => s.host.clone(),
            "support.port" => s.port.to_string(),
            "support.security" => s.security.as_str().to_owned(),
            "support.username" => s.username.clone(),
            "support.password" => s
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default(),
            "support.folder" => s.folder.clone(),
            "support.processed_folder" => s.processed_folder.clone(),
            "support.poll_seconds" => s.poll_seconds.to_string(),
            "support.acknowledge" => switch(s.acknowledge),
            "support.acknowledgements_per_hour" => s.acknowledgements_per_hour.to_string(),
            _ => String::new(),
        }
    }

    /// Sets a `support.` key from its normalised text.
    fn set_support(&mut self, key: &str, v: String) -> Result<(), String> {
        let s = &mut self.support;
        let number = |v: &str| v.parse::<u64>().map_err(|e| e.to_string());
        match key {
            "support.enabled" => s.enabled = v == "on",
            "support.host" => s.host = v,
            "support.port" => s.port = v.parse().map_err(|_| "Give a port.".to_owned())?,
            "support.security" => {
                s.security = v
                    .parse()
                    .map_err(|e: crate::domain::FieldError| e.message)?;
            }
            "support.username" => s.username = v,
            "support.password" => s.password = (!v.is_empty()).then(|| SecretString::from(v)),
            "support.folder" => s.folder = v,
            "support.processed_folder" => s.processed_folder = v,
            "support.poll_seconds" => s.poll_seconds = number(&v)?,
            "support.acknowledge" => s.acknowledge = v == "on",
            "support.acknowledgements_per_hour" => {
                s.acknowledgements_per_hour =
                    u32::try_from(number(&v)?).map_err(|e| e.to_string())?;
            }
            _ => return Err(format!("{key} cannot be changed in the console.")),
        }
        Ok(())
    }

    /// Rules between editable keys, as (key, message).
    pub fn check_editable(&self) -> Vec<(&'static str, String)> {
        let mut errors = Vec::new();
        if self.schedule.off_hours_start == self.schedule.off_hours_end {
            errors.push((
                "schedule.off_hours_end",
                "The off-hours must not start and end at the same time.".to_owned(),
            ));
        }
        if self.support.enabled {
            if self.support.host.is_empty() {
                errors.push((
                    "support.host",
                    "Give the support mailbox's server, or turn reading it off.".to_owned(),
                ));
            }
            if self.support.username.is_empty() {
                errors.push((
                    "support.username",
                    "Give the support mailbox's login, or turn reading it off.".to_owned(),
                ));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_editable_key_round_trips_through_its_text() {
        let mut s = Settings::default();
        s.smtp.url = Some(SecretString::from("smtp://127.0.0.1:2525"));
        s.smtp.staff_address = Some("desk@provider.example".into());
        for e in EDITABLE {
            let text = s.editable_text(e.key);
            let mut t = Settings::default();
            t.set_editable(e.key, &text)
                .unwrap_or_else(|err| panic!("{}: {err}", e.key));
            assert_eq!(t.editable_text(e.key), text, "{}", e.key);
            assert_eq!(
                e.normalise(&text).as_deref(),
                Ok(text.as_str()),
                "{}",
                e.key
            );
        }
    }

    #[test]
    fn bad_values_say_what_to_type() {
        let mut s = Settings::default();
        let err = s
            .set_editable("schedule.off_hours_start", "25:00")
            .unwrap_err();
        assert!(err.contains("HH:MM"), "{err}");
        let err = s
            .set_editable("provider.mx_hosts", "10 mx1.example\nmx2.example")
            .unwrap_err();
        assert!(err.starts_with("Line 2:"), "{err}");
        let err = s.set_editable("capacity.max_concurrent", "0").unwrap_err();
        assert!(err.contains("from 1 to 256"), "{err}");
        assert!(s.set_editable("bind", "0.0.0.0:80").is_err());
        assert_eq!(s.capacity.max_concurrent, 4, "nothing was set");
    }

    #[test]
    fn values_are_normalised() {
        let mut s = Settings::default();
        s.set_editable("provider.mx_hosts", " 10  MX1.Example.  \n\n20 mx2.example")
            .unwrap();
        assert_eq!(s.provider.mx_hosts, ["10 mx1.example", "20 mx2.example"]);
        s.set_editable("schedule.off_hours_start", "9:05").unwrap();
        assert_eq!(s.schedule.off_hours_start, "09:05");
        s.set_editable("smtp.staff_address", "  ").unwrap();
        assert_eq!(s.smtp.staff_address, None);
    }
}
