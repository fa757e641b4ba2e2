//! Serving the API and UI over HTTP/1.1, with TLS (rustls) unless it is turned off, with the
//! limits a hostile network needs.
//!
//! - A client has `http.header_timeout_secs` to finish the TLS handshake, and as long again
//!   to send a request's headers, on a new connection and between requests on a kept-alive
//!   one; a connection that dawdles is closed. A failed handshake (plain HTTP on the TLS
//!   port, a client that does not trust the certificate) is counted.
//! - At most `http.max_connections` connections are open (never more than a quarter of the
//!   process's file limit, so the broker and the database keep their descriptors), and at
//!   most `http.max_connections_per_address` from one address; a connection over the
//!   address cap is closed as soon as it is accepted, and counted.
//! - When every connection is taken, the one that has waited longest without sending a
//!   whole request is closed to make room (a slow-header attack from many addresses then
//!   starves itself, not the clients that ask and go), and counted.
//! - Each request carries the peer's address (`ConnectInfo`) for the login limiter.
//!
//! Not here: request bodies that trickle (handlers cap body sizes; the slow-body case
//! is bounded by the connection caps).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send a request's headers.
    pub header_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one address at most; 0: no cap.
    pub per_address: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Closed at once: the connection cap was reached and nobody could be evicted.
    pub refused_total_cap: AtomicU64,
    /// Closed to make room: the oldest connection that had not sent a whole request.
    pub evicted: AtomicU64,
    /// Closed at once: the per-address cap was reached.
    pub refused_address_cap: AtomicU64,
    /// Accept failed (for example no file descriptor left).
    pub accept_errors: AtomicU64,
    /// Connections ended by an error, a header timeout included.
    pub connection_errors: AtomicU64,
    /// TLS handshakes that failed or did not finish in time.
    pub tls_failed: AtomicU64,
}

impl HttpStats {
    /// Prometheus text.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP storefleet_http_connections_total HTTP connections by outcome\n# TYPE storefleet_http_connections_total counter"
        );
        for (outcome, v) in [
            ("accepted", &self.accepted),
            ("refused_cap", &self.refused_total_cap),
            ("evicted_idle", &self.evicted),
            ("refused_address_cap", &self.refused_address_cap),
            ("accept_error", &self.accept_errors),
            ("error", &self.connection_errors),
            ("tls_failed", &self.tls_failed),
        ] {
            let _ = writeln!(
                out,
                "storefleet_http_connections_total{{outcome=\"{outcome}\"}} {}",
                v.load(Relaxed)
            );
        }
    }
}

/// Raises the soft limit of open files to the hard one and returns the connection cap that
/// leaves three quarters of it to everything else.
pub fn connection_cap(configured: usize) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => return configured,
    };
    let quarter = usize::try_from(soft / 4).unwrap_or(usize::MAX).max(16);
    if configured > quarter {
        tracing::warn!(
            configured,
            cap = quarter,
            open_files_limit = soft,
            "http.max_connections is above a quarter of the open-files limit; using the lower cap"
        );
    }
    configured.min(quarter)
}

