//! Which source folder goes to which destination folder.
//!
//! A folder's name is decoded from the server's spelling (namespace prefix, hierarchy
//! delimiter, modified UTF-7) into a path of Unicode segments, given a role (by its
//! SPECIAL-USE attribute, else by the well-known names of Gmail, Outlook/Office 365,
//! Yahoo, iCloud and localised clients), and spelled again the destination's way. A
//! folder with a role lands in the destination's folder with that role. A name gives a
//! role only when no folder has that role by attribute, and to one folder per role:
//! every other folder keeps its own name, so two folders never merge into one unless
//! the user maps them so.

pub use crate::domain::FolderMap;
use crate::domain::{FolderStrategy, SpecialUse};
pub use crate::domain::{ListedFolder, Namespace};

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

/// The role a folder has by its name alone, and the rank of that name among the role's
/// well-known names (lower is more canonical: `Sent` before `Sent Items`).
fn role_by_name_ranked(path: &[String]) -> Option<(SpecialUse, usize)> {
    let joined = path.join("/").to_lowercase();
    WELL_KNOWN.iter().find_map(|(role, names)| {
        names
            .iter()
            .position(|n| n.to_lowercase() == joined)
            .map(|rank| (*role, rank))
    })
}

/// The role a folder has by its name alone.
pub fn role_by_name(path: &[String]) -> Option<SpecialUse> {
    role_by_name_ranked(path).map(|(role, _)| role)
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
    /// Folders sent where the user says, before any role.
    pub map: Vec<FolderMap>,
}

/// Why a folder lands where it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MappedBy {
    /// Its own name (translated between the servers' spellings).
    Name,
    /// Its SPECIAL-USE attribute (or an ancestor's): the destination's folder of that role.
    Attribute,
    /// Its well-known name (or an ancestor's), no source folder having that role by attribute.
    WellKnownName,
    /// The user's folder mapping.
    User,
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
    pub mapped_by: MappedBy,
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
    patterns.iter().any(|p| matches_folder(p, raw, path))
}

/// `pattern` names this folder or one of its ancestors.
fn matches_folder(pattern: &str, raw: &str, path: &str) -> bool {
    let p = pattern.trim().trim_end_matches('/');
    p == raw
        || p.eq_ignore_ascii_case(path)
        || path
            .to_lowercase()
            .starts_with(&format!("{}/", p.to_lowercase()))
}

/// The role each folder of one server has: by SPECIAL-USE attribute first; by a
/// well-known name only for a role no folder has by attribute, and then for one
/// folder per role (the most canonical name). Other folders have no role.
fn roles(folders: &[ListedFolder], ns: &Namespace) -> Vec<(Vec<String>, SpecialUse, MappedBy)> {
    let mut out: Vec<(Vec<String>, SpecialUse, MappedBy)> = folders
        .iter()
        .filter_map(|f| {
            f.special_use
                .map(|role| (ns.decode(&f.raw), role, MappedBy::Attribute))
        })
        .collect();
    let mut by_name: Vec<(usize, Vec<String>, SpecialUse)> = folders
        .iter()
        .filter(|f| f.special_use.is_none())
        .filter_map(|f| {
            let path = ns.decode(&f.raw);
            role_by_name_ranked(&path).map(|(role, rank)| (rank, path, role))
        })
        .collect();
    by_name.sort();
    for (_, path, role) in by_name {
        if !out.iter().any(|(_, r, _)| *r == role) {
            out.push((path, role, MappedBy::WellKnownName));
        }
    }
    out
}

/// `prefix` is `path` or one of its ancestors.
fn is_ancestor_or_self(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len() && prefix.iter().zip(path).all(|(a, b)| a == b)
}

/// What the selection looks at in a source folder.
struct Chosen<'a> {
    raw: &'a str,
    path: &'a str,
    is_inbox: bool,
    role: Option<SpecialUse>,
    /// A folder mapping of the user's names it.
    mapped: bool,
}

