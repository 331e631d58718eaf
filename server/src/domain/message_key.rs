//! The key that says two messages are the same: the Message-ID when there is one, else
//! a hash of the identifying header fields and the size. Both sides compute it from the
//! same `BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT)]` and `RFC822.SIZE`.

use sha2::{Digest, Sha256};

/// The header fields a key is made from, as the FETCH item names them.
pub const KEY_FIELDS: &str = "MESSAGE-ID DATE FROM SUBJECT";

pub fn message_key(header_fields: &[u8], size: u32) -> String {
    let parsed = mail_parser::MessageParser::new().parse_headers(header_fields);
    if let Some(id) = parsed.as_ref().and_then(|m| m.message_id()) {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        if !id.is_empty() {
            return format!("mid:{id}");
        }
    }
    // Unfold and trim so that servers that re-fold long lines agree.
    let text = String::from_utf8_lossy(header_fields);
    let mut normalized: Vec<String> = Vec::new();
    for line in text.split("\r\n").flat_map(|l| l.split('\n')) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = normalized.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else if !line.trim().is_empty() {
            normalized.push(line.trim().to_ascii_lowercase());
        }
    }
    normalized.sort();
    let mut hasher = Sha256::new();
    hasher.update(normalized.join("\n").as_bytes());
    hasher.update(size.to_be_bytes());
    format!("sha:{}", hex::encode(&hasher.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::message_key;

    #[test]
    fn keys_by_message_id_else_by_header_hash_and_size() {
        assert_eq!(
            message_key(b"Message-ID: <a@b.c>\r\nSubject: x\r\n\r\n", 10),
            "mid:a@b.c"
        );
        assert_eq!(
            message_key(b"message-id:   <a@b.c> \r\n\r\n", 99),
            "mid:a@b.c"
        );
        let a = message_key(b"Subject: hello\r\nFrom: x@y.z\r\n\r\n", 100);
        let folded = message_key(b"From: x@y.z\r\nSubject:\r\n hello\r\n\r\n", 100);
        assert!(a.starts_with("sha:"));
        assert_eq!(a, message_key(b"subject: hello\r\nfrom: x@y.z\r\n", 100));
        assert_ne!(
            a,
            message_key(b"Subject: hello\r\nFrom: x@y.z\r\n\r\n", 101)
        );
        assert_eq!(a, folded, "a value folded by another server keys the same");
    }
}
