//! CardDAV and CalDAV through libdav: discovery from a URL or just a host (RFC 6764's
//! `.well-known`, then `current-user-principal`, then the home set), the collections
//! of a home with their item counts. The HTTP connections go through [`Reach`], so a
//! DAV server is held to the same rules as an IMAP server (public addresses only,
//! deadlines, the work's pulse).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use libdav::caldav::{CreateCalendar, GetCalendarResources};
use libdav::carddav::{CreateAddressBook, GetAddressBookResources};
use libdav::dav::{
    FindCollections, FindCurrentUserPrincipalError, FindPropertyHrefs, ListResources, PutResource,
    PutResourceResponse, RequestError, ResolveContextPathError, WebDavClient, WebDavError,
};
use libdav::names;
use libdav::sd::DiscoverableService;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tower_http::auth::AddAuthorization;

use super::imap::{ConnectError, connect_step};
use super::net::{self, Reach, ReachError};
use crate::domain::DavEndpoint;

/// The HTTP client every DAV request goes through: Basic authentication over TLS (or
/// plain HTTP when the URL says so) on connections made by [`Reach`].
type Http = AddAuthorization<Client<HttpsConnector<ReachConnector>, String>>;

/// What a DAV account's collections hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    AddressBooks,
    Calendars,
}

impl Holds {
    /// For people: "an address book", "a calendar".
    pub fn one(self) -> &'static str {
        match self {
            Self::AddressBooks => "an address book",
            Self::Calendars => "a calendar",
        }
    }

    fn resource_type(self) -> &'static libdav::PropertyName<'static, 'static> {
        match self {
            Self::AddressBooks => &names::ADDRESSBOOK,
            Self::Calendars => &names::CALENDAR,
        }
    }

    fn home_set(self) -> &'static libdav::PropertyName<'static, 'static> {
        match self {
            Self::AddressBooks => &names::ADDRESSBOOK_HOME_SET,
            Self::Calendars => &names::CALENDAR_HOME_SET,
        }
    }

    fn service(self, https: bool) -> DiscoverableService {
        match (self, https) {
            (Self::AddressBooks, true) => DiscoverableService::CardDavs,
            (Self::AddressBooks, false) => DiscoverableService::CardDav,
            (Self::Calendars, true) => DiscoverableService::CalDavs,
            (Self::Calendars, false) => DiscoverableService::CalDav,
        }
    }
}

/// An address book or a calendar as its server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Its path on the server (percent-encoded, as the server spells it).
    pub href: String,
    /// `DAV:displayname`, when it has one.
    pub name: Option<String>,
    /// How many items (cards, events, tasks) it holds.
    pub items: u64,
}

impl Collection {
    /// The name people see: the display name, else the last segment of its path.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.href
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
    }
}

/// An item of a collection as its server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    pub href: String,
    pub etag: Option<String>,
}

/// An item's data and ETag, or why the server did not give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub href: String,
    pub content: Result<(String, String), String>,
}

/// Why a PUT did not store an item.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// `If-None-Match: *` failed: an item is there already.
    #[error("an item is there already")]
    Exists,
    /// The server refused this item (too large, not valid): it fails alone.
    #[error("{0}")]
    Refused(String),
    /// The connection failed: the run stops and resumes from its checkpoint.
    #[error("{0}")]
    Connection(ConnectError),
}

/// A logged-in DAV account: where its collections live.
pub struct DavConnection {
    client: WebDavClient<Http>,
    holds: Holds,
    label: String,
    /// The paths of the home sets (where collections are listed and created).
    pub home_sets: Vec<String>,
}

