//! Checks that keep the tree honest: every template compiled in, every setting
//! documented, every file documented and on the code map, the code map's "may use"
//! column obeyed, the database only in `store`, no clock in `domain` or `planner`, every
//! connection through the checked path.

use std::path::Path;

use ferry_tests::workspace_root;

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_template_file_is_compiled_into_the_binary() {
    let root = workspace_root().join("templates");
    let mut files = Vec::new();
    files_under(&root, &mut files);
    let registered = ferry::render::Renderer::new().unwrap().template_names();
    for file in files {
        let name = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("static/") {
            continue;
        }
        assert!(
            registered.contains(&name),
            "templates/{name} is not embedded (server/build.rs takes .html and .txt)"
        );
    }
}

fn keys(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_object() {
                    keys(&key, v, out);
                } else {
                    out.push(key);
                }
            }
        }
        None => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_setting_is_documented_in_config_md() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/config.md")).unwrap();
    let defaults = serde_json::to_value(ferry::config::Settings::default()).unwrap();
    let mut all = Vec::new();
    keys("", &defaults, &mut all);
    for key in all {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/config.md does not document `{key}`"
        );
    }
}

#[test]
fn config_md_marks_exactly_the_settings_the_console_changes() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/config.md")).unwrap();
    let mut marked: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| `") && l.ends_with("*console* |"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    let mut editable: Vec<&str> = ferry::config::EDITABLE.iter().map(|e| e.key).collect();
    marked.sort_unstable();
    editable.sort_unstable();
    assert_eq!(marked, editable, "docs/config.md's *console* rows");
}

fn server_sources() -> Vec<(String, String)> {
    let root = workspace_root().join("server/src");
    let mut files = Vec::new();
    files_under(&root, &mut files);
    let mut out: Vec<(String, String)> = files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .map(|f| {
            let rel = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read_to_string(&f).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The lines of a source file that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| {
        let t = l.trim_start();
        !t.starts_with("//")
    })
}

#[test]
fn every_file_of_the_server_starts_with_its_documentation() {
    for (path, text) in server_sources() {
        assert!(
            text.trim_start().starts_with("//!"),
            "server/src/{path} has no `//!` line saying what it is"
        );
    }
}

/// One row of docs/ARCHITECTURE.md's code map: a path (a file, or a folder ending in `/`)
/// and the top-level modules its files may name.
struct MapRow {
    path: String,
    may_use: Vec<String>,
}

fn code_map() -> Vec<MapRow> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/ARCHITECTURE.md")).unwrap();
    let section = doc
        .split("## Code map")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a `## Code map` section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            assert!(cells.len() == 3, "code map row without three cells: {line}");
            let path = cells[0].trim().trim_matches('`').to_owned();
            let may_use = cells[2]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|m| m.split("::").next().unwrap().to_owned())
                .collect();
            MapRow { path, may_use }
        })
        .collect()
}

/// The most specific code-map row that covers a source file.
fn row_for<'a>(map: &'a [MapRow], file: &str) -> Option<&'a MapRow> {
    map.iter()
        .filter(|r| {
            if r.path.ends_with('/') {
                file.starts_with(&r.path)
            } else {
                file == r.path
            }
        })
        .max_by_key(|r| r.path.len())
}

fn top_module(file: &str) -> &str {
    let first = file.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

#[test]
fn every_file_is_on_the_code_map_and_uses_only_what_its_row_allows() {
    let map = code_map();
    assert!(map.len() > 10, "the code map was not found or not read");
    for (file, text) in server_sources() {
        let row = row_for(&map, &file).unwrap_or_else(|| {
            panic!("server/src/{file} has no row in ARCHITECTURE.md's code map")
        });
        if row.may_use.iter().any(|m| m == "*") {
            continue;
        }
        let own = top_module(&file);
        for line in code_lines(&text) {
            for (at, _) in line.match_indices("crate::") {
                let used: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    !used.is_empty(),
                    "server/src/{file}: name each module in full (`crate::x::…`), not `crate::{{…}}`: {line}"
                );
                assert!(
                    used == own || row.may_use.contains(&used),
                    "server/src/{file} uses `crate::{used}`, which its code-map row `{}` does not allow \
                     (allowed: {:?}); change the code or the map in docs/ARCHITECTURE.md",
                    row.path,
                    row.may_use
                );
            }
        }
    }
}

