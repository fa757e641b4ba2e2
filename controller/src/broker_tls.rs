//! `mqtts://` for the embedded broker: a TLS listener (`mqtt.tls_listen`) with the
//! certificate the API serves, in front of the broker's own loopback listener. Each
//! connection is decrypted here and passed on byte for byte; the broker still checks every
//! client's login. Agents trust the certificate by the pin their enrollment token carried.
//! A client has 10 s for the handshake; at most `mqtt.max_connections` are open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Time a client has to finish the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Accepts TLS connections on `listener` and joins each to the broker at `broker` until
/// `token` is cancelled.
pub async fn serve(
    listener: TcpListener,
    broker: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    max_connections: usize,
    token: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            () = token.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT TLS accept failed; backing off");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let (acceptor, token) = (acceptor.clone(), token.clone());
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                () = token.cancelled() => {}
                () = relay(acceptor, stream, peer, broker) => {}
            }
        });
    }
}

async fn relay(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    broker: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let mut client = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "MQTT TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "MQTT TLS handshake timed out");
            return;
        }
    };
    let mut inner = match TcpStream::connect(broker).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%broker, error = %e, "The embedded broker does not answer");
            return;
        }
    };
    let _ = inner.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut inner).await;
}