/// Connects to `endpoint` and finds its home set: from the URL given, else (a bare
/// host) from `.well-known/carddav` or `/caldav`, then the principal.
pub async fn connect(
    endpoint: &DavEndpoint,
    holds: Holds,
    reach: &Reach,
) -> Result<DavConnection, ConnectError> {
    let base = base_url(&endpoint.url)
        .map_err(|why| ConnectError::Protocol(endpoint.url.clone(), format!("not a URL: {why}")))?;
    let host = base.host().unwrap_or_default().to_owned();
    let https = base.scheme_str() != Some("http");
    let port = base.port_u16().unwrap_or(if https { 443 } else { 80 });
    let label = format!("{host}:{port}");
    let client = http_client(endpoint, reach)
        .map_err(|err| ConnectError::Tls(label.clone(), err.to_string()))?;
    let mut webdav = WebDavClient::new(base.clone(), client);
    let mut principal = find_principal(&webdav, reach, &label).await?;
    // A bare host whose root names no account: the well-known URL says where the
    // service lives (RFC 6764), and the account is looked for there.
    if principal.is_none() && base.path() == "/" {
        let found = connect_step(reach, &label, "find the service", async {
            webdav
                .find_context_path(holds.service(https), &host, port)
                .await
                .map_err(|err| match err {
                    ResolveContextPathError::BadStatusCode(status) => {
                        status_error(label.clone(), status)
                    }
                    ResolveContextPathError::Request(RequestError::Client(err)) => {
                        client_error(label.clone(), &err)
                    }
                    other => ConnectError::Protocol(label.clone(), other.to_string()),
                })
        })
        .await?;
        if let Some(context) = found {
            let client = http_client(endpoint, reach)
                .map_err(|err| ConnectError::Tls(label.clone(), err.to_string()))?;
            webdav = WebDavClient::new(context, client);
            principal = find_principal(&webdav, reach, &label).await?;
        }
    }
    let start = principal.map_or_else(
        || webdav.base_url().path().to_owned(),
        |p| p.path().to_owned(),
    );
    let homes = connect_step(reach, &label, "find the home set", async {
        webdav
            .request(FindPropertyHrefs::new(&start, holds.home_set()))
            .await
            .map_err(|err| webdav_error(&label, err))
    })
    .await;
    let home_sets = match homes {
        Ok(found) if !found.hrefs.is_empty() => {
            found.hrefs.iter().map(|h| h.path().to_owned()).collect()
        }
        // No home-set property: the collections are under the URL itself.
        Ok(_) | Err(ConnectError::Protocol(..)) => vec![start],
        Err(err) => return Err(err),
    };
    Ok(DavConnection {
        client: webdav,
        holds,
        label,
        home_sets,
    })
}

impl DavConnection {
    /// The address books (or calendars) of every home set, with their item counts.
    pub async fn collections(&self, reach: &Reach) -> Result<Vec<Collection>, ConnectError> {
        let mut all = Vec::new();
        for (href, name) in self.found_collections(reach).await? {
            let items = self.count(&href, reach).await?;
            all.push(Collection { href, name, items });
        }
        Ok(all)
    }

    /// The address books (or calendars) of every home set, href and display name, in
    /// href order; nothing counted (a runner lists each one's items anyway).
    pub async fn found_collections(
        &self,
        reach: &Reach,
    ) -> Result<Vec<(String, Option<String>)>, ConnectError> {
        let mut all = Vec::new();
        for home in &self.home_sets {
            let found = connect_step(reach, &self.label, "list the collections", async {
                self.client
                    .request(
                        FindCollections::new(home)
                            .with_collection_type(self.holds.resource_type())
                            .with_additional_properties(&[&names::DISPLAY_NAME]),
                    )
                    .await
                    .map_err(|err| webdav_error(&self.label, err))
            })
            .await?;
            all.extend(found.collections.into_iter().map(|collection| {
                let name = collection
                    .properties
                    .iter()
                    .find(|(p, _)| **p == names::DISPLAY_NAME)
                    .and_then(|(_, v)| v.clone())
                    .filter(|n| !n.trim().is_empty());
                (collection.href, name)
            }));
        }
        all.sort();
        Ok(all)
    }

    /// Where new collections are made: the first home set.
    pub fn home(&self) -> &str {
        self.home_sets.first().map_or("/", String::as_str)
    }

