//! A relay in front of a real IMAP server that takes away what RFC 3501 lets a server
//! leave out: capabilities (UIDPLUS, LITERAL+, MULTIAPPEND, SPECIAL-USE, CONDSTORE,
//! NAMESPACE…), the `OK [UIDNEXT n]` of SELECT, SPECIAL-USE attributes in LIST; and, to
//! prove that a pass checks itself, the FETCH answers of chosen messages. Every other
//! byte comes from and goes to the real server, so what Ferry sees is a real server
//! that offers less.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the relay takes away from the server's answers.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Capability names removed from every CAPABILITY list (a name also removes its
    /// `NAME=value` forms).
    pub capabilities: Vec<&'static str>,
    /// Drop `* OK [UIDNEXT n]` (SELECT and EXAMINE answers).
    pub uidnext: bool,
    /// Remove the special-use attributes from LIST and LSUB answers.
    pub special_use_attributes: bool,
    /// Drop the FETCH answers for these UIDs when they carry message headers (the
    /// copy loop's metadata), as a server with a broken index might.
    pub hide_uids: Vec<u32>,
}

pub struct Strip {
    pub port: u16,
    rules: Arc<Mutex<Arc<Rules>>>,
    /// Answers dropped or changed so far (a test checks that its rule did something).
    changed: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Strip {
    pub async fn start(target: u16, rules: Rules) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let rules = Arc::new(Mutex::new(Arc::new(rules)));
        let current = rules.clone();
        let changed = Arc::new(Mutex::new(0));
        let counter = changed.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // A connection keeps the rules in force when it was opened.
                let rules = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let target = SocketAddr::from(([127, 0, 0, 1], target));
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, rules, counter).await;
                    }
                });
            }
        });
        Ok(Self {
            port,
            rules,
            changed,
            task,
        })
    }

    /// New rules for the connections opened from now on.
    pub fn set(&self, rules: Rules) {
        *self.rules.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    pub fn changed(&self) -> usize {
        *self.changed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Strip {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    rules: Arc<Rules>,
    changed: Arc<Mutex<usize>>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
    };
    let down = async move {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            while let Some(end) = response_end(&buf) {
                let unit: Vec<u8> = buf.drain(..end).collect();
                match rewrite(&unit, &rules) {
                    Some(out) => {
                        if out != unit {
                            *changed.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                        }
                        if cw.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                    None => *changed.lock().unwrap_or_else(|e| e.into_inner()) += 1,
                }
            }
            match sr.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Where the first whole response in `buf` ends: its lines, with the literals they
/// announce (`{n}` at a line's end), up to a line that announces none.
fn response_end(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let line_end = pos + buf[pos..].windows(2).position(|w| w == b"\r\n")? + 2;
        let line = &buf[pos..line_end - 2];
        match literal_len(line) {
            Some(n) => {
                pos = line_end + n;
                if pos > buf.len() {
                    return None;
                }
            }
            None => return Some(line_end),
        }
    }
}

/// `n` when a line ends with `{n}` (or `{n+}`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|b| *b == b'{')?;
    let digits = std::str::from_utf8(&line[open + 1..]).ok()?;
    digits.trim_end_matches('+').parse().ok()
}

/// The response as the client gets it, or `None` to drop it.
fn rewrite(unit: &[u8], rules: &Rules) -> Option<Vec<u8>> {
    let head_end = unit
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(unit.len());
    let head = String::from_utf8_lossy(&unit[..head_end]).into_owned();
    let upper = head.to_ascii_uppercase();
    if rules.uidnext && upper.starts_with("* OK [UIDNEXT ") {
        return None;
    }
    if !rules.hide_uids.is_empty()
        && upper.starts_with("* ")
        && upper.contains(" FETCH (")
        && upper.contains("BODY[HEADER.FIELDS")
        && let Some(uid) = fetch_uid(&upper)
        && rules.hide_uids.contains(&uid)
    {
        return None;
    }
    if !rules.capabilities.is_empty() && upper.contains("CAPABILITY ") {
        let removed: HashSet<String> = rules
            .capabilities
            .iter()
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let words: Vec<&str> = head
            .split(' ')
            .filter(|w| {
                let name = w.trim_end_matches(']').to_ascii_uppercase();
                let base = name.split('=').next().unwrap_or_default().to_owned();
                !removed.contains(&name) && !removed.contains(&base)
            })
            .collect();
        let mut line = words.join(" ");
        if head.ends_with(']') && !line.ends_with(']') {
            line.push(']');
        }
        let mut out = line.into_bytes();
        out.extend_from_slice(&unit[head_end..]);
        return Some(out);
    }
    if rules.special_use_attributes
        && (upper.starts_with("* LIST ") || upper.starts_with("* LSUB "))
    {
        let mut line = head.clone();
        for attr in [
            "\\Sent",
            "\\Drafts",
            "\\Trash",
            "\\Junk",
            "\\Archive",
            "\\All",
            "\\Flagged",
        ] {
            line = line
                .replace(&format!(" {attr}"), "")
                .replace(&format!("{attr} "), "")
                .replace(attr, "");
        }
        let mut out = line.into_bytes();
        out.extend_from_slice(&unit[head_end..]);
        return Some(out);
    }
    Some(unit.to_vec())
}

/// The UID of a FETCH answer's first line.
fn fetch_uid(upper: &str) -> Option<u32> {
    let at = upper.find("UID ")?;
    upper[at + 4..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
