//! The process's log: a filter from `log.filter` (or `RUST_LOG`), text or JSON lines on
//! stderr, and a guard no filter can open. The protocol traces of async-imap (every
//! line sent, `LOGIN "user" "password"` included) and lettre (`AUTH PLAIN` and whole
//! messages) are dropped below INFO whatever the filter says: a customer's password
//! must not reach the log even at TRACE.

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Crates whose DEBUG and TRACE events carry protocol text with credentials.
const PROTOCOL_TRACERS: &[&str] = &["async_imap", "imap_proto", "lettre"];

/// Whether the event may be written: not a protocol trace below INFO.
pub fn may_log(meta: &Metadata<'_>) -> bool {
    if *meta.level() <= Level::INFO {
        return true;
    }
    let target = meta.target();
    !PROTOCOL_TRACERS.iter().any(|t| {
        target == *t
            || target
                .strip_prefix(t)
                .is_some_and(|rest| rest.starts_with("::"))
    })
}

/// Installs the process's subscriber (and the bridge from the `log` crate).
pub fn init(filter: EnvFilter, json: bool) -> anyhow::Result<()> {
    // Colours only on a terminal: a log file or a journal gets plain text that grep
    // finds (`migration=7`), not escape codes between a field and its value.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(fmt.json().with_filter(filter_fn(may_log)))
            .try_init()?;
    } else {
        registry
            .with(fmt.with_filter(filter_fn(may_log)))
            .try_init()?;
    }
    Ok(())
}
