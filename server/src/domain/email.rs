//! Email addresses checked once, at the edge.

use std::fmt;

use super::FieldError;

/// An email address that passed a syntax check: one `@`, a local part of at most 64
/// characters, and a domain of dot-separated labels. Stored lower-cased in the domain
/// and as given in the local part.
///
/// Deliberately stricter than RFC 5322 (no quoted local parts, no comments, no
/// address literals): these are addresses of mailboxes people type into a form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        let bad = |why: &str| {
            FieldError::new(
                field,
                format!("{} is not an email address: {why}", super::quoted(raw)),
            )
        };
        if raw.is_empty() {
            return Err(FieldError::new(field, "an email address is required"));
        }
        let (local, domain) = raw.rsplit_once('@').ok_or_else(|| bad("it has no @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(bad("the part before @ must have 1 to 64 characters"));
        }
        if local.contains('@')
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"(),:;<>[\\]".contains(c))
        {
            return Err(bad("the part before @ has a character that is not allowed"));
        }
        if domain.len() > 253 || domain.split('.').count() < 2 {
            return Err(bad(
                "the domain must have at least two labels, like example.com",
            ));
        }
        for label in domain.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-');
            if !ok {
                return Err(bad("the domain has an empty or malformed label"));
            }
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    /// `j***e@example.com`: enough to recognise, not enough to harvest.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        format!("{}@{domain}", mask(local))
    }
}

/// `j***e`: the first and last characters of a name; an address is masked before
/// its `@` only.
pub fn mask(name: &str) -> String {
    if let Ok(email) = EmailAddress::parse("username", name) {
        return email.masked();
    }
    let chars: Vec<char> = name.chars().collect();
    match chars.as_slice() {
        [] => String::new(),
        [one] => format!("{one}***"),
        [first, .., last] => format!("{first}***{last}"),
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expect: Result<&str, &str>) {
        let got = EmailAddress::parse("email", raw);
        match (got, expect) {
            (Ok(addr), Ok(want)) => assert_eq!(addr.as_str(), want, "{raw}"),
            (Err(err), Err(want)) => assert!(err.message.contains(want), "{raw}: {}", err.message),
            (got, want) => panic!("{raw}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_what_people_type() {
        check("jane@example.com", Ok("jane@example.com"));
        check(
            "  Jane.Doe+tag@Example.COM ",
            Ok("Jane.Doe+tag@example.com"),
        );
        check("ana@sub.exämple.de", Ok("ana@sub.exämple.de"));
        check("", Err("required"));
        check("jane.example.com", Err("no @"));
        check("jane@localhost", Err("two labels"));
        check("jane@@example.com", Err("not allowed"));
        check("ja ne@example.com", Err("not allowed"));
        check("jane@exa_mple.com", Err("malformed label"));
        check(".jane@example.com", Err("not allowed"));
    }

    #[test]
    fn masks_the_local_part() {
        let m = |s| EmailAddress::parse("e", s).unwrap().masked();
        assert_eq!(m("jane@example.com"), "j***e@example.com");
        assert_eq!(m("j@example.com"), "j***@example.com");
    }
}
