//! A folder as a server lists it and how the server spells folder names: what the
//! connectors hand to the planner (`planner::folders`), so that connectors depend on
//! the domain only.

use super::SpecialUse;

/// A folder as the source or destination server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFolder {
    /// The name exactly as LIST returned it (modified UTF-7).
    pub raw: String,
    pub delimiter: Option<char>,
    pub special_use: Option<SpecialUse>,
    /// `\Noselect` or `\NonExistent`: a node of the tree without messages.
    pub selectable: bool,
    pub subscribed: bool,
}

/// How a server spells folder names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub delimiter: char,
    /// `INBOX.` on Courier-style servers, empty elsewhere.
    pub prefix: String,
}

impl Namespace {
    /// Works out the personal namespace from a LIST, for a server without NAMESPACE
    /// (where it has it, the connector asks). A `.`-delimited server whose every folder
    /// but INBOX starts with `INBOX.` keeps its folders under that prefix.
    pub fn detect(folders: &[ListedFolder]) -> Self {
        let delimiter = folders.iter().find_map(|f| f.delimiter).unwrap_or('/');
        let prefix = format!("INBOX{delimiter}");
        let others: Vec<_> = folders
            .iter()
            .filter(|f| !f.raw.eq_ignore_ascii_case("INBOX"))
            .collect();
        let prefixed = delimiter == '.'
            && !others.is_empty()
            && others.iter().all(|f| {
                f.raw.len() > prefix.len() && f.raw[..prefix.len()].eq_ignore_ascii_case(&prefix)
            });
        Self {
            delimiter,
            prefix: if prefixed { prefix } else { String::new() },
        }
    }

    /// The Unicode path of a listed name: prefix removed, split, decoded.
    pub fn decode(&self, raw: &str) -> Vec<String> {
        if raw.eq_ignore_ascii_case("INBOX") {
            return vec!["INBOX".to_owned()];
        }
        let rest = if !self.prefix.is_empty()
            && raw.len() > self.prefix.len()
            && raw[..self.prefix.len()].eq_ignore_ascii_case(&self.prefix)
        {
            &raw[self.prefix.len()..]
        } else {
            raw
        };
        rest.split(self.delimiter)
            .map(|s| utf7_imap::decode_utf7_imap(s.to_owned()))
            .collect()
    }

    /// The server's spelling of a Unicode path. A delimiter inside a segment becomes
    /// `_` (it would otherwise split the folder in two).
    pub fn encode(&self, path: &[String]) -> String {
        if path.len() == 1 && path[0].eq_ignore_ascii_case("INBOX") {
            return "INBOX".to_owned();
        }
        let segments: Vec<String> = path
            .iter()
            .map(|s| utf7_imap::encode_utf7_imap(s.replace(self.delimiter, "_")))
            .collect();
        format!(
            "{}{}",
            self.prefix,
            segments.join(&self.delimiter.to_string())
        )
    }
}
