//! Which source folder goes to which destination folder.
//!
//! A folder's name is decoded from the server's spelling (namespace prefix, hierarchy
//! delimiter, modified UTF-7) into a path of Unicode segments, given a role (by its
//! SPECIAL-USE attribute, else by the well-known names of Gmail, Outlook/Office 365,
//! Yahoo, iCloud and localised clients), and spelled again the destination's way. A
//! folder with a role lands in the destination's folder with that role.

use crate::domain::{FolderStrategy, SpecialUse};

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
    /// Works out the personal namespace from a LIST (NAMESPACE is not used: async-imap
    /// cannot parse its answer). A `.`-delimited server whose every folder but INBOX
    /// starts with `INBOX.` keeps its folders under that prefix.
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

/// Well-known names of special folders, compared case-insensitively with the whole
/// decoded path joined by `/`.
const WELL_KNOWN: &[(SpecialUse, &[&str])] = &[
    (
        SpecialUse::Sent,
        &[
            "Sent",
            "Sent Items",
            "Sent Messages",
            "Sent Mail",
            "Sent-Mail",
            "[Gmail]/Sent Mail",
            "[Google Mail]/Sent Mail",
            "INBOX/Sent",
            "Gesendete Elemente",
            "Gesendete Objekte",
            "Gesendet",
            "Éléments envoyés",
            "Messages envoyés",
            "Envoyés",
            "Posta inviata",
            "Inviata",
            "Elementos enviados",
            "Enviados",
            "Itens Enviados",
            "Verzonden items",
            "Verzonden",
            "Skickat",
            "Skickade objekt",
            "Sendt",
            "Sendte elementer",
            "Wysłane",
        ],
    ),
    (
        SpecialUse::Drafts,
        &[
            "Drafts",
            "Draft",
            "[Gmail]/Drafts",
            "[Google Mail]/Drafts",
            "INBOX/Drafts",
            "Entwürfe",
            "Brouillons",
            "Bozze",
            "Borradores",
            "Rascunhos",
            "Concepten",
            "Utkast",
            "Kladder",
            "Kopie robocze",
        ],
    ),
    (
        SpecialUse::Trash,
        &[
            "Trash",
            "Deleted Items",
            "Deleted Messages",
            "Deleted",
            "Bin",
            "[Gmail]/Trash",
            "[Gmail]/Bin",
            "[Google Mail]/Trash",
            "[Google Mail]/Bin",
            "INBOX/Trash",
            "Gelöschte Elemente",
            "Gelöschte Objekte",
            "Papierkorb",
            "Éléments supprimés",
            "Corbeille",
            "Cestino",
            "Posta eliminata",
            "Papelera",
            "Elementos eliminados",
            "Lixeira",
            "Itens Excluídos",
            "Prullenbak",
            "Verwijderde items",
            "Papperskorgen",
            "Kosz",
        ],
    ),
    (
        SpecialUse::Junk,
        &[
            "Junk",
            "Spam",
            "Junk E-mail",
            "Junk Email",
            "Junk Mail",
            "Bulk Mail",
            "Bulk",
            "[Gmail]/Spam",
            "[Google Mail]/Spam",
            "INBOX/Junk",
            "INBOX/Spam",
            "Junk-E-Mail",
            "Unerwünscht",
            "Courrier indésirable",
            "Indésirables",
            "Pourriel",
            "Posta indesiderata",
            "Correo no deseado",
            "Lixo Eletrônico",
            "Ongewenste e-mail",
            "Skräppost",
        ],
    ),
    (
        SpecialUse::Archive,
        &[
            "Archive", "Archives", "Archiv", "Archivio", "Archivo", "Arquivo", "Archief", "Arkiv",
        ],
    ),
    (
        SpecialUse::All,
        &[
            "[Gmail]/All Mail",
            "[Google Mail]/All Mail",
            "[Gmail]/Alle Nachrichten",
        ],
    ),
    (
        SpecialUse::Flagged,
        &["[Gmail]/Starred", "[Google Mail]/Starred"],
    ),
];

/// The role a folder has by its name alone.
pub fn role_by_name(path: &[String]) -> Option<SpecialUse> {
    let joined = path.join("/");
    WELL_KNOWN
        .iter()
        .find(|(_, names)| {
            names.iter().any(|n| {
                n.eq_ignore_ascii_case(&joined) || n.to_lowercase() == joined.to_lowercase()
            })
        })
        .map(|(role, _)| *role)
}