/// Why the selection leaves a folder out, or `None` when it takes it.
fn why_skipped(selection: &Selection, f: &Chosen<'_>) -> Option<&'static str> {
    if !selection.include.is_empty() && !matches_any(&selection.include, f.raw, f.path) {
        return Some("not among the folders chosen");
    }
    if matches_any(&selection.exclude, f.raw, f.path) {
        return Some("excluded");
    }
    let view = matches!(f.role, Some(SpecialUse::All | SpecialUse::Flagged));
    let allowed = match selection.strategy {
        FolderStrategy::All => true,
        FolderStrategy::Standard => f.is_inbox || (f.role.is_some() && !view),
        FolderStrategy::InboxOnly => f.is_inbox,
    };
    if !allowed {
        return Some("outside the folder strategy");
    }
    if view && selection.include.is_empty() && !f.mapped {
        return Some("a view of messages kept in other folders (name it to copy it)");
    }
    None
}

/// Where the user's mapping sends a folder: what lies below the mapped folder follows it.
fn mapped_path(m: &FolderMap, raw: &str, path: &[String]) -> Vec<String> {
    let depth = if m.source == raw {
        path.len()
    } else {
        m.source.trim_end_matches('/').split('/').count()
    };
    m.dest
        .split('/')
        .map(str::to_owned)
        .chain(path[depth.min(path.len())..].iter().cloned())
        .collect()
}

/// Where a folder lands by role: the longest ancestor-or-self with a role decides (in
/// the destination's folder of that role, or one of its canonical name); by its own
/// name otherwise.
fn by_role(
    path: &[String],
    source_roles: &[(Vec<String>, SpecialUse, MappedBy)],
    dest_roles: &[(Vec<String>, SpecialUse, MappedBy)],
) -> (Vec<String>, MappedBy) {
    let anchor = source_roles
        .iter()
        .filter(|(p, _, _)| is_ancestor_or_self(p, path))
        .max_by_key(|(p, _, _)| p.len());
    match anchor {
        Some((anchor_path, role, by)) => {
            let base = dest_roles
                .iter()
                .find(|(_, r, _)| r == role)
                .map(|(p, _, _)| p.clone())
                .unwrap_or_else(|| vec![role.canonical_name().to_owned()]);
            let below = path[anchor_path.len()..].iter().cloned();
            (base.into_iter().chain(below).collect(), *by)
        }
        None => (path.to_vec(), MappedBy::Name),
    }
}

/// Maps every source folder to its destination folder. `src_ns` and `dst_ns` are the
/// servers' personal namespaces (asked with NAMESPACE where offered).
pub fn map_folders(
    source: &[ListedFolder],
    src_ns: &Namespace,
    dest: &[ListedFolder],
    dst_ns: &Namespace,
    selection: &Selection,
) -> FolderMapping {
    let dest_roles = roles(dest, dst_ns);
    let source_roles = roles(source, src_ns);

    let mut mapping = FolderMapping::default();
    let mut sorted: Vec<&ListedFolder> = source.iter().collect();
    sorted.sort_by(|a, b| a.raw.cmp(&b.raw));
    for folder in sorted {
        let path = src_ns.decode(&folder.raw);
        let source_path = path.join("/");
        let is_inbox = path.len() == 1 && path[0].eq_ignore_ascii_case("INBOX");
        let own_role = source_roles
            .iter()
            .find(|(p, _, _)| *p == path)
            .map(|(_, role, _)| *role);
        let user_map = selection
            .map
            .iter()
            .filter(|m| matches_folder(&m.source, &folder.raw, &source_path))
            .max_by_key(|m| m.source.len());
        let chosen = Chosen {
            raw: &folder.raw,
            path: &source_path,
            is_inbox,
            role: own_role,
            mapped: user_map.is_some(),
        };
        if let Some(reason) = why_skipped(selection, &chosen) {
            mapping.skipped.push(Skipped {
                source: folder.raw.clone(),
                reason: reason.to_owned(),
            });
            continue;
        }
        let (dest_path, mapped_by) = match user_map {
            Some(m) => (mapped_path(m, &folder.raw, &path), MappedBy::User),
            None => by_role(&path, &source_roles, &dest_roles),
        };
        let dest_raw = dst_ns.encode(&dest_path);
        let exists = dest.iter().any(|d| d.raw == dest_raw) || dest_raw == "INBOX";
        mapping.folders.push(FolderPlan {
            source: folder.raw.clone(),
            source_path,
            dest: dest_raw,
            dest_path: dest_path.join("/"),
            special_use: own_role,
            mapped_by,
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

    /// Maps with each side's namespace read from its listing.
    fn map_detected(
        source: &[ListedFolder],
        dest: &[ListedFolder],
        selection: &Selection,
    ) -> FolderMapping {
        map_folders(
            source,
            &Namespace::detect(source),
            dest,
            &Namespace::detect(dest),
            selection,
        )
    }

    /// `(source, destination, why)` for every folder mapped.
    fn placed(mapping: &FolderMapping) -> Vec<(&str, &str, MappedBy)> {
        mapping
            .folders
            .iter()
            .map(|f| (f.source.as_str(), f.dest.as_str(), f.mapped_by))
            .collect()
    }

    /// `source raw name → destination raw name` for every folder mapped.
    fn check(source: &[ListedFolder], dest: &[ListedFolder], expect: &[(&str, &str)]) {
        let mapping = map_detected(source, dest, &Selection::default());
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
        let mapping = map_detected(&gmail, &slash_dest(), &Selection::default());
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
        let source = [listed("Sent Items", '/', None)];
        let mapping = map_detected(&source, &bare_dest, &Selection::default());
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
            map_detected(&source, &slash_dest(), &selection)
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

    #[test]
    fn a_name_gives_a_role_only_when_no_folder_has_it_by_attribute_and_to_one_folder() {
        // A German client's drafts folder beside the server's \Drafts: both kept.
        let source = vec![
            listed("INBOX", '/', None),
            listed("Drafts", '/', Some(SpecialUse::Drafts)),
            listed("Entw&APw-rfe", '/', None),
            listed("Sent", '/', None),
            listed("Sent Items", '/', None),
            listed("Gesendet", '/', None),
        ];
        let mapping = map_detected(&source, &slash_dest(), &Selection::default());
        assert_eq!(
            placed(&mapping),
            [
                ("Drafts", "Drafts", MappedBy::Attribute),
                ("Entw&APw-rfe", "Entw&APw-rfe", MappedBy::Name),
                ("Gesendet", "Gesendet", MappedBy::Name),
                ("INBOX", "INBOX", MappedBy::Name),
                ("Sent", "Sent", MappedBy::WellKnownName),
                ("Sent Items", "Sent Items", MappedBy::Name),
            ]
        );
    }

    #[test]
    fn the_users_mapping_comes_before_any_role_and_takes_subfolders_along() {
        let source = vec![
            listed("INBOX", '/', None),
            listed("Sent Items", '/', None),
            listed("Old Stuff", '/', None),
            listed("Old Stuff/2019", '/', None),
        ];
        let selection = Selection {
            map: vec![
                FolderMap::parse("Sent Items=Archive/Sent 2019").unwrap(),
                FolderMap::parse("Old Stuff = Archive/Old").unwrap(),
            ],
            ..Default::default()
        };
        let dest = vec![listed("INBOX", '.', None)];
        let ns = Namespace {
            delimiter: '.',
            prefix: "INBOX.".into(),
        };
        let mapping = map_folders(&source, &Namespace::detect(&source), &dest, &ns, &selection);
        assert_eq!(
            placed(&mapping),
            [
                ("INBOX", "INBOX", MappedBy::Name),
                ("Old Stuff", "INBOX.Archive.Old", MappedBy::User),
                ("Old Stuff/2019", "INBOX.Archive.Old.2019", MappedBy::User),
                ("Sent Items", "INBOX.Archive.Sent 2019", MappedBy::User),
            ]
        );
        assert!(FolderMap::parse("Sent").is_err());
        assert!(FolderMap::parse("=Sent").is_err());
    }

    #[test]
    fn an_asked_namespace_spells_folders_on_a_destination_that_has_only_inbox() {
        // LIST shows INBOX alone: only NAMESPACE says that folders live under INBOX.
        let source = vec![
            listed("INBOX", '/', None),
            listed("Sent", '/', Some(SpecialUse::Sent)),
            listed("Work/2024", '/', None),
        ];
        let dest = vec![listed("INBOX", '.', None)];
        let asked = Namespace {
            delimiter: '.',
            prefix: "INBOX.".into(),
        };
        let mapping = map_folders(
            &source,
            &Namespace::detect(&source),
            &dest,
            &asked,
            &Selection::default(),
        );
        let got: Vec<&str> = mapping.folders.iter().map(|f| f.dest.as_str()).collect();
        assert_eq!(got, ["INBOX", "INBOX.Sent", "INBOX.Work.2024"]);
        assert_eq!(
            Namespace::detect(&dest).prefix,
            "",
            "a guess from LIST cannot know"
        );
    }
}
