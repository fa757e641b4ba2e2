//! HTTP for the probes: a GET's status over HTTP or HTTPS (checking the device's
//! certificate against the configured CAs, or the pinned key), and one request over a
//! connection for the IPP probe.

use std::path::Path;
use std::sync::Arc;

use http_body_util::Empty;
use hyper::body::Bytes;
use storefleet_support::tls::{TlsError, Trust};

/// The TLS client of an `https://` probe: trusts the key `tls_pin` pins, else the CAs of
/// `ca_file` (empty: the system's).
pub fn tls(ca_file: &Path, tls_pin: &str) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut trust = Trust::pinned(tls_pin)?;
    trust.ca_file = ca_file.to_path_buf();
    Ok(Arc::new(storefleet_support::tls::client_config(
        &trust,
        Path::new(""),
        Path::new(""),
    )?))
}

/// GET of `url`; the answer's status.
pub(crate) async fn get_status(url: &str, ca_file: &Path, tls_pin: &str) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let host = uri.host().ok_or("URL has no host")?.to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    if !https {
        return get(tcp, &host, path).await;
    }
    let config = tls(ca_file, tls_pin).map_err(|e| e.to_string())?;
    // An IPv6 literal comes bracketed in the URL, not in the certificate.
    let name = host.trim_start_matches('[').trim_end_matches(']');
    let server = rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|e| format!("{host}: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(server, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    get(stream, &host, path).await
}

/// One GET over `io`; the status.
async fn get<S>(io: S, host: &str, path: &str) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let (resp, conn) = send(io, req).await?;
    conn.abort();
    Ok(resp.status().as_u16())
}

/// Sends `req` over `io` (HTTP/1.1, as `storefleet-agent`); the answer, and the task that
/// drives the connection, to abort once the answer's body is read.
pub(crate) async fn send<S, B>(
    io: S,
    mut req: hyper::Request<B>,
) -> Result<
    (
        hyper::Response<hyper::body::Incoming>,
        tokio::task::JoinHandle<()>,
    ),
    String,
>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    req.headers_mut().insert(
        hyper::header::USER_AGENT,
        hyper::header::HeaderValue::from_static("storefleet-agent"),
    );
    match sender.send_request(req).await {
        Ok(resp) => Ok((resp, driver)),
        Err(e) => {
            driver.abort();
            Err(e.to_string())
        }
    }
}
