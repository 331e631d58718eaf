//! Opening a session: the TCP connection through `net`, TLS (implicit or STARTTLS),
//! the greeting, the login (LOGIN, or SASL PLAIN with an authorization identity for
//! admin/master users), and the capabilities read once after it.

use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::errors::{ConnectError, OpError, connect_step};
use super::proto::server_words;
use super::{Capabilities, ImapConnection, ImapStream, Session, tls};
use crate::connectors::net::{self, Reach};
use crate::domain::{ImapEndpoint, Security};

struct PlainAuth {
    response: Vec<u8>,
}

impl async_imap::Authenticator for PlainAuth {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        std::mem::take(&mut self.response)
    }
}

impl ImapConnection {
    /// Connects through [`net::connect`] (the name resolved once, every address
    /// checked against `reach`), logs in and reads the capabilities; every step has
    /// `reach`'s deadline.
    pub async fn connect(endpoint: &ImapEndpoint, reach: &Reach) -> Result<Self, ConnectError> {
        let label = format!("{}:{}", endpoint.host, endpoint.port);
        let client = Self::greeted(endpoint, reach, &label).await?;
        tracing::trace!(server = %label, user = %endpoint.username, "Greeted; logging in");
        let mut session = Self::login(client, endpoint, reach, &label).await?;
        let caps = Self::capabilities(&mut session, reach, &label).await?;
        let mut conn = Self {
            session,
            caps,
            namespace: None,
            label,
            deadline: reach.io_timeout,
            pulse: reach.pulse.clone(),
        };
        reach.alive_for(reach.io_timeout);
        if conn.caps.namespace {
            conn.namespace = match conn.ask_namespace().await {
                Ok(ns) => ns,
                Err(OpError::Connection(why)) if why.starts_with("no answer") => {
                    return Err(ConnectError::Timeout(
                        conn.label.clone(),
                        format!("to NAMESPACE: {why}"),
                    ));
                }
                Err(e) => return Err(ConnectError::Protocol(conn.label.clone(), e.to_string())),
            };
        }
        Ok(conn)
    }

    /// The connection secured as the endpoint says, past the server's greeting.
    async fn greeted(
        endpoint: &ImapEndpoint,
        reach: &Reach,
        label: &str,
    ) -> Result<async_imap::Client<Box<dyn ImapStream>>, ConnectError> {
        let tcp = net::connect(&endpoint.host, endpoint.port, reach)
            .await
            .map_err(|e| ConnectError::reach(label, e))?;
        let handshake = "the TLS handshake";
        let stream: Box<dyn ImapStream> = match endpoint.security {
            Security::None => Box::new(tcp),
            Security::Ssl => Box::new(
                connect_step(reach, label, handshake, Self::tls(endpoint, tcp, label)).await?,
            ),
            Security::Starttls => {
                let mut client = async_imap::Client::new(tcp);
                connect_step(reach, label, "greet", Self::greeting(&mut client, label)).await?;
                connect_step(reach, label, "STARTTLS", async {
                    client
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .map_err(|e| {
                            ConnectError::Tls(label.to_owned(), format!("STARTTLS refused: {e}"))
                        })
                })
                .await?;
                let tls = Self::tls(endpoint, client.into_inner(), label);
                let client = connect_step(reach, label, handshake, tls).await?;
                // The greeting came before STARTTLS.
                return Ok(async_imap::Client::new(Box::new(client)));
            }
        };
        let mut client = async_imap::Client::new(stream);
        connect_step(reach, label, "greet", Self::greeting(&mut client, label)).await?;
        Ok(client)
    }

    /// LOGIN, or SASL PLAIN on the mailbox's behalf when an admin user is given.
    async fn login(
        client: async_imap::Client<Box<dyn ImapStream>>,
        endpoint: &ImapEndpoint,
        reach: &Reach,
        label: &str,
    ) -> Result<Session, ConnectError> {
        let step = reach.connect_timeout;
        let password = endpoint.password.expose_secret();
        let login = match &endpoint.authuser {
            None => tokio::time::timeout(step, client.login(&endpoint.username, password)).await,
            Some(admin) => {
                let response = format!("{}\0{admin}\0{password}", endpoint.username).into_bytes();
                tokio::time::timeout(step, client.authenticate("PLAIN", PlainAuth { response }))
                    .await
            }
        };
        reach.alive_for(step);
        let label = label.to_owned();
        match login {
            Ok(Ok(session)) => Ok(session),
            Ok(Err((
                async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text),
                _,
            ))) => Err(ConnectError::Auth(label, server_words(&text))),
            Ok(Err((err, _))) => Err(ConnectError::Protocol(label, err.to_string())),
            Err(_) => Err(ConnectError::Timeout(
                label,
                format!("to the login within {step:?}"),
            )),
        }
    }

    /// What the server offers once logged in (pre-login capabilities are often short,
    /// Dovecot's among them, so they are asked again).
    async fn capabilities(
        session: &mut Session,
        reach: &Reach,
        label: &str,
    ) -> Result<Capabilities, ConnectError> {
        let caps = connect_step(reach, label, "CAPABILITY", async {
            session
                .capabilities()
                .await
                .map_err(|e| ConnectError::Protocol(label.to_owned(), e.to_string()))
        })
        .await?;
        let appendlimit = caps.iter().find_map(|c| match c {
            async_imap::types::Capability::Atom(a) => {
                a.strip_prefix("APPENDLIMIT=").and_then(|n| n.parse().ok())
            }
            _ => None,
        });
        Ok(Capabilities {
            uidplus: caps.has_str("UIDPLUS"),
            literal_plus: caps.has_str("LITERAL+"),
            literal_minus: caps.has_str("LITERAL-"),
            multiappend: caps.has_str("MULTIAPPEND"),
            special_use: caps.has_str("SPECIAL-USE"),
            condstore: caps.has_str("CONDSTORE") || caps.has_str("QRESYNC"),
            namespace: caps.has_str("NAMESPACE"),
            idle: caps.has_str("IDLE"),
            r#move: caps.has_str("MOVE"),
            appendlimit,
        })
    }

    async fn tls(
        endpoint: &ImapEndpoint,
        tcp: TcpStream,
        label: &str,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ConnectError> {
        let connector = tls::connector(endpoint.verify_tls)
            .map_err(|e| ConnectError::Tls(label.to_owned(), e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
            .map_err(|e| ConnectError::Tls(label.to_owned(), e.to_string()))?;
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| ConnectError::Tls(label.to_owned(), e.to_string()))
    }

    async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug>(
        client: &mut async_imap::Client<T>,
        label: &str,
    ) -> Result<(), ConnectError> {
        match client.read_response().await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ConnectError::Connection(
                label.to_owned(),
                "closed before the greeting".into(),
            )),
            Err(e) => Err(ConnectError::Connection(label.to_owned(), e.to_string())),
        }
    }
}