#[test]
fn only_store_names_sea_orm() {
    for (file, text) in server_sources() {
        if file.starts_with("store/") {
            continue;
        }
        assert!(
            !code_lines(&text).any(|l| l.contains("sea_orm")),
            "server/src/{file} names sea_orm: only `store` sees the database"
        );
    }
}

#[test]
fn domain_and_planner_read_no_clock() {
    for (file, text) in server_sources() {
        if !(file.starts_with("domain/") || file.starts_with("planner/")) {
            continue;
        }
        for clock in ["Utc::now", "Local::now", "SystemTime::now", "Instant::now"] {
            assert!(
                !code_lines(&text).any(|l| l.contains(clock)),
                "server/src/{file} reads the clock ({clock}): take `now` as an argument"
            );
        }
    }
}

#[test]
fn the_wall_clock_is_read_only_through_the_clock() {
    for (file, text) in server_sources() {
        if file == "clock.rs" {
            continue;
        }
        for clock in ["Utc::now", "Local::now", "SystemTime::now"] {
            assert!(
                !code_lines(&text).any(|l| l.contains(clock)),
                "server/src/{file} reads the wall clock ({clock}): ask the `Clock` (`services.now()`)"
            );
        }
    }
}

#[test]
fn lib_rs_names_every_module_and_the_map_has_each() {
    let lib = std::fs::read_to_string(workspace_root().join("server/src/lib.rs")).unwrap();
    let doc: String = lib
        .lines()
        .filter(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let map = code_map();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    assert!(modules.len() > 10, "lib.rs's modules were not read");
    for module in modules {
        assert!(
            doc.contains(&format!("`{module}`")),
            "lib.rs's documentation does not name `{module}`"
        );
        assert!(
            map.iter().any(|r| top_module(&r.path) == module),
            "docs/ARCHITECTURE.md's code map has no row for `{module}`"
        );
    }
}

/// Every connection to a customer-named host goes through `connectors::net::connect`,
/// which checks the addresses it connects to; a socket opened anywhere else would skip
/// the check (the DNS-rebinding finding).
#[test]
fn only_connectors_net_opens_a_tcp_connection() {
    let mut files = Vec::new();
    files_under(&workspace_root().join("server/src"), &mut files);
    for file in files {
        if file.ends_with("connectors/net.rs") || file.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in [
            "TcpStream::connect",
            "tokio::net::lookup_host",
            "to_socket_addrs",
        ] {
            let found = text
                .lines()
                .any(|l| l.contains(needle) && !l.trim_start().starts_with("//"));
            assert!(
                !found,
                "{} calls {needle}: connect through connectors::net::connect",
                file.display()
            );
        }
    }
}

/// Every error code is described for the scripts that branch on it.
#[test]
fn api_guide_lists_every_error_code() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/api-guide.md")).unwrap();
    for code in ferry::domain::ErrorCode::ALL {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "docs/api-guide.md's error table does not describe `{code}`"
        );
    }
}

/// Only `sync` opens IMAP sessions (the engine, delete migrated, and the probes of
/// test-connection and validation); the service and the scheduler call into it.
#[test]
fn only_sync_opens_an_imap_session() {
    for (file, text) in server_sources() {
        if file.starts_with("sync/") || file.starts_with("connectors/") {
            continue;
        }
        assert!(
            !code_lines(&text).any(|l| l.contains("ImapConnection::connect")),
            "server/src/{file} opens an IMAP session: call a function of `sync` instead"
        );
    }
}
