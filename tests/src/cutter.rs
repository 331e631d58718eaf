//! A TCP relay in front of a real server that breaks connections on purpose, or slows
//! them down: the network faults a migration must survive (a dropped link, a server
//! restart, an old provider's slow link). Not a stand-in for the server: every byte
//! comes from and goes to the real one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Relays 127.0.0.1:`port` to the target; the first `cuts` connections that carry
/// more than `after_bytes` (in either direction) are closed abruptly at that point.
pub struct Cutter {
    pub port: u16,
    cut: Arc<AtomicUsize>,
    /// Bytes held back by a lagging relay so far.
    lagged: Arc<AtomicUsize>,
    max_cuts: usize,
    task: tokio::task::JoinHandle<()>,
}

impl Cutter {
    pub async fn start(target: u16, after_bytes: usize, cuts: usize) -> anyhow::Result<Self> {
        Self::start_with(target, after_bytes, cuts, None).await
    }

    /// Relays without cutting, at about `bytes_per_second` from the server.
    pub async fn slow(target: u16, bytes_per_second: u64) -> anyhow::Result<Self> {
        Self::start_with(target, usize::MAX, 0, Some(bytes_per_second)).await
    }

    /// Relays the client's bytes beyond the first `after_bytes` of each connection to
    /// the server `lag` late, and delivers them even when the client has died
    /// meanwhile: a command the client sent whole before it was killed reaches the
    /// server, and is carried out, seconds after (a long link, or a server slow to
    /// commit).
    pub async fn lagging(target: u16, after_bytes: usize, lag: Duration) -> anyhow::Result<Self> {
        let lagged = Arc::new(AtomicUsize::new(0));
        let held = lagged.clone();
        let (port, task) = listen(target, move |client, server| {
            lagging_relay(client, server, after_bytes, lag, held.clone())
        })
        .await?;
        Ok(Self {
            port,
            cut: Arc::new(AtomicUsize::new(0)),
            lagged,
            max_cuts: 0,
            task,
        })
    }

    async fn start_with(
        target: u16,
        after_bytes: usize,
        cuts: usize,
        rate: Option<u64>,
    ) -> anyhow::Result<Self> {
        let cut = Arc::new(AtomicUsize::new(0));
        let counter = cut.clone();
        let (port, task) = listen(target, move |client, server| {
            relay(client, server, after_bytes, cuts, counter.clone(), rate)
        })
        .await?;
        Ok(Self {
            port,
            cut,
            lagged: Arc::new(AtomicUsize::new(0)),
            max_cuts: cuts,
            task,
        })
    }

    /// Bytes a lagging relay has held back so far (sent late or still to send).
    pub fn lagged(&self) -> usize {
        self.lagged.load(Ordering::SeqCst)
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> usize {
        self.cut.load(Ordering::SeqCst).min(self.max_cuts)
    }
}

/// Listens on a free 127.0.0.1 port and hands each connection, with a new one to the
/// target, to `relay`.
async fn listen<F, Fut>(target: u16, relay: F) -> anyhow::Result<(u16, tokio::task::JoinHandle<()>)>
where
    F: Fn(TcpStream, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let relay = Arc::new(relay);
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let relay = relay.clone();
            tokio::spawn(async move {
                let target = SocketAddr::from(([127, 0, 0, 1], target));
                if let Ok(server) = TcpStream::connect(target).await {
                    relay(client, server).await;
                }
            });
        }
    });
    Ok((port, task))
}

impl Drop for Cutter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    after_bytes: usize,
    cuts: usize,
    counter: Arc<AtomicUsize>,
    rate: Option<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let carried = Arc::new(AtomicUsize::new(0));
    let (c1, c2) = (carried.clone(), carried.clone());
    // Whether this connection is one to cut is decided once it carries enough.
    let may_cut = move |carried: &AtomicUsize, n: usize, counter: &AtomicUsize| {
        let before = carried.fetch_add(n, Ordering::SeqCst);
        before + n > after_bytes
            && before <= after_bytes
            && counter.fetch_add(1, Ordering::SeqCst) < cuts
    };
    let counter2 = counter.clone();
    let up = pump(&mut cr, &mut sw, None, move |n| may_cut(&c1, n, &counter));
    let down = pump(&mut sr, &mut cw, rate, move |n| may_cut(&c2, n, &counter2));
    // Either side ending (or a cut) drops both halves: the connection is gone.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// The client's bytes reach the server through a queue, those past `after_bytes` each
/// `lag` after they were read; the queue is delivered whole even after the client has
/// gone, then the server is given `lag` to act on it before the relay hangs up.
async fn lagging_relay(
    client: TcpStream,
    server: TcpStream,
    after_bytes: usize,
    lag: Duration,
    held: Arc<AtomicUsize>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut carried = 0usize;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            carried += n;
            let due = if carried > after_bytes {
                held.fetch_add(n, Ordering::SeqCst);
                tokio::time::Instant::now() + lag
            } else {
                tokio::time::Instant::now()
            };
            if tx.send((due, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    let write = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if sw.write_all(&bytes).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(lag).await;
        let _ = sw.shutdown().await;
    };
    // The server's answers go to the client while it lives, and are read regardless.
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut client_alive = true;
        loop {
            match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if client_alive && cw.write_all(&buf[..n]).await.is_err() {
                        client_alive = false;
                    }
                }
            }
        }
    };
    let upstream = async { tokio::join!(read, write) };
    tokio::select! {
        _ = async { tokio::join!(upstream, down) } => {}
        () = tokio::time::sleep(Duration::from_secs(600)) => {}
    }
}

/// Copies from `from` to `to` until either ends or `cut` says to stop, at most at
/// `rate` bytes per second.
async fn pump(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    rate: Option<u64>,
    cut: impl Fn(usize) -> bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if cut(n) || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if let Some(rate) = rate {
            let secs = n as f64 / rate.max(1) as f64;
            tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
        }
    }
}
