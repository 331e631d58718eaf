//! CardDAV/CalDAV servers of two dialects, each on a free loopback port in a temporary
//! directory, stopped when dropped: Radicale (htpasswd users, one home per user,
//! extended MKCOL) and Xandikos (one user's home at `/user/`, no authentication of
//! its own; it ignores the Basic credentials a client sends).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::net::{free_port, terminate, wait_for_port};

/// The largest request body the test's Radicale takes (its `max_content_length`), as a
/// provider's server limits an item: a card with a larger photo is refused.
pub const RADICALE_MAX_BODY: usize = 5_000_000;

/// Which server, for tests that run against both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Radicale,
    Xandikos,
}

/// A running DAV server.
pub struct DavServer {
    pub dialect: Dialect,
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl DavServer {
    /// Starts `dialect` with `users` (login, password); Xandikos serves one home
    /// whoever logs in.
    pub fn start(dialect: Dialect, users: &[(&str, &str)]) -> anyhow::Result<Self> {
        // Its helpers talk to it with reqwest.
        crate::init_crypto();
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut command = match dialect {
            Dialect::Radicale => {
                let htpasswd: String = users.iter().map(|(u, p)| format!("{u}:{p}\n")).collect();
                std::fs::write(dir.path().join("users"), htpasswd)?;
                let config = format!(
                    "[server]\nhosts = 127.0.0.1:{port}\nmax_content_length = {RADICALE_MAX_BODY}\n\
                     [auth]\ntype = htpasswd\nhtpasswd_filename = {users}\nhtpasswd_encryption = plain\n\
                     [storage]\nfilesystem_folder = {storage}\n\
                     [rights]\ntype = owner_only\n\
                     [logging]\nlevel = warning\n",
                    users = dir.path().join("users").display(),
                    storage = dir.path().join("collections").display(),
                );
                std::fs::write(dir.path().join("config"), config)?;
                let mut c = Command::new("/usr/bin/radicale");
                c.arg("--config").arg(dir.path().join("config"));
                c
            }
            Dialect::Xandikos => {
                let mut c = Command::new("/usr/bin/xandikos");
                c.arg("-d").arg(dir.path().join("root")).args([
                    "--autocreate",
                    "-l",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ]);
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("failed to start {dialect:?} (scripts/install-test-servers installs it)")
            })?;
        let mut server = Self {
            dialect,
            port,
            dir,
            child,
        };
        if let Err(err) = wait_for_port(port, Duration::from_secs(15)) {
            terminate(&mut server.child);
            anyhow::bail!("{err}; {dialect:?} said: {}", server.log());
        }
        Ok(server)
    }

    /// The server's root, where discovery starts.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The home of `user`: where its address books and calendars live.
    pub fn home(&self, user: &str) -> String {
        match self.dialect {
            Dialect::Radicale => format!("{}{user}/", self.url()),
            Dialect::Xandikos => format!("{}user/", self.url()),
        }
    }

    /// Where `user`'s address books are made.
    pub fn addressbook_home(&self, user: &str) -> String {
        match self.dialect {
            Dialect::Radicale => self.home(user),
            Dialect::Xandikos => format!("{}contacts/", self.home(user)),
        }
    }

    /// Where `user`'s calendars are made.
    pub fn calendar_home(&self, user: &str) -> String {
        match self.dialect {
            Dialect::Radicale => self.home(user),
            Dialect::Xandikos => format!("{}calendars/", self.home(user)),
        }
    }

    /// Asks for `user`'s home once, as a client's first look does: Radicale makes the
    /// home then.
    pub async fn open_home(&self, user: (&str, &str)) -> anyhow::Result<()> {
        reqwest::Client::new()
            .request(reqwest::Method::from_bytes(b"PROPFIND")?, self.home(user.0))
            .basic_auth(user.0, Some(user.1))
            .header("Depth", "0")
            .send()
            .await?;
        Ok(())
    }

    /// Makes an address book (`calendar` false) or a calendar named `name` under the
    /// user's home, with extended MKCOL (RFC 5689), as a DAV client would: the test's
    /// own seeding, apart from Ferry's client.
    pub async fn make_collection(
        &self,
        user: (&str, &str),
        name: &str,
        display_name: &str,
        calendar: bool,
    ) -> anyhow::Result<String> {
        let (home, kind) = if calendar {
            (
                self.calendar_home(user.0),
                "<C:calendar xmlns:C=\"urn:ietf:params:xml:ns:caldav\"/>",
            )
        } else {
            (
                self.addressbook_home(user.0),
                "<C:addressbook xmlns:C=\"urn:ietf:params:xml:ns:carddav\"/>",
            )
        };
        let url = format!("{home}{name}/");
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
             <mkcol xmlns=\"DAV:\"><set><prop><resourcetype><collection/>{kind}</resourcetype>\
             <displayname>{display_name}</displayname></prop></set></mkcol>"
        );
        let answer = reqwest::Client::new()
            .request(reqwest::Method::from_bytes(b"MKCOL")?, &url)
            .basic_auth(user.0, Some(user.1))
            .header("Content-Type", "application/xml")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            answer.status().is_success(),
            "MKCOL {url}: {} {}",
            answer.status(),
            answer.text().await.unwrap_or_default()
        );
        Ok(url)
    }

    /// Puts one item (a vCard or an iCalendar object) into the collection at `url`.
    pub async fn put_item(
        &self,
        user: (&str, &str),
        url: &str,
        name: &str,
        body: &str,
    ) -> anyhow::Result<()> {
        let content_type = if body.contains("BEGIN:VCARD") {
            "text/vcard; charset=utf-8"
        } else {
            "text/calendar; charset=utf-8"
        };
        let answer = reqwest::Client::new()
            .put(format!("{url}{name}"))
            .basic_auth(user.0, Some(user.1))
            .header("Content-Type", content_type)
            .body(body.to_owned())
            .send()
            .await?;
        anyhow::ensure!(
            answer.status().is_success(),
            "PUT {url}{name}: {} {}",
            answer.status(),
            answer.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// Every item of the collection at `url`, as the server gives it: a PROPFIND for
    /// the hrefs, then a GET each, as a plain client would (apart from Ferry's).
    pub async fn read_collection(
        &self,
        user: (&str, &str),
        url: &str,
    ) -> anyhow::Result<Vec<String>> {
        let client = reqwest::Client::new();
        let listing = client
            .request(reqwest::Method::from_bytes(b"PROPFIND")?, url)
            .basic_auth(user.0, Some(user.1))
            .header("Depth", "1")
            .header("Content-Type", "application/xml")
            .body("<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\"><prop><getetag/></prop></propfind>")
            .send()
            .await?;
        anyhow::ensure!(
            listing.status().as_u16() == 207,
            "PROPFIND {url}: {}",
            listing.status()
        );
        let xml = listing.text().await?;
        let path = reqwest::Url::parse(url)?.path().to_owned();
        let mut items = Vec::new();
        for href in hrefs(&xml) {
            if href.trim_end_matches('/') == path.trim_end_matches('/') || href.ends_with('/') {
                continue;
            }
            let answer = client
                .get(format!("{}{}", self.url().trim_end_matches('/'), href))
                .basic_auth(user.0, Some(user.1))
                .send()
                .await?;
            anyhow::ensure!(
                answer.status().is_success(),
                "GET {href}: {}",
                answer.status()
            );
            items.push(answer.text().await?);
        }
        Ok(items)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Where the server keeps its files.
    pub fn storage(&self) -> PathBuf {
        match self.dialect {
            Dialect::Radicale => self.dir.path().join("collections"),
            Dialect::Xandikos => self.dir.path().join("root"),
        }
    }
}

impl Drop for DavServer {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// The `href` values of a multistatus answer, whatever the namespace prefix.
fn hrefs(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("href>") {
        let after = &rest[start + 5..];
        let Some(end) = after.find('<') else { break };
        let value = after[..end].trim();
        if !value.is_empty() {
            out.push(value.to_owned());
        }
        rest = &after[end..];
    }
    out
}