/// Counts connections per address; a slot is given back when its guard drops.
#[derive(Debug, Default, Clone)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct Slot {
    map: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    fn take(&self, ip: IpAddr, cap: usize) -> Option<Slot> {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(ip).or_insert(0);
        if cap > 0 && *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            map: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self
            .map
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Connections that have not yet sent a whole request, oldest first.
#[derive(Debug, Default, Clone)]
struct Waiting(Arc<Mutex<BTreeMap<u64, CancellationToken>>>);

impl Waiting {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, CancellationToken>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the oldest; `false` when there is none.
    fn evict_oldest(&self) -> bool {
        match self.lock().pop_first() {
            Some((_, t)) => {
                t.cancel();
                true
            }
            None => false,
        }
    }
}

/// A permit for a new connection: free now, or made free by evicting the connection that has
/// waited longest without a whole request.
async fn permit(
    total: &Arc<Semaphore>,
    waiting: &Waiting,
    stats: &HttpStats,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = total.clone().try_acquire_owned() {
        return Some(p);
    }
    if !waiting.evict_oldest() {
        return None;
    }
    stats.evicted.fetch_add(1, Relaxed);
    // The evicted connection's task gives its permit back as soon as it runs.
    tokio::time::timeout(Duration::from_millis(250), total.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Serves `app` on `listener` (over TLS with `tls`) until `token` is cancelled; then lets
/// open requests finish for up to 5 s.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    (limits, tls): (Limits, Option<Arc<rustls::ServerConfig>>),
    stats: Arc<HttpStats>,
    token: CancellationToken,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = PerAddress::default();
    let waiting = Waiting::default();
    let mut next_id = 0u64;
    let conns = tokio_util::task::TaskTracker::new();
    let mut last_accept_error_log = None::<std::time::Instant>;
    loop {
        let accepted = tokio::select! {
            () = token.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                stats.accept_errors.fetch_add(1, Relaxed);
                if last_accept_error_log
                    .is_none_or(|t: std::time::Instant| t.elapsed() > Duration::from_secs(10))
                {
                    tracing::error!(error = %e, "HTTP accept failed; backing off");
                    last_accept_error_log = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(slot) = per_address.take(peer.ip(), limits.per_address) else {
            stats.refused_address_cap.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        let Some(permit) = permit(&total, &waiting, &stats).await else {
            stats.refused_total_cap.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        stats.accepted.fetch_add(1, Relaxed);
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let evict = CancellationToken::new();
        waiting.lock().insert(next_id, evict.clone());
        conns.spawn(connection(
            (stream, tls.clone()),
            peer,
            app.clone(),
            limits,
            Held {
                _permit: permit,
                _slot: slot,
                id: next_id,
                waiting: waiting.clone(),
            },
            stats.clone(),
            (token.clone(), evict),
        ));
    }
    conns.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), conns.wait()).await;
}

/// What a connection holds while it is open.
struct Held {
    _permit: OwnedSemaphorePermit,
    _slot: Slot,
    id: u64,
    waiting: Waiting,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.waiting.lock().remove(&self.id);
    }
}

async fn connection(
    (stream, tls): (tokio::net::TcpStream, Option<tokio_rustls::TlsAcceptor>),
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    held: Held,
    stats: Arc<HttpStats>,
    // The server stopping; this connection evicted.
    tokens: (CancellationToken, CancellationToken),
) {
    let Some(acceptor) = tls else {
        return serve_io(TokioIo::new(stream), peer, app, limits, held, stats, tokens).await;
    };
    let handshake = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
    let done = tokio::select! {
        r = handshake => r,
        // Evicted or stopping before the handshake finished.
        () = tokens.1.cancelled() => return,
        () = tokens.0.cancelled() => return,
    };
    match done {
        Ok(Ok(s)) => serve_io(TokioIo::new(s), peer, app, limits, held, stats, tokens).await,
        Ok(Err(e)) => {
            stats.tls_failed.fetch_add(1, Relaxed);
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            stats.tls_failed.fetch_add(1, Relaxed);
        }
    }
}

async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    held: Held,
    stats: Arc<HttpStats>,
    (token, evict): (CancellationToken, CancellationToken),
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (waiting, id) = (held.waiting.clone(), held.id);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        // A whole request arrived: no longer a candidate for eviction.
        waiting.lock().remove(&id);
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        // Evicted while it had sent no whole request: closed at once.
        () = evict.cancelled() => Ok(()),
        () = token.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(Duration::from_secs(5), conn.as_mut())
                .await
                .unwrap_or(Ok(()))
        }
    };
    if result.is_err() {
        stats.connection_errors.fetch_add(1, Relaxed);
    }
    drop(held);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_slots_back_when_connections_close() {
        let m = PerAddress::default();
        let ip: IpAddr = [127, 0, 0, 2].into();
        let a = m.take(ip, 2).expect("first");
        let b = m.take(ip, 2).expect("second");
        assert!(m.take(ip, 2).is_none(), "third over the cap");
        assert!(
            m.take([127, 0, 0, 1].into(), 2).is_some(),
            "another address"
        );
        drop(a);
        let c = m.take(ip, 2).expect("a slot came back");
        drop((b, c));
        assert!(m.0.lock().unwrap().is_empty(), "nothing left behind");
    }

    #[test]
    fn the_longest_waiting_connection_is_evicted_first() {
        let w = Waiting::default();
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        w.lock().insert(1, a.clone());
        w.lock().insert(2, b.clone());
        assert!(w.evict_oldest());
        assert!(a.is_cancelled() && !b.is_cancelled());
        w.lock().remove(&2);
        assert!(!w.evict_oldest(), "nobody left to evict");
    }

    #[test]
    fn no_cap_per_address_when_zero() {
        let m = PerAddress::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let held: Vec<_> = (0..1000).map(|_| m.take(ip, 0).expect("no cap")).collect();
        assert_eq!(held.len(), 1000);
    }
}
