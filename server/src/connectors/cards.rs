//! vCard and iCalendar through calcard: a `.vcf` or `.ics` file (or one item a DAV
//! server gave) read into items, one per UID, each written back whole with calcard's
//! writer. An item the format does not let Ferry copy (unreadable, or without a
//! property its kind requires) is reported with its position and the reason, and the
//! rest are read on.
//!
//! - A `.vcf` holds any number of cards (vCard 2.1, 3.0, 4.0); each is an item.
//! - A `.ics` holds calendars whose events, tasks and journal entries are grouped by
//!   UID: a recurring event and its exceptions (`RECURRENCE-ID`) are one item, as
//!   CalDAV stores them, with the calendar's time zones (`VTIMEZONE`) and their alarms.
//! - An item without a UID gets one derived from its content (the same content, the
//!   same UID), so a second import of the same file finds the first one's copies.
//! - Control characters other than tab, CR and LF are dropped: no value may hold them,
//!   and one stored on a DAV server breaks every later read of its collection.

use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarProperty,
    ICalendarValue,
};
use calcard::vcard::{VCard, VCardEntry, VCardProperty, VCardValue};
use calcard::{Entry, Parser};
use sha2::{Digest, Sha256};

/// One card, or one calendar object (a UID's events or tasks), ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub uid: String,
    /// The item in its format (`BEGIN:VCARD…` or `BEGIN:VCALENDAR…`).
    pub data: String,
    /// What people call it in a report: a card's name, an event's summary.
    pub label: String,
}

/// An item that cannot be copied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadItem {
    /// Its place in the file, from 1.
    pub position: usize,
    pub reason: String,
}

/// What a file holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Read {
    pub items: Vec<Item>,
    pub bad: Vec<BadItem>,
}

/// The entries of a file with their places (from 1), until its end.
fn entries(text: &str) -> impl Iterator<Item = (usize, Entry)> + '_ {
    let mut parser = Parser::new(text);
    (1..).map_while(move |position| match parser.entry() {
        Entry::Eof => None,
        entry => Some((position, entry)),
    })
}

/// The cards of a `.vcf` file.
pub fn read_vcards(text: &str) -> Read {
    let mut read = Read::default();
    let mut position = 0;
    for (at, entry) in entries(text) {
        position = at;
        match entry {
            Entry::VCard(card) => match card_item(card) {
                Ok(item) => read.items.push(item),
                Err(reason) => read.bad.push(BadItem { position, reason }),
            },
            Entry::ICalendar(_) => read.bad.push(BadItem {
                position,
                reason: "a calendar entry in a contacts file; send it as an .ics file".into(),
            }),
            other => read.bad.push(BadItem {
                position,
                reason: unreadable(&other),
            }),
        }
    }
    cut_off(
        text,
        "VCARD",
        &mut read,
        |items| items.len().saturating_sub(1),
        position,
    );
    read
}

/// calcard reads a component that the file's end cuts off as if it were whole; a file
/// whose last line is not `END:<what>` was cut off (a broken download or export), so
/// the items of its last entry are refused rather than copied incomplete.
fn cut_off(
    text: &str,
    what: &str,
    read: &mut Read,
    last_entry_start: impl FnOnce(&[Item]) -> usize,
    position: usize,
) {
    let last_line = text.trim_end().lines().last().unwrap_or_default().trim();
    let closed = last_line.eq_ignore_ascii_case(&format!("END:{what}"));
    if closed || read.items.is_empty() {
        return;
    }
    let start = last_entry_start(&read.items);
    for item in read.items.drain(start..) {
        read.bad.push(BadItem {
            position,
            reason: format!(
                "{:?} is not closed (END:{what} missing): the file may be cut off; export it again",
                item.label
            ),
        });
    }
}