    /// Makes an address book (or a calendar) named `display_name` at `<home><slug>/`;
    /// answers its href. One that is there already is used as it is, if it holds the
    /// same kind of items.
    pub async fn create_collection(
        &self,
        slug: &str,
        display_name: &str,
        reach: &Reach,
    ) -> Result<String, ConnectError> {
        let href = format!("{}{slug}/", self.home());
        let made = connect_step(reach, &self.label, "make a collection", async {
            let made = match self.holds {
                Holds::AddressBooks => self
                    .client
                    .request(CreateAddressBook::new(&href).with_display_name(display_name))
                    .await
                    .map(|_| ()),
                Holds::Calendars => self
                    .client
                    .request(CreateCalendar::new(&href).with_display_name(display_name))
                    .await
                    .map(|_| ()),
            };
            match made {
                Ok(()) => Ok(true),
                // 405: MKCOL where something exists.
                Err(WebDavError::BadStatusCode(http::StatusCode::METHOD_NOT_ALLOWED)) => Ok(false),
                Err(err) => Err(webdav_error(&self.label, err)),
            }
        })
        .await?;
        // What is there is used only when it holds what this connection copies (an
        // address book is no place for events).
        if !made {
            let same_kind = self
                .found_collections(reach)
                .await?
                .iter()
                .any(|(found, _)| found.trim_end_matches('/') == href.trim_end_matches('/'));
            if !same_kind {
                return Err(ConnectError::Protocol(
                    self.label.clone(),
                    format!("{href} exists and is not {}", self.holds.one()),
                ));
            }
        }
        Ok(href)
    }

    /// The items of the collection at `href`, with their ETags, in href order.
    pub async fn items(&self, href: &str, reach: &Reach) -> Result<Vec<ItemRef>, ConnectError> {
        let listed = connect_step(reach, &self.label, "list a collection's items", async {
            self.client
                .request(ListResources::new(href))
                .await
                .map_err(|err| webdav_error(&self.label, err))
        })
        .await?;
        let mut items: Vec<ItemRef> = listed
            .resources
            .into_iter()
            .filter(|r| {
                !r.resource_type.is_collection
                    && r.href.trim_end_matches('/') != href.trim_end_matches('/')
            })
            .map(|r| ItemRef {
                href: r.href,
                etag: r.etag,
            })
            .collect();
        items.sort_by(|a, b| a.href.cmp(&b.href));
        Ok(items)
    }

    /// The contents of `hrefs` in the collection at `collection` (one multiget): each
    /// item's data and ETag, or the status the server gave for it.
    ///
    /// One item the server answers in XML no parser reads (a control character it
    /// stored) spoils the whole answer: then each item is asked for alone, and that
    /// one fails alone with the reason.
    pub async fn fetch(
        &self,
        collection: &str,
        hrefs: &[String],
        reach: &Reach,
    ) -> Result<Vec<Fetched>, ConnectError> {
        match self.multiget(collection, hrefs, reach).await {
            Err(ConnectError::Protocol(..)) if hrefs.len() > 1 => {
                let mut all = Vec::with_capacity(hrefs.len());
                for href in hrefs {
                    match self
                        .multiget(collection, std::slice::from_ref(href), reach)
                        .await
                    {
                        Ok(mut one) => all.append(&mut one),
                        Err(ConnectError::Protocol(_, why)) => all.push(Fetched {
                            href: href.clone(),
                            content: Err(format!("the server's answer cannot be read: {why}")),
                        }),
                        Err(other) => return Err(other),
                    }
                }
                Ok(all)
            }
            other => other,
        }
    }

