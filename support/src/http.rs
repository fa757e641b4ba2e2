//! A small HTTP/1.1 client for JSON APIs on `http://` URLs: the admin CLI talking to the
//! controller, the agent enrolling, tests. One request per connection, a whole-request
//! timeout, and errors that say which step failed. [`download`] fetches a large file to
//! disk as it arrives and resumes where an earlier attempt stopped.
//!
//! `https://` is not spoken here; put the controller's API behind a TLS proxy on the same
//! network, or use it over a private network.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// Largest response body read, bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why a request failed before an HTTP status arrived.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://host[:port]/path`.
    #[error("bad URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No TCP connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The exchange failed (closed connection, bad response, body too large).
    #[error("HTTP exchange with {addr} failed: {reason}")]
    Exchange {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No complete answer within the timeout.
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
}

/// One request.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// `http://host[:port]/path?query`.
    pub url: &'a str,
    /// Extra headers.
    pub headers: Vec<(&'a str, String)>,
    /// Content type and body.
    pub body: Option<(&'a str, Vec<u8>)>,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The `content-type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// Every header, names lower-case, in order.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits `http://host[:port]/path` into (`host:port`, host, `/path`).
fn split(url: &str) -> Result<(String, String, String), HttpError> {
    let bad = |reason: &str| HttpError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("expected http://host[:port]/path"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?,
        ),
        _ => (authority, 80),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let addr = format!("{host}:{port}");
    Ok((addr, host.to_owned(), path.to_owned()))
}

/// Sends `req` and reads the whole answer within `timeout`.
pub async fn send(req: Request<'_>, timeout: Duration) -> Result<Response, HttpError> {
    let (addr, host, path) = split(req.url)?;
    match tokio::time::timeout(timeout, exchange(&req, &addr, &host, &path)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout { addr, timeout }),
    }
}

/// Connects, sends `req` and returns the response head with its body still to be read.
async fn open(
    req: &Request<'_>,
    addr: &str,
    host: &str,
    path: &str,
) -> Result<hyper::Response<hyper::body::Incoming>, HttpError> {
    let fail = |reason: String| HttpError::Exchange {
        addr: addr.to_owned(),
        reason,
    };
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| HttpError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
    tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .method(req.method)
        .uri(path)
        .header("host", host);
    for (name, value) in &req.headers {
        builder = builder.header(*name, value);
    }
    let body = match &req.body {
        Some((ct, bytes)) => {
            builder = builder.header("content-type", *ct);
            Bytes::from(bytes.clone())
        }
        None => Bytes::new(),
    };
    let request = builder
        .body(Full::new(body))
        .map_err(|e| fail(e.to_string()))?;
    sender
        .send_request(request)
        .await
        .map_err(|e| fail(e.to_string()))
}

async fn exchange(
    req: &Request<'_>,
    addr: &str,
    host: &str,
    path: &str,
) -> Result<Response, HttpError> {
    let resp = open(req, addr, host, path).await?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let limited = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BYTES);
    let body = limited
        .collect()
        .await
        .map_err(|e| HttpError::Exchange {
            addr: addr.to_owned(),
            reason: format!("reading the body: {e}"),
        })?
        .to_bytes()
        .to_vec();
    Ok(Response {
        status,
        content_type,
        body,
        headers,
    })
}

/// Why a download stopped.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No answer, or the exchange broke.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// An HTTP status other than 200 or 206.
    #[error("GET {url}: HTTP {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// Status.
        status: u16,
        /// What the server said.
        body: String,
    },
    /// Longer than allowed.
    #[error("GET {url}: more than {max} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        max: u64,
    },
    /// The file could not be written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Downloads `url` into `to`, resuming after what `to` already holds (`Range`); a server
/// that answers 200 instead of 206 sends it all again. Every chunk is written as it
/// arrives, so an interrupted download keeps its progress. `idle` is the longest wait for
/// the next chunk (a peer that hangs). Returns the file's length.
pub async fn download(
    url: &str,
    to: &std::path::Path,
    max_bytes: u64,
    idle: Duration,
) -> Result<u64, DownloadError> {
    use tokio::io::AsyncWriteExt as _;
    let file_err = |source| DownloadError::File {
        path: to.display().to_string(),
        source,
    };
    let (addr, host, path) = split(url)?;
    let have = tokio::fs::metadata(to).await.map_or(0, |m| m.len());
    let mut headers = Vec::new();
    if have > 0 {
        headers.push(("range", format!("bytes={have}-")));
    }
    let req = Request {
        method: "GET",
        url,
        headers,
        body: None,
    };
    let resp = tokio::time::timeout(idle, open(&req, &addr, &host, &path))
        .await
        .map_err(|_| HttpError::Timeout {
            addr: addr.clone(),
            timeout: idle,
        })??;
    let status = resp.status().as_u16();
    let mut file = match status {
        206 => tokio::fs::OpenOptions::new()
            .append(true)
            .open(to)
            .await
            .map_err(file_err)?,
        // Nothing left to fetch: the file is whole.
        416 if have > 0 => return Ok(have),
        200 => tokio::fs::File::create(to).await.map_err(file_err)?,
        _ => {
            let body = http_body_util::Limited::new(resp.into_body(), 4096)
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            return Err(DownloadError::Status {
                url: url.to_owned(),
                status,
                body,
            });
        }
    };
    let mut len = if status == 206 { have } else { 0 };
    let mut body = resp.into_body();
    loop {
        let frame = tokio::time::timeout(idle, body.frame())
            .await
            .map_err(|_| HttpError::Timeout {
                addr: addr.clone(),
                timeout: idle,
            })?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| HttpError::Exchange {
            addr: addr.clone(),
            reason: format!("reading the body: {e}"),
        })?;
        if let Ok(chunk) = frame.into_data() {
            len += chunk.len() as u64;
            if len > max_bytes {
                return Err(DownloadError::TooLarge {
                    url: url.to_owned(),
                    max: max_bytes,
                });
            }
            file.write_all(&chunk).await.map_err(file_err)?;
        }
    }
    file.flush().await.map_err(file_err)?;
    file.sync_all().await.map_err(file_err)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_host_and_path() {
        let (a, h, p) = split("http://127.0.0.1:8080/api/v1/x?y=1").unwrap();
        assert_eq!(
            (a.as_str(), h.as_str(), p.as_str()),
            ("127.0.0.1:8080", "127.0.0.1", "/api/v1/x?y=1")
        );
        let (a, _, p) = split("http://ctl.example").unwrap();
        assert_eq!((a.as_str(), p.as_str()), ("ctl.example:80", "/"));
        assert!(split("https://x/").is_err());
        assert!(split("http://:80/").is_err());
        assert!(split("http://h:x/").is_err());
    }
}
