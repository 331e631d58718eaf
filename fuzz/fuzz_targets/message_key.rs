//! A message's key from the header fields a server returned: no panic on any bytes, and
//! the same key for the same input.
#![no_main]

use ferry::domain::message_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let key = message_key(data, size);
    assert!(!key.is_empty());
    assert_eq!(key, message_key(data, size));
});
