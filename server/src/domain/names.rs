//! Host and domain names as people type them: checked label by label (RFC 1123), so
//! that nothing but a name reaches a DNS query, a connection or an email. A CR/LF or
//! `<>` in a domain once put forged lines into the DNS instructions sent to customers.

use std::net::IpAddr;

/// The longest name DNS carries (RFC 1035), and the longest label.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// `text` as a host name or IP address (lower case, without a final dot), or a
/// sentence that says what is wrong.
pub fn host_name(text: &str) -> Result<String, String> {
    let text = text.trim();
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    domain_like(text, "a host name like imap.example.com")
}

/// `text` as a domain name with at least two labels (lower case, without a final dot).
pub fn domain_name(text: &str) -> Result<String, String> {
    let name = domain_like(text.trim(), "a domain name like example.com")?;
    if !name.contains('.') {
        return Err(format!("{name:?} is not a domain name like example.com"));
    }
    Ok(name)
}

fn domain_like(text: &str, like: &str) -> Result<String, String> {
    let name = text.strip_suffix('.').unwrap_or(text).to_lowercase();
    let shown: String = text.chars().take(80).collect();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "{shown:?} is not {like} (1 to {MAX_NAME} characters)"
        ));
    }
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= MAX_LABEL
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(format!(
                "{shown:?} is not {like}: use letters, digits and hyphens between the dots"
            ));
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_label_by_label() {
        assert_eq!(
            host_name(" IMAP.Example.com. ").unwrap(),
            "imap.example.com"
        );
        assert_eq!(host_name("localhost").unwrap(), "localhost");
        assert_eq!(host_name("127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(host_name("[::1]").unwrap(), "::1");
        assert_eq!(host_name("mail.bücher.de").unwrap(), "mail.bücher.de");
        assert_eq!(domain_name("Example.COM").unwrap(), "example.com");
        for bad in [
            "",
            "example.com\r\nX-Injected: yes",
            "example.com\n10 evil.example",
            "<script>.example",
            "a..b",
            "-a.example",
            "a-.example",
            "jane@example.com",
            "example.com/path",
            "exa mple.com",
        ] {
            assert!(host_name(bad).is_err(), "{bad:?} accepted as a host");
            assert!(domain_name(bad).is_err(), "{bad:?} accepted as a domain");
        }
        assert!(domain_name("localhost").is_err());
        assert!(host_name(&"a".repeat(64)).is_err());
        assert!(host_name(&format!("{}.example", "a.".repeat(130))).is_err());
        // The error shows at most 80 characters of what was typed.
        assert!(host_name(&"x".repeat(10_000)).unwrap_err().len() < 200);
    }
}
