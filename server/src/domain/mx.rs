//! When a domain counts as switched to the provider: every MX host it publishes
//! matches one of the provider's patterns (a host left at the old provider would still
//! receive some of the mail).

/// `*` stands for one or more labels: `*.provider.example` matches
/// `mx1.provider.example` and `a.b.provider.example`, not `provider.example`.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(&suffix)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        None => pattern == host,
    }
}

/// True when the domain has MX hosts and all of them match a pattern.
pub fn mx_switched(patterns: &[String], hosts: &[(u16, String)]) -> bool {
    !hosts.is_empty()
        && hosts
            .iter()
            .all(|(_, h)| patterns.iter().any(|p| host_matches(p, h)))
}

/// The MX answer as people read it: `10 mx1.example, 20 mx2.example`.
pub fn mx_answer(hosts: &[(u16, String)]) -> String {
    if hosts.is_empty() {
        return "no MX records".into();
    }
    hosts
        .iter()
        .map(|(p, h)| format!("{p} {h}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<(u16, String)> {
        list.iter()
            .enumerate()
            .map(|(i, h)| (10 * (i as u16 + 1), (*h).to_owned()))
            .collect()
    }

    #[test]
    fn a_wildcard_matches_any_labels_below_the_suffix_only() {
        assert!(host_matches("*.provider.example", "mx1.provider.example."));
        assert!(host_matches("*.provider.example", "a.b.Provider.Example"));
        assert!(!host_matches("*.provider.example", "provider.example"));
        assert!(!host_matches(
            "*.provider.example",
            "mx1.notprovider.example"
        ));
        assert!(host_matches("mx.provider.example", "MX.provider.example"));
    }

    #[test]
    fn switched_only_when_every_mx_host_is_the_providers() {
        let patterns = vec!["*.provider.example".to_owned()];
        assert!(mx_switched(&patterns, &hosts(&["mx1.provider.example"])));
        assert!(!mx_switched(
            &patterns,
            &hosts(&["mx1.provider.example", "mx.old.example"])
        ));
        assert!(!mx_switched(&patterns, &[]));
        assert_eq!(
            mx_answer(&hosts(&["a.example", "b.example"])),
            "10 a.example, 20 b.example"
        );
    }
}
