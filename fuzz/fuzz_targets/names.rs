//! What people type as host names, MX domains and folder maps: no panic, and a name
//! that is accepted carries nothing that could break a line of an email or a command.
#![no_main]

use ferry::domain::{FolderMap, domain_name, host_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for name in [host_name(&text), domain_name(&text)].into_iter().flatten() {
        assert!(
            !name.contains(['\r', '\n', '<', '>', ' ', '@', '/', '"']),
            "{name:?}"
        );
        assert!(name.len() <= 253 || name.parse::<std::net::IpAddr>().is_ok());
    }
    let _ = FolderMap::parse(&text);
});
