//! The `merge` policy of a contacts migration: which destination card is the same
//! person as a source card, and the card both become.
//!
//! **Who is the same person**, in this order (the first rule that finds one wins):
//! 1. the same UID;
//! 2. an email address in common, compared without case and without `mailto:`;
//! 3. a phone number in common, compared by its digits (`+49 30 1234567`,
//!    `+49-30-1234567` and `0049 30 1234567` are one number; `030 1234567` is not the
//!    same as `+49 30 1234567`, since the country cannot be known);
//! 4. the same full name (FN), exactly, spaces collapsed.
//!
//! **What the merged card holds**: the destination's card, plus every value of the
//! source's that it lacks:
//! - properties a card may have many of (EMAIL, TEL, ADR, URL, IMPP, NOTE, PHOTO, X-…,
//!   every property Ferry does not know) are added when the destination has no equal
//!   one (EMAIL and TEL compared as above, the others by value);
//! - CATEGORIES are joined into one list, each category once;
//! - properties a card has one of (FN, N, BDAY, ANNIVERSARY, GENDER, KIND) are taken
//!   from the source when the destination lacks them; when both have one and they
//!   differ, the destination's stays and the source's is kept in a NOTE
//!   ("From the old address book: BDAY:19800102"), so no value of either side is lost;
//! - the destination's UID, VERSION, PRODID and REV stay.

use calcard::vcard::{VCard, VCardEntry, VCardProperty, VCardValue};

/// Why two cards are the same person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    Uid,
    Email,
    Phone,
    Name,
}

/// The destination card (its index in `dest`) that is the same person as `source`.
pub fn find_match(source: &VCard, dest: &[VCard]) -> Option<(usize, MatchedBy)> {
    if let Some(uid) = source.uid().map(str::trim).filter(|u| !u.is_empty())
        && let Some(i) = dest
            .iter()
            .position(|d| d.uid().map(str::trim) == Some(uid))
    {
        return Some((i, MatchedBy::Uid));
    }
    let shares = |key: fn(&VCard) -> Vec<String>| {
        let mine = key(source);
        (!mine.is_empty())
            .then(|| {
                dest.iter()
                    .position(|d| key(d).iter().any(|k| mine.contains(k)))
            })
            .flatten()
    };
    if let Some(i) = shares(emails) {
        return Some((i, MatchedBy::Email));
    }
    if let Some(i) = shares(phones) {
        return Some((i, MatchedBy::Phone));
    }
    let name = full_name(source)?;
    dest.iter()
        .position(|d| full_name(d).as_deref() == Some(name.as_str()))
        .map(|i| (i, MatchedBy::Name))
}

/// A destination's cards indexed by what [`find_match`] compares (UID, emails,
/// phones, full name), so that finding a source card's person costs its own keys, not
/// a pass over the whole address book; the rule itself stays `find_match`'s.
#[derive(Debug, Default)]
pub struct People {
    cards: Vec<VCard>,
    by_key: std::collections::HashMap<String, Vec<usize>>,
}

impl People {
    pub fn new(cards: Vec<VCard>) -> Self {
        let mut people = Self::default();
        for card in cards {
            people.push(card);
        }
        people
    }

    /// Adds a card; its index.
    pub fn push(&mut self, card: VCard) -> usize {
        let i = self.cards.len();
        self.index(i, &card);
        self.cards.push(card);
        i
    }

    /// Replaces card `i` (with a merge of it: its old keys still hold).
    pub fn replace(&mut self, i: usize, card: VCard) {
        self.index(i, &card);
        if let Some(slot) = self.cards.get_mut(i) {
            *slot = card;
        }
    }

    pub fn card(&self, i: usize) -> Option<&VCard> {
        self.cards.get(i)
    }

    /// The card that is the same person as `source`, as [`find_match`] decides among
    /// the cards sharing a key with it.
    pub fn find(&self, source: &VCard) -> Option<(usize, MatchedBy)> {
        let mut candidates: Vec<usize> = keys(source)
            .iter()
            .filter_map(|k| self.by_key.get(k))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let subset: Vec<VCard> = candidates.iter().map(|i| self.cards[*i].clone()).collect();
        find_match(source, &subset).map(|(j, by)| (candidates[j], by))
    }

    fn index(&mut self, i: usize, card: &VCard) {
        for key in keys(card) {
            let at = self.by_key.entry(key).or_default();
            if !at.contains(&i) {
                at.push(i);
            }
        }
    }
}

/// What `find_match` may match a card by.
fn keys(card: &VCard) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(uid) = card.uid().map(str::trim).filter(|u| !u.is_empty()) {
        keys.push(format!("uid:{uid}"));
    }
    keys.extend(emails(card).into_iter().map(|e| format!("email:{e}")));
    keys.extend(phones(card).into_iter().map(|p| format!("tel:{p}")));
    keys.extend(full_name(card).map(|n| format!("name:{n}")));
    keys
}