/// Which folders to take, as the user chose them.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub strategy: FolderStrategy,
    /// Only these folders (and their subfolders), by source path with `/` between
    /// levels, or by the server's own spelling. Empty: all the strategy allows.
    pub include: Vec<String>,
    /// Never these folders (and their subfolders).
    pub exclude: Vec<String>,
}

/// One source folder's fate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FolderPlan {
    pub source: String,
    /// The source path for people: Unicode, `/` between levels.
    pub source_path: String,
    pub dest: String,
    pub dest_path: String,
    pub special_use: Option<SpecialUse>,
    /// Copy its messages (false for `\Noselect` nodes).
    pub copy_messages: bool,
    /// The destination folder does not exist yet.
    pub create: bool,
    pub subscribe: bool,
}

/// Why a source folder is left out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FolderMapping {
    pub folders: Vec<FolderPlan>,
    pub skipped: Vec<Skipped>,
}

fn matches_any(patterns: &[String], raw: &str, path: &str) -> bool {
    patterns.iter().any(|p| {
        let p = p.trim().trim_end_matches('/');
        p == raw
            || p.eq_ignore_ascii_case(path)
            || path
                .to_lowercase()
                .starts_with(&format!("{}/", p.to_lowercase()))
    })
}

/// Maps every source folder to its destination folder.
pub fn map_folders(
    source: &[ListedFolder],
    dest: &[ListedFolder],
    selection: &Selection,
) -> FolderMapping {
    let src_ns = Namespace::detect(source);
    let dst_ns = Namespace::detect(dest);
    let dest_special: Vec<(SpecialUse, Vec<String>)> = dest
        .iter()
        .filter_map(|f| {
            let path = dst_ns.decode(&f.raw);
            f.special_use
                .or_else(|| role_by_name(&path))
                .map(|role| (role, path))
        })
        .collect();
    // Roles of source folders, so that a subfolder of "Sent Items" follows it.
    let roles: Vec<(Vec<String>, SpecialUse)> = source
        .iter()
        .filter_map(|f| {
            let path = src_ns.decode(&f.raw);
            f.special_use
                .or_else(|| role_by_name(&path))
                .map(|role| (path, role))
        })
        .collect();

    let mut mapping = FolderMapping::default();
    let mut sorted: Vec<&ListedFolder> = source.iter().collect();
    sorted.sort_by(|a, b| a.raw.cmp(&b.raw));
    for folder in sorted {
        let path = src_ns.decode(&folder.raw);
        let source_path = path.join("/");
        let is_inbox = path.len() == 1 && path[0].eq_ignore_ascii_case("INBOX");
        let own_role = folder.special_use.or_else(|| role_by_name(&path));
        let skip = |reason: &str| Skipped {
            source: folder.raw.clone(),
            reason: reason.to_owned(),
        };

        if !selection.include.is_empty()
            && !matches_any(&selection.include, &folder.raw, &source_path)
        {
            mapping.skipped.push(skip("not among the folders chosen"));
            continue;
        }
        if matches_any(&selection.exclude, &folder.raw, &source_path) {
            mapping.skipped.push(skip("excluded"));
            continue;
        }
        let allowed = match selection.strategy {
            FolderStrategy::All => true,
            FolderStrategy::Standard => {
                is_inbox
                    || matches!(own_role, Some(r) if !matches!(r, SpecialUse::All | SpecialUse::Flagged))
            }
            FolderStrategy::InboxOnly => is_inbox,
        };
        if !allowed {
            mapping.skipped.push(skip("outside the folder strategy"));
            continue;
        }
        if matches!(own_role, Some(SpecialUse::All | SpecialUse::Flagged))
            && selection.include.is_empty()
        {
            mapping.skipped.push(skip(
                "a view of messages kept in other folders (name it to copy it)",
            ));
            continue;
        }

        // The longest ancestor-or-self with a role decides where the folder lands.
        let anchor = roles
            .iter()
            .filter(|(p, _)| p.len() <= path.len() && p.iter().zip(&path).all(|(a, b)| a == b))
            .max_by_key(|(p, _)| p.len());
        let dest_path: Vec<String> = match anchor {
            Some((anchor_path, role)) => {
                let base = dest_special
                    .iter()
                    .find(|(r, _)| r == role)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_else(|| vec![role.canonical_name().to_owned()]);
                base.into_iter()
                    .chain(path[anchor_path.len()..].iter().cloned())
                    .collect()
            }
            None => path.clone(),
        };
        let dest_raw = dst_ns.encode(&dest_path);
        let exists = dest.iter().any(|d| d.raw == dest_raw) || dest_raw == "INBOX";
        mapping.folders.push(FolderPlan {
            source: folder.raw.clone(),
            source_path,
            dest: dest_raw,
            dest_path: dest_path.join("/"),
            special_use: own_role,
            copy_messages: folder.selectable,
            create: !exists,
            subscribe: folder.subscribed,
        });
    }
    mapping
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(raw: &str, delim: char, role: Option<SpecialUse>) -> ListedFolder {
        ListedFolder {
            raw: raw.into(),
            delimiter: Some(delim),
            special_use: role,
            selectable: true,
            subscribed: true,
        }
    }

    fn slash_dest() -> Vec<ListedFolder> {
        vec![
            listed("INBOX", '/', None),
            listed("Sent", '/', Some(SpecialUse::Sent)),
            listed("Drafts", '/', Some(SpecialUse::Drafts)),
            listed("Trash", '/', Some(SpecialUse::Trash)),
            listed("Junk", '/', Some(SpecialUse::Junk)),
            listed("Archive", '/', Some(SpecialUse::Archive)),
        ]
    }

    /// `source raw name → destination raw name` for every folder mapped.
    fn check(source: &[ListedFolder], dest: &[ListedFolder], expect: &[(&str, &str)]) {
        let mapping = map_folders(source, dest, &Selection::default());
        let got: Vec<(&str, &str)> = mapping
            .folders
            .iter()
            .map(|f| (f.source.as_str(), f.dest.as_str()))
            .collect();
        let mut want = expect.to_vec();
        want.sort();
        assert_eq!(got, want, "skipped: {:?}", mapping.skipped);
    }

    #[test]
    fn courier_layout_maps_to_slash_and_back() {
        let courier = vec![
            listed("INBOX", '.', None),
            listed("INBOX.Sent", '.', Some(SpecialUse::Sent)),
            listed("INBOX.Projects", '.', None),
            listed("INBOX.Projects.2024", '.', None),
            listed("INBOX.Caf&AOk-", '.', None),
        ];
        check(
            &courier,
            &slash_dest(),
            &[
                ("INBOX", "INBOX"),
                ("INBOX.Sent", "Sent"),
                ("INBOX.Projects", "Projects"),
                ("INBOX.Projects.2024", "Projects/2024"),
                ("INBOX.Caf&AOk-", "Caf&AOk-"),
            ],
        );
        let slash = vec![
            listed("INBOX", '/', None),
            listed("Projects/2024", '/', None),
            listed("v1.2", '/', None),
        ];
        let dest = vec![
            listed("INBOX", '.', None),
            listed("INBOX.Sent", '.', Some(SpecialUse::Sent)),
        ];
        check(
            &slash,
            &dest,
            &[
                ("INBOX", "INBOX"),
                ("Projects/2024", "INBOX.Projects.2024"),
                ("v1.2", "INBOX.v1_2"),
            ],
        );
    }

    #[test]
    fn well_known_names_land_in_the_destination_special_folders() {
        let gmail = vec![
            listed("INBOX", '/', None),
            ListedFolder {
                selectable: false,
                ..listed("[Gmail]", '/', None)
            },
            listed("[Gmail]/Sent Mail", '/', None),
            listed("[Gmail]/All Mail", '/', None),
            listed("[Gmail]/Spam", '/', None),
            listed("[Gmail]/Bin", '/', None),
        ];
        let mapping = map_folders(&gmail, &slash_dest(), &Selection::default());
        let pairs: Vec<_> = mapping
            .folders
            .iter()
            .map(|f| (f.source.as_str(), f.dest.as_str(), f.copy_messages))
            .collect();
        assert_eq!(
            pairs,
            [
                ("INBOX", "INBOX", true),
                ("[Gmail]", "[Gmail]", false),
                ("[Gmail]/Bin", "Trash", true),
                ("[Gmail]/Sent Mail", "Sent", true),
                ("[Gmail]/Spam", "Junk", true),
            ]
        );
        assert_eq!(mapping.skipped[0].source, "[Gmail]/All Mail");

        let outlook = vec![
            listed("Sent Items", '/', None),
            listed("Sent Items/2019", '/', None),
            listed("Deleted Items", '/', None),
            listed("Junk Email", '/', None),
        ];
        check(
            &outlook,
            &slash_dest(),
            &[
                ("Deleted Items", "Trash"),
                ("Junk Email", "Junk"),
                ("Sent Items", "Sent"),
                ("Sent Items/2019", "Sent/2019"),
            ],
        );
        let german = vec![
            listed("Gesendete Elemente", '/', None),
            listed("Entw&APw-rfe", '/', None),
            listed("Papierkorb", '/', None),
        ];
        check(
            &german,
            &slash_dest(),
            &[
                ("Entw&APw-rfe", "Drafts"),
                ("Gesendete Elemente", "Sent"),
                ("Papierkorb", "Trash"),
            ],
        );
        let french = vec![
            listed("&AMk-l&AOk-ments envoy&AOk-s", '/', None),
            listed("Courrier ind&AOk-sirable", '/', None),
        ];
        check(
            &french,
            &slash_dest(),
            &[
                ("&AMk-l&AOk-ments envoy&AOk-s", "Sent"),
                ("Courrier ind&AOk-sirable", "Junk"),
            ],
        );
        let yahoo = vec![listed("Bulk Mail", '/', None), listed("Draft", '/', None)];
        check(
            &yahoo,
            &slash_dest(),
            &[("Bulk Mail", "Junk"), ("Draft", "Drafts")],
        );
        let icloud = vec![
            listed("Sent Messages", '/', None),
            listed("Deleted Messages", '/', None),
        ];
        check(
            &icloud,
            &slash_dest(),
            &[("Deleted Messages", "Trash"), ("Sent Messages", "Sent")],
        );
    }

    #[test]
    fn a_special_use_attribute_beats_the_name_and_a_missing_role_gets_a_canonical_folder() {
        let source = vec![listed("Outbox Copies", '/', Some(SpecialUse::Sent))];
        let dest = vec![
            listed("INBOX", '.', None),
            listed("INBOX.Gesendet", '.', Some(SpecialUse::Sent)),
        ];
        check(&source, &dest, &[("Outbox Copies", "INBOX.Gesendet")]);
        let bare_dest = vec![listed("INBOX", '/', None)];
        let mapping = map_folders(
            &[listed("Sent Items", '/', None)],
            &bare_dest,
            &Selection::default(),
        );
        assert_eq!(
            (mapping.folders[0].dest.as_str(), mapping.folders[0].create),
            ("Sent", true)
        );
    }

    #[test]
    fn strategy_include_and_exclude_choose_folders() {
        let source = vec![
            listed("INBOX", '/', None),
            listed("Sent", '/', Some(SpecialUse::Sent)),
            listed("Clients", '/', None),
            listed("Clients/Acme", '/', None),
            listed("Old", '/', None),
        ];
        let pick = |selection: Selection| -> Vec<String> {
            map_folders(&source, &slash_dest(), &selection)
                .folders
                .into_iter()
                .map(|f| f.source)
                .collect()
        };
        assert_eq!(
            pick(Selection {
                strategy: FolderStrategy::Standard,
                ..Default::default()
            }),
            ["INBOX", "Sent"]
        );
        assert_eq!(
            pick(Selection {
                strategy: FolderStrategy::InboxOnly,
                ..Default::default()
            }),
            ["INBOX"]
        );
        assert_eq!(
            pick(Selection {
                include: vec!["Clients".into()],
                ..Default::default()
            }),
            ["Clients", "Clients/Acme"]
        );
        assert_eq!(
            pick(Selection {
                exclude: vec!["clients".into(), "Old".into()],
                ..Default::default()
            }),
            ["INBOX", "Sent"]
        );
    }

    #[test]
    fn namespace_detection_and_unicode_round_trip() {
        let ns = Namespace {
            delimiter: '.',
            prefix: "INBOX.".into(),
        };
        let path = vec!["Ünïcödé 日本".to_owned(), "a.b".to_owned()];
        let raw = ns.encode(&path);
        assert!(raw.starts_with("INBOX.") && raw.is_ascii(), "{raw}");
        assert_eq!(
            ns.decode(&raw),
            vec!["Ünïcödé 日本".to_owned(), "a_b".to_owned()]
        );
        assert_eq!(
            Namespace::detect(&[listed("INBOX", '/', None), listed("INBOX/x", '/', None)]).prefix,
            ""
        );
    }
}
