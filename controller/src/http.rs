//! Serving the API and UI over HTTP/1.1 with the limits a hostile network needs.
//!
//! - A client has `http.header_timeout_secs` to send a request's headers, on a new
//!   connection and between requests on a kept-alive one; a connection that dawdles is closed.
//! - At most `http.max_connections` connections are open (never more than a quarter of the
//!   process's file limit, so the broker and the database keep their descriptors), and at
//!   most `http.max_connections_per_address` from one address; a connection over either
//!   cap is closed as soon as it is accepted, and counted.
//! - Each request carries the peer's address (`ConnectInfo`) for the login limiter.
//!
//! Not here: TLS, request bodies that trickle (handlers cap body sizes; the slow-body case
//! is bounded by the connection caps).

use std::collections::HashMap;
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
    /// Closed at once: the connection cap was reached.
    pub refused_total_cap: AtomicU64,
    /// Closed at once: the per-address cap was reached.
    pub refused_address_cap: AtomicU64,
    /// Accept failed (for example no file descriptor left).
    pub accept_errors: AtomicU64,
    /// Connections ended by an error, a header timeout included.
    pub connection_errors: AtomicU64,
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
            ("refused_address_cap", &self.refused_address_cap),
            ("accept_error", &self.accept_errors),
            ("error", &self.connection_errors),
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

/// Serves `app` on `listener` until `token` is cancelled; then lets open requests finish
/// for up to 5 s.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<HttpStats>,
    token: CancellationToken,
) {
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = PerAddress::default();
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
        let Ok(permit) = total.clone().try_acquire_owned() else {
            stats.refused_total_cap.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        let Some(slot) = per_address.take(peer.ip(), limits.per_address) else {
            stats.refused_address_cap.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        stats.accepted.fetch_add(1, Relaxed);
        let _ = stream.set_nodelay(true);
        conns.spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            (permit, slot),
            stats.clone(),
            token.clone(),
        ));
    }
    conns.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), conns.wait()).await;
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    held: (OwnedSemaphorePermit, Slot),
    stats: Arc<HttpStats>,
    token: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
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
    fn no_cap_per_address_when_zero() {
        let m = PerAddress::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let held: Vec<_> = (0..1000).map(|_| m.take(ip, 0).expect("no cap")).collect();
        assert_eq!(held.len(), 1000);
    }
}