    async fn multiget(
        &self,
        collection: &str,
        hrefs: &[String],
        reach: &Reach,
    ) -> Result<Vec<Fetched>, ConnectError> {
        let fetched = connect_step(reach, &self.label, "fetch items", async {
            match self.holds {
                Holds::AddressBooks => self
                    .client
                    .request(GetAddressBookResources::new(collection).with_hrefs(hrefs))
                    .await
                    .map(|r| r.resources),
                Holds::Calendars => self
                    .client
                    .request(GetCalendarResources::new(collection).with_hrefs(hrefs))
                    .await
                    .map(|r| r.resources),
            }
            .map_err(|err| webdav_error(&self.label, err))
        })
        .await?;
        Ok(fetched
            .into_iter()
            .map(|r| Fetched {
                href: r.href,
                content: r
                    .content
                    .map(|c| (c.data, c.etag))
                    .map_err(|status| format!("the server answered {status}")),
            })
            .collect())
    }

    /// Writes a new item at `href` (`If-None-Match: *`): its ETag when the server
    /// gives one, [`PutError::Exists`] when an item is there already.
    pub async fn put_new(
        &self,
        href: &str,
        data: &str,
        reach: &Reach,
    ) -> Result<Option<String>, PutError> {
        self.put_once_more(href, data, None, reach).await
    }

    /// Replaces the item at `href` if its ETag is still `etag`.
    pub async fn put_over(
        &self,
        href: &str,
        data: &str,
        etag: &str,
        reach: &Reach,
    ) -> Result<Option<String>, PutError> {
        self.put_once_more(href, data, Some(etag), reach).await
    }

    /// A PUT whose connection broke is sent once more, on a fresh connection (a pooled
    /// one the server had closed breaks so). Broken again while the server answers a
    /// listing of the item's collection, the item is what the server will not take: a
    /// server that refuses a large body may close the connection before its answer
    /// reaches the client (Radicale does, over its `max_content_length`). The
    /// conditional PUT keeps the second try from writing twice.
    async fn put_once_more(
        &self,
        href: &str,
        data: &str,
        etag: Option<&str>,
        reach: &Reach,
    ) -> Result<Option<String>, PutError> {
        use futures::future::Either;
        let attempt =
            || match etag {
                None => Either::Left(
                    self.put(
                        self.client
                            .request(PutResource::new(href).create(data, self.content_type())),
                        reach,
                    ),
                ),
                Some(etag) => Either::Right(self.put(
                    self.client.request(PutResource::new(href).update(
                        data,
                        self.content_type(),
                        etag,
                    )),
                    reach,
                )),
            };
        let first = attempt().await;
        if let Err(PutError::Connection(_)) = first {
            return match attempt().await {
                Err(PutError::Connection(err)) => {
                    let collection = href.rsplit_once('/').map_or(href, |(dir, _)| dir);
                    match self.items(&format!("{collection}/"), reach).await {
                        Ok(_) => Err(PutError::Refused(format!(
                            "the server closed the connection twice while receiving it ({} KB) and answers other requests: it is likely over the server's size limit; make it smaller (a smaller photo or attachment) and send it again",
                            data.len() / 1024
                        ))),
                        Err(_) => Err(PutError::Connection(err)),
                    }
                }
                other => other,
            };
        }
        first
    }

    async fn put(
        &self,
        request: impl Future<Output = Result<PutResourceResponse, WebDavError<HttpError>>>,
        reach: &Reach,
    ) -> Result<Option<String>, PutError> {
        let answer = match tokio::time::timeout(reach.io_timeout, request).await {
            Ok(answer) => answer,
            Err(_) => {
                return Err(PutError::Connection(ConnectError::Timeout(
                    self.label.clone(),
                    format!("to a PUT within {:?}", reach.io_timeout),
                )));
            }
        };
        reach.alive_for(reach.io_timeout);
        match answer {
            Ok(put) => Ok(put.etag),
            Err(WebDavError::BadStatusCode(http::StatusCode::PRECONDITION_FAILED)) => {
                Err(PutError::Exists)
            }
            // The server read the item and refused it: that item fails, the run goes on.
            Err(WebDavError::BadStatusCode(http::StatusCode::PAYLOAD_TOO_LARGE)) => {
                Err(PutError::Refused(
                    "the server refused it as too large (413); make it smaller (a smaller photo or attachment) and send it again".into(),
                ))
            }
            Err(WebDavError::BadStatusCode(status)) if status.is_client_error() => Err(
                PutError::Refused(format!("the server refused it: {status}")),
            ),
            Err(WebDavError::PreconditionFailed(p)) => {
                Err(PutError::Refused(format!("the server refused it: {p:?}")))
            }
            Err(err) => Err(PutError::Connection(webdav_error(&self.label, err))),
        }
    }