fn card_item(mut card: VCard) -> Result<Item, String> {
    let text = |prop: &VCardProperty| {
        card.property(prop)
            .and_then(|e| e.values.iter().find_map(|v| v.as_text()))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let name = text(&VCardProperty::Fn).or_else(|| {
        card.property(&VCardProperty::N).map(|n| {
            n.values
                .iter()
                .filter_map(|v| v.as_text())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
    });
    let Some(label) = name.filter(|n| !n.trim().is_empty()) else {
        return Err("the card has no name (FN or N); give it a name and send it again".into());
    };
    // A photo, logo, sound or key read as text with NULs (base64 of NUL bytes, which
    // calcard reads as text): writing it back would drop its NULs with the other
    // control characters, so the card is refused, not shortened. (A stray NUL in a
    // name or note is no data; it is dropped as the other controls are.)
    if let Some(e) = card.entries.iter().find(|e| {
        matches!(e.name.as_str(), "PHOTO" | "LOGO" | "SOUND" | "KEY")
            && e.values
                .iter()
                .any(|v| v.as_text().is_some_and(|t| t.contains('\0')))
    }) {
        return Err(format!(
            "its {} holds bytes that read as text with NUL characters, which cannot be written back whole; it is not copied rather than copied without them",
            e.name.as_str()
        ));
    }
    let uid = match card.uid().map(str::trim).filter(|u| !u.is_empty()) {
        Some(uid) => uid.to_owned(),
        None => {
            let uid = derived_uid(&card.to_string());
            card.entries.push(
                VCardEntry::new(VCardProperty::Uid).with_value(VCardValue::Text(uid.clone())),
            );
            uid
        }
    };
    Ok(Item {
        uid,
        data: without_controls(card.to_string()),
        label,
    })
}

/// The calendar objects of a `.ics` file, one per UID.
pub fn read_icalendar(text: &str) -> Read {
    let mut read = Read::default();
    let mut position = 0;
    let mut last_start = 0;
    for (at, entry) in entries(text) {
        position = at;
        match entry {
            Entry::ICalendar(calendar) => {
                last_start = read.items.len();
                split_calendar(&calendar, position, &mut read);
            }
            Entry::VCard(_) => read.bad.push(BadItem {
                position,
                reason: "a contact in a calendar file; send it as a .vcf file".into(),
            }),
            other => read.bad.push(BadItem {
                position,
                reason: unreadable(&other),
            }),
        }
    }
    cut_off(text, "VCALENDAR", &mut read, |_| last_start, position);
    read
}

/// What an item holds that CalDAV stores by UID.
fn is_object(kind: &ICalendarComponentType) -> bool {
    matches!(
        kind,
        ICalendarComponentType::VEvent
            | ICalendarComponentType::VTodo
            | ICalendarComponentType::VJournal
    )
}

/// Splits one VCALENDAR into an item per UID: the calendar's own properties, every
/// time zone it defines, and the UID's components with their children (alarms).
fn split_calendar(calendar: &ICalendar, position: usize, read: &mut Read) {
    let Some(root) = calendar
        .components
        .first()
        .filter(|c| c.component_type == ICalendarComponentType::VCalendar)
    else {
        read.bad.push(BadItem {
            position,
            reason: "a calendar component outside a VCALENDAR".into(),
        });
        return;
    };
    let children = |c: &ICalendarComponent| -> Vec<u32> { c.component_ids.clone() };
    let zones: Vec<u32> = children(root)
        .into_iter()
        .filter(|id| {
            calendar
                .component_by_id(*id)
                .is_some_and(|c| c.component_type == ICalendarComponentType::VTimezone)
        })
        .collect();
    // The objects in the file's order, grouped by UID (derived for one without).
    let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
    let mut count = 0;
    for id in children(root) {
        let Some(component) = calendar.component_by_id(id) else {
            continue;
        };
        if !is_object(&component.component_type) {
            continue;
        }
        count += 1;
        if let Err(reason) = check_object(component) {
            read.bad.push(BadItem {
                position: position + count - 1,
                reason,
            });
            continue;
        }
        let uid = component
            .uid()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map_or_else(|| derived_uid(&subtree_text(calendar, id)), str::to_owned);
        match groups.iter_mut().find(|(u, _)| *u == uid) {
            Some((_, ids)) => ids.push(id),
            None => groups.push((uid, vec![id])),
        }
    }
    for (uid, ids) in groups {
        let mut object = ICalendar {
            components: vec![ICalendarComponent {
                component_type: ICalendarComponentType::VCalendar,
                entries: root.entries.clone(),
                component_ids: Vec::new(),
            }],
        };
        for id in zones.iter().chain(ids.iter()) {
            let new_id = copy_subtree(calendar, *id, &mut object);
            object.components[0].component_ids.push(new_id);
        }
        // A component without UID gets the derived one, written into it.
        for component in object.components.iter_mut().skip(1) {
            if is_object(&component.component_type) && component.uid().is_none() {
                component.entries.push(ICalendarEntry {
                    name: ICalendarProperty::Uid,
                    params: Vec::new(),
                    values: vec![ICalendarValue::Text(uid.clone())],
                });
            }
        }
        let label = ids
            .first()
            .and_then(|id| calendar.component_by_id(*id))
            .and_then(|c| c.property(&ICalendarProperty::Summary))
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_text())
            .map(str::to_owned)
            .unwrap_or_else(|| uid.clone());
        read.items.push(Item {
            uid,
            data: without_controls(object.to_string()),
            label,
        });
    }
}

/// An event, task or journal entry CalDAV can store: it has a start when it is an
/// event (RFC 5545 requires DTSTART in a calendar without METHOD).
fn check_object(component: &ICalendarComponent) -> Result<(), String> {
    if component.component_type == ICalendarComponentType::VEvent
        && !component.has_property(&ICalendarProperty::Dtstart)
    {
        let what = component
            .property(&ICalendarProperty::Summary)
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_text())
            .map_or_else(|| "an event".to_owned(), |s| format!("the event {s:?}"));
        return Err(format!("{what} has no start (DTSTART)"));
    }
    Ok(())
}

/// Copies the component `id` of `from` and its children into `to`; answers its new id.
fn copy_subtree(from: &ICalendar, id: u32, to: &mut ICalendar) -> u32 {
    let Some(component) = from.component_by_id(id) else {
        return 0;
    };
    let new_id = u32::try_from(to.components.len()).unwrap_or(u32::MAX);
    to.components.push(ICalendarComponent {
        component_type: component.component_type.clone(),
        entries: component.entries.clone(),
        component_ids: Vec::new(),
    });
    for child in &component.component_ids {
        let child_id = copy_subtree(from, *child, to);
        to.components[new_id as usize].component_ids.push(child_id);
    }
    new_id
}

/// A component and its children as text, for a derived UID.
fn subtree_text(calendar: &ICalendar, id: u32) -> String {
    let mut alone = ICalendar {
        components: vec![ICalendarComponent {
            component_type: ICalendarComponentType::VCalendar,
            entries: Vec::new(),
            component_ids: Vec::new(),
        }],
    };
    let new_id = copy_subtree(calendar, id, &mut alone);
    alone.components[0].component_ids.push(new_id);
    alone.to_string()
}

/// The item without control characters other than tab, CR and LF: no property value
/// may hold them (RFC 6350 and 5545), and a DAV server that stores one answers every
/// later multiget of that item's collection with XML no parser reads.
fn without_controls(data: String) -> String {
    if data.chars().any(is_stray_control) {
        data.chars().filter(|c| !is_stray_control(*c)).collect()
    } else {
        data
    }
}

fn is_stray_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\r' | '\n')
}

