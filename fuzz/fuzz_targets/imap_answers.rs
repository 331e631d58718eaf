//! The IMAP answers Ferry reads itself (NAMESPACE, the end of a raw answer) and the UID
//! sets it writes: no panic on any bytes, and UID sets that stay under the length cap
//! and name exactly the UIDs given.
#![no_main]

use ferry::connectors::imap::proto::{MAX_UID_SET, parse_namespace, tagged_end, uid_sets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(end) = tagged_end(data, "A0001 ") {
        assert!(end <= data.len());
    }
    let text = String::from_utf8_lossy(data);
    for line in text.split("\r\n") {
        if let Some(ns) = parse_namespace(line) {
            // A parsed namespace can name folders both ways without panicking.
            let raw = ns.encode(&["Archive".to_owned(), "2024".to_owned()]);
            let _ = ns.decode(&raw);
        }
    }
    let mut uids: Vec<u32> = data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .filter(|u| *u > 0)
        .collect();
    let sets = uid_sets(&uids);
    let mut named = Vec::new();
    for set in &sets {
        assert!(set.len() <= MAX_UID_SET || !set.contains(','), "{set}");
        for part in set.split(',') {
            match part.split_once(':') {
                Some((a, b)) => {
                    let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                    named.extend(a..=b);
                }
                None => named.push(part.parse().unwrap()),
            }
        }
    }
    uids.sort_unstable();
    uids.dedup();
    named.sort_unstable();
    assert_eq!(named, uids);
});