    /// Deletes the item at `href` if its ETag is still `etag`: false when it changed
    /// (or is gone) since, and stays.
    pub async fn delete(
        &self,
        href: &str,
        etag: &str,
        reach: &Reach,
    ) -> Result<bool, ConnectError> {
        connect_step(reach, &self.label, "delete an item", async {
            match self
                .client
                .request(libdav::dav::Delete::new(href).with_etag(etag))
                .await
            {
                Ok(_) => Ok(true),
                Err(WebDavError::BadStatusCode(
                    http::StatusCode::PRECONDITION_FAILED | http::StatusCode::NOT_FOUND,
                )) => Ok(false),
                Err(err) => Err(webdav_error(&self.label, err)),
            }
        })
        .await
    }

    fn content_type(&self) -> &'static str {
        match self.holds {
            Holds::AddressBooks => "text/vcard; charset=utf-8",
            Holds::Calendars => "text/calendar; charset=utf-8",
        }
    }

    /// How many items the collection at `href` holds.
    async fn count(&self, href: &str, reach: &Reach) -> Result<u64, ConnectError> {
        Ok(self.items(href, reach).await?.len() as u64)
    }
}

/// The `current-user-principal` of the account, looked for at the client's base URL
/// and then at the server's root.
async fn find_principal(
    webdav: &WebDavClient<Http>,
    reach: &Reach,
    label: &str,
) -> Result<Option<Uri>, ConnectError> {
    connect_step(reach, label, "find the account", async {
        webdav
            .find_current_user_principal()
            .await
            .map_err(|err| match err {
                FindCurrentUserPrincipalError::RequestError(err) => webdav_error(label, err),
                other => ConnectError::Protocol(label.to_owned(), other.to_string()),
            })
    })
    .await
}

/// The file name an item with `uid` is written under: the UID where it is plain
/// (letters, digits, `-_.@`), else a readable part and the UID's SHA-256, so two UIDs
/// never share a name; `.vcf` or `.ics`.
pub fn item_name(uid: &str, holds: Holds) -> String {
    use sha2::{Digest, Sha256};
    let ext = match holds {
        Holds::AddressBooks => "vcf",
        Holds::Calendars => "ics",
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.@".contains(c);
    if !uid.is_empty() && uid.len() <= 100 && uid.chars().all(plain) && !uid.starts_with('.') {
        return format!("{uid}.{ext}");
    }
    let readable: String = uid.chars().filter(|c| plain(*c)).take(40).collect();
    let digest = hex::encode(&Sha256::digest(uid.as_bytes())[..12]);
    format!(
        "{}{digest}.{ext}",
        if readable.is_empty() {
            String::new()
        } else {
            format!("{}-", readable.trim_start_matches('.'))
        }
    )
}

/// `https://host/` for a bare host, the URL itself otherwise (a trailing `/` added to
/// its path, as collections are spelled).
fn base_url(text: &str) -> Result<Uri, String> {
    let text = text.trim();
    let with_scheme = if text.contains("://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!("{text:?} is not an http(s) address"));
    }
    let path = uri.path().to_owned();
    if path.ends_with('/') {
        return Ok(uri);
    }
    let mut parts = uri.into_parts();
    parts.path_and_query = Some(
        format!("{path}/")
            .parse()
            .map_err(|e: http::uri::InvalidUri| e.to_string())?,
    );
    Uri::from_parts(parts).map_err(|e| e.to_string())
}

fn http_client(endpoint: &DavEndpoint, reach: &Reach) -> anyhow::Result<Http> {
    let tls = super::tls::client_config(endpoint.verify_tls)?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(ReachConnector {
            reach: reach.clone(),
        });
    let client = Client::builder(TokioExecutor::new()).build(https);
    Ok(AddAuthorization::basic(
        client,
        &endpoint.username,
        endpoint.password.expose_secret(),
    ))
}

/// The HTTP client's error.
type HttpError = hyper_util::client::legacy::Error;

/// What went wrong, in the words every connector uses: a refused login, an address
/// Ferry does not connect to, a connection that failed, or an answer that is not DAV.
fn webdav_error(label: &str, err: WebDavError<HttpError>) -> ConnectError {
    let label = label.to_owned();
    match err {
        WebDavError::BadStatusCode(status) => status_error(label, status),
        WebDavError::Request(RequestError::Client(err)) => client_error(label, &err),
        other => ConnectError::Protocol(label, other.to_string()),
    }
}

fn status_error(label: String, status: http::StatusCode) -> ConnectError {
    if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
        ConnectError::Auth(label, format!("the server answered {status}"))
    } else {
        ConnectError::Protocol(label, format!("the server answered {status}"))
    }
}