/// One item as a DAV server gave it (a card, or a calendar object): its UID and
/// label, read like a file's; the reason when it cannot be copied.
pub fn read_item(data: &str, contacts: bool) -> Result<Item, String> {
    let mut read = if contacts {
        read_vcards(data)
    } else {
        read_icalendar(data)
    };
    if let Some(bad) = read.bad.pop() {
        return Err(bad.reason);
    }
    match read.items.len() {
        1 => Ok(read.items.remove(0)),
        0 => Err("the server gave an empty item".into()),
        // A server that stored several UIDs in one object (allowed by none, done by
        // some): copied as it is, under its first UID.
        _ => Ok(Item {
            data: without_controls(data.to_owned()),
            ..read.items.remove(0)
        }),
    }
}

/// The card in `data`, for the merge rule.
pub fn vcard(data: &str) -> Option<VCard> {
    match Parser::new(data).entry() {
        Entry::VCard(card) => Some(card),
        _ => None,
    }
}

/// `data` under the UID `uid` (the `create` policy's copy of an item): every UID of a
/// card, or of a calendar object's events and tasks, replaced.
pub fn with_uid(data: &str, uid: &str) -> Option<String> {
    match Parser::new(data).entry() {
        Entry::VCard(mut card) => {
            card.entries.retain(|e| e.name != VCardProperty::Uid);
            card.entries.push(
                VCardEntry::new(VCardProperty::Uid).with_value(VCardValue::Text(uid.to_owned())),
            );
            Some(card.to_string())
        }
        Entry::ICalendar(mut calendar) => {
            for component in &mut calendar.components {
                if is_object(&component.component_type) {
                    component
                        .entries
                        .retain(|e| e.name != ICalendarProperty::Uid);
                    component.entries.push(ICalendarEntry {
                        name: ICalendarProperty::Uid,
                        params: Vec::new(),
                        values: vec![ICalendarValue::Text(uid.to_owned())],
                    });
                }
            }
            Some(calendar.to_string())
        }
        _ => None,
    }
}

/// A UID for an item that has none: the SHA-256 of its text, so the same item always
/// gets the same one.
pub fn derived_uid(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("ferry-{}", hex::encode(&digest[..16]))
}

fn unreadable(entry: &Entry) -> String {
    match entry {
        Entry::InvalidLine(line) => {
            let shown: String = line.chars().take(60).collect();
            format!("a line that cannot be read: {shown:?}")
        }
        Entry::UnterminatedComponent(what) => format!("{what} is not closed (END:{what} missing)"),
        Entry::UnexpectedComponentEnd { expected, found } => {
            format!("END:{found:?} where END:{expected:?} was due")
        }
        Entry::TooManyComponents => "too many nested components".into(),
        _ => "an entry that cannot be read".into(),
    }
}

#[cfg(test)]
mod tests;