/// The card `dest` and `source` become (see the module's rule).
pub fn merge(dest: &VCard, source: &VCard) -> VCard {
    let mut merged = dest.clone();
    let mut notes = Vec::new();
    for entry in &source.entries {
        match &entry.name {
            VCardProperty::Uid
            | VCardProperty::Version
            | VCardProperty::Prodid
            | VCardProperty::Rev
            | VCardProperty::Begin
            | VCardProperty::End => {}
            VCardProperty::Categories => merge_categories(&mut merged, entry),
            name if is_single(name) => match merged.property(name) {
                None => merged.entries.push(entry.clone()),
                Some(there) if same_values(there, entry) => {}
                Some(_) => notes.push(entry_text(entry)),
            },
            _ => {
                if !merged.entries.iter().any(|there| same_value(there, entry)) {
                    merged.entries.push(entry.clone());
                }
            }
        }
    }
    for note in notes {
        let text = format!("From the old address book: {note}");
        let there = merged.properties(&VCardProperty::Note).any(|n| {
            n.values
                .iter()
                .filter_map(VCardValue::as_text)
                .any(|t| t == text)
        });
        if !there {
            merged
                .entries
                .push(VCardEntry::new(VCardProperty::Note).with_value(VCardValue::Text(text)));
        }
    }
    merged
}

/// Properties a card has at most one of (RFC 6350's cardinality, FN as vCard 3.0 has it).
fn is_single(name: &VCardProperty) -> bool {
    matches!(
        name,
        VCardProperty::Fn
            | VCardProperty::N
            | VCardProperty::Bday
            | VCardProperty::Anniversary
            | VCardProperty::Gender
            | VCardProperty::Kind
    )
}

/// Whether `there` already holds `entry`'s value (same property; EMAIL and TEL
/// compared normalised).
fn same_value(there: &VCardEntry, entry: &VCardEntry) -> bool {
    if there.name != entry.name {
        return false;
    }
    match entry.name {
        VCardProperty::Email => texts(there)
            .map(|t| email(&t))
            .eq(texts(entry).map(|t| email(&t))),
        VCardProperty::Tel => texts(there)
            .map(|t| phone(&t))
            .eq(texts(entry).map(|t| phone(&t))),
        _ => same_values(there, entry),
    }
}

fn same_values(a: &VCardEntry, b: &VCardEntry) -> bool {
    a.values == b.values
}

fn merge_categories(merged: &mut VCard, entry: &VCardEntry) {
    let new: Vec<String> = texts(entry).collect();
    match merged
        .entries
        .iter_mut()
        .find(|e| e.name == VCardProperty::Categories)
    {
        None => merged.entries.push(entry.clone()),
        Some(there) => {
            for category in new {
                let known = there
                    .values
                    .iter()
                    .filter_map(VCardValue::as_text)
                    .any(|c| c.eq_ignore_ascii_case(&category));
                if !known {
                    there.values.push(VCardValue::Text(category));
                }
            }
        }
    }
}

/// Every text of an entry (a list property's items, a structured one's parts).
fn texts(entry: &VCardEntry) -> impl Iterator<Item = String> + '_ {
    entry.values.iter().flat_map(|v| match v {
        VCardValue::Component(parts) => parts.clone(),
        other => other.as_text().map(str::to_owned).into_iter().collect(),
    })
}

/// The property's line as calcard writes it (`BDAY:19800102`), for a note.
fn entry_text(entry: &VCardEntry) -> String {
    let card = VCard {
        entries: vec![entry.clone()],
    };
    card.to_string()
        .replace("\r\n ", "")
        .lines()
        .find(|l| !l.starts_with("BEGIN:") && !l.starts_with("END:") && !l.starts_with("VERSION:"))
        .unwrap_or_default()
        .to_owned()
}

fn emails(card: &VCard) -> Vec<String> {
    card.properties(&VCardProperty::Email)
        .flat_map(texts)
        .map(|t| email(&t))
        .filter(|e| !e.is_empty())
        .collect()
}

fn phones(card: &VCard) -> Vec<String> {
    card.properties(&VCardProperty::Tel)
        .flat_map(texts)
        .map(|t| phone(&t))
        .filter(|p| p.len() > 3)
        .collect()
}

fn full_name(card: &VCard) -> Option<String> {
    card.property(&VCardProperty::Fn)
        .and_then(|e| e.values.first())
        .and_then(VCardValue::as_text)
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty())
}

/// An address as compared: trimmed, lowercase, without `mailto:`.
fn email(text: &str) -> String {
    let t = text.trim();
    let t = t
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("mailto:"))
        .map_or(t, |_| &t[7..]);
    t.to_lowercase()
}

/// A number as compared: its digits, with `+` for an international one (`00` and
/// `tel:` are read as such).
fn phone(text: &str) -> String {
    let t = text.trim();
    let t = t
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("tel:"))
        .map_or(t, |_| &t[4..]);
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    if t.trim_start().starts_with('+') {
        format!("+{digits}")
    } else if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else {
        digits
    }
}

#[cfg(test)]
mod tests;