/// A connection that failed: why, from the first cause Ferry knows.
fn client_error(label: String, err: &HttpError) -> ConnectError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(reach) = e.downcast_ref::<ReachError>() {
            return match reach {
                ReachError::Dns(_, why) => ConnectError::Dns(label, why.clone()),
                ReachError::Refused { .. } => ConnectError::Target(label, reach.to_string()),
                ReachError::Timeout(d) => {
                    ConnectError::Timeout(label, format!("to the connection within {d:?}"))
                }
                ReachError::Tcp(why) => ConnectError::Connection(label, why.clone()),
            };
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return ConnectError::Tls(label, tls.to_string());
        }
        source = e.source();
    }
    ConnectError::Connection(label, format!("{err:#}"))
}

/// hyper's connector on [`net::connect`]: every address checked, the deadline and the
/// pulse kept. Hand-written because hyper-util's `HttpConnector` resolves names itself,
/// which would bypass Ferry's address checks.
#[derive(Clone)]
pub struct ReachConnector {
    reach: Reach,
}

impl tower_service::Service<Uri> for ReachConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ReachError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ReachError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ReachError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let reach = self.reach.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| ReachError::Tcp(format!("{uri} has no host")))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let https = uri.scheme_str() != Some("http");
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            net::connect(&host, port, &reach).await.map(TokioIo::new)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Holds, base_url, item_name};

    #[test]
    fn an_item_is_named_by_its_uid_and_two_uids_never_share_a_name() {
        assert_eq!(item_name("ana-30", Holds::AddressBooks), "ana-30.vcf");
        assert_eq!(
            item_name("x@example.com", Holds::Calendars),
            "x@example.com.ics"
        );
        let odd = item_name("{a/b c}", Holds::AddressBooks);
        assert!(odd.starts_with("abc-") && odd.ends_with(".vcf"), "{odd}");
        assert_ne!(odd, item_name("{a/b  c}", Holds::AddressBooks));
        assert!(!item_name("../etc", Holds::Calendars).contains('/'));
        assert!(!item_name("..", Holds::Calendars).starts_with('.'));
    }

    #[test]
    fn a_bare_host_or_a_path_becomes_a_base_url() {
        for (given, want) in [
            ("dav.example.com", "https://dav.example.com/"),
            ("http://127.0.0.1:5232", "http://127.0.0.1:5232/"),
            (
                "https://dav.example.com/remote.php/dav",
                "https://dav.example.com/remote.php/dav/",
            ),
            (
                "https://dav.example.com/jane/",
                "https://dav.example.com/jane/",
            ),
        ] {
            assert_eq!(base_url(given).unwrap().to_string(), want, "{given}");
        }
        assert!(base_url("ftp://dav.example.com/").is_err());
        assert!(base_url("https://").is_err());
    }
}
