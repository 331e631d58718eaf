//! Checks that keep the tree honest: every template compiled in, every setting
//! documented, every module documented, every connection through the checked path.

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
    let registered: Vec<&str> = ferry::render::TEMPLATES
        .iter()
        .map(|(name, _)| *name)
        .collect();
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
            registered.contains(&name.as_str()),
            "templates/{name} is not in render::TEMPLATES"
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

#[test]
fn every_module_of_the_server_starts_with_its_documentation() {
    let mut files = Vec::new();
    files_under(&workspace_root().join("server/src"), &mut files);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy();
        if name != "mod.rs" && name != "lib.rs" && name != "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.trim_start().starts_with("//!"),
            "{} has no module documentation",
            file.display()
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
