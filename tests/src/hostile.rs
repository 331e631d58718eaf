//! Servers that behave as an attacker's would, each on a free loopback port and stopped
//! when dropped:
//!
//! - [`RebindingDns`]: a DNS server whose answer for a name changes after the first
//!   question (a public address first, 127.0.0.1 after), the DNS-rebinding trick that
//!   turns a target check into a way to reach loopback services. Written on
//!   hickory-proto's message types because no packaged DNS server answers differently
//!   from one question to the next.
//! - [`SilentImap`]: greets, accepts any login, then never answers again.
//! - [`Listener`]: a plain TCP port that counts the connections it gets and keeps
//!   whatever they send, to prove nobody reached it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

pub struct RebindingDns {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RebindingDns {
    /// Answers A questions with `first` once, then with `then`; AAAA with no address.
    pub async fn start(first: Ipv4Addr, then: Ipv4Addr) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let task = tokio::spawn(async move {
            let mut asked = 0usize;
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut answer = Message::response(query.metadata.id, query.metadata.op_code);
                answer.metadata.recursion_desired = query.metadata.recursion_desired;
                answer.metadata.recursion_available = true;
                answer.metadata.authoritative = true;
                answer.metadata.response_code = ResponseCode::NoError;
                for q in &query.queries {
                    if q.query_type() == RecordType::A {
                        let ip = if asked == 0 { first } else { then };
                        asked += 1;
                        answer.answers.push(Record::from_rdata(
                            q.name().clone(),
                            0,
                            RData::A(A(ip)),
                        ));
                    }
                }
                answer.queries = query.queries;
                if let Ok(bytes) = answer.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for RebindingDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An IMAP server that greets, says OK to LOGIN, and is silent from then on.
pub struct SilentImap {
    pub port: u16,
    task: JoinHandle<()>,
}

impl SilentImap {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write
                        .write_all(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
                        .await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let mut words = line.split(' ');
                        let (tag, command) = (words.next(), words.next());
                        if let (Some(tag), Some(c)) = (tag, command)
                            && c.eq_ignore_ascii_case("LOGIN")
                        {
                            let _ = write
                                .write_all(format!("{tag} OK logged in\r\n").as_bytes())
                                .await;
                        }
                        // Anything else: no answer, ever.
                    }
                });
            }
        });
        Ok(Self { port, task })
    }
}

impl Drop for SilentImap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP port that records who connected and what they sent.
pub struct Listener {
    pub port: u16,
    received: Arc<Mutex<(usize, Vec<u8>)>>,
    task: JoinHandle<()>,
}

impl Listener {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new((0usize, Vec::new())));
        let seen = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                seen.lock().expect("not poisoned").0 += 1;
                let seen = seen.clone();
                tokio::spawn(async move {
                    // Greet like an IMAP server would, then keep what arrives.
                    let _ = stream.write_all(b"* OK ready\r\n").await;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        seen.lock()
                            .expect("not poisoned")
                            .1
                            .extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        Ok(Self {
            port,
            received,
            task,
        })
    }

    /// Connections accepted so far, and every byte they sent.
    pub fn received(&self) -> (usize, Vec<u8>) {
        self.received.lock().expect("not poisoned").clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
