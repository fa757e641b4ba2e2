//! An HTTP client for JSON APIs and downloads, on reqwest with our own rustls settings:
//! the admin CLI talking to the controller, the agent enrolling and downloading updates,
//! webhooks, tests. `http://` and `https://`; what an `https://` client trusts is its
//! [`Trust`] (a pinned key, the CAs of a file, or the system's). One request per
//! connection, a whole-request timeout, and errors that say which step failed.
//! [`Client::download`] fetches a large file to disk as it arrives and resumes where an
//! earlier attempt stopped.

use std::time::Duration;

pub use crate::tls::{Pin, Trust};

/// Largest response body read, bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why a request failed before an HTTP status arrived.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://` or `https://host[:port]/path`.
    #[error("bad URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection (refused, unreachable, or a TLS peer that is not trusted).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why, with every cause.
        reason: String,
    },
    /// The TLS settings could not be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
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

/// `host:port` of `url`, for errors; the URL must be `http://` or `https://`.
fn address(url: &str) -> Result<(reqwest::Url, String), HttpError> {
    let bad = |reason: &str| HttpError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("expected http:// or https://host[:port]/path"));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    let port = parsed.port_or_known_default().unwrap_or(0);
    let addr = format!("{host}:{port}");
    Ok((parsed, addr))
}

/// An error with all its causes (reqwest's own text names only the first step).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = cause.source();
    }
    text
}

fn failed(e: &reqwest::Error, addr: &str, timeout: Duration) -> HttpError {
    if e.is_timeout() {
        HttpError::Timeout {
            addr: addr.to_owned(),
            timeout,
        }
    } else if e.is_connect() {
        HttpError::Connect {
            addr: addr.to_owned(),
            reason: causes(e),
        }
    } else {
        HttpError::Exchange {
            addr: addr.to_owned(),
            reason: causes(e),
        }
    }
}

/// An HTTP client that trusts what its [`Trust`] says for `https://`.
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::Client,
}

impl Client {
    /// A client trusting `trust`.
    pub fn new(trust: &Trust) -> Result<Client, HttpError> {
        let tls = crate::tls::trusting(trust)?;
        let inner = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            // One request per connection: nothing idles in a pool across runtimes.
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .build()
            .map_err(|e| HttpError::Exchange {
                addr: String::new(),
                reason: format!("building the HTTP client: {}", causes(&e)),
            })?;
        Ok(Client { inner })
    }

    /// Sends `req` and reads the whole answer within `timeout`.
    pub async fn send(&self, req: Request<'_>, timeout: Duration) -> Result<Response, HttpError> {
        let (url, addr) = address(req.url)?;
        match tokio::time::timeout(timeout, self.exchange(&req, url, &addr, timeout)).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout { addr, timeout }),
        }
    }

    /// Sends `req`; the response's body is still to be read.
    async fn open(
        &self,
        req: &Request<'_>,
        url: reqwest::Url,
        addr: &str,
        timeout: Duration,
    ) -> Result<reqwest::Response, HttpError> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|_| {
            HttpError::Exchange {
                addr: addr.to_owned(),
                reason: format!("bad method {:?}", req.method),
            }
        })?;
        let mut builder = self.inner.request(method, url);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        if let Some((ct, bytes)) = &req.body {
            builder = builder.header("content-type", *ct).body(bytes.clone());
        }
        builder.send().await.map_err(|e| failed(&e, addr, timeout))
    }

    async fn exchange(
        &self,
        req: &Request<'_>,
        url: reqwest::Url,
        addr: &str,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let mut resp = self.open(req, url, addr, timeout).await?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let content_type = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.clone());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| HttpError::Exchange {
            addr: addr.to_owned(),
            reason: format!("reading the body: {}", causes(&e)),
        })? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::Exchange {
                    addr: addr.to_owned(),
                    reason: format!("reading the body: more than {MAX_RESPONSE_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            content_type,
            body,
            headers,
        })
    }

    /// Downloads `url` into `to`, resuming after what `to` already holds (`Range`); a server
    /// that answers 200 instead of 206 sends it all again. Every chunk is written as it
    /// arrives, so an interrupted download keeps its progress. `idle` is the longest wait for
    /// the next chunk (a peer that hangs). Returns the file's length.
    pub async fn download(
        &self,
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
        let (parsed, addr) = address(url)?;
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
        let timed_out = || HttpError::Timeout {
            addr: addr.clone(),
            timeout: idle,
        };
        let mut resp = tokio::time::timeout(idle, self.open(&req, parsed, &addr, idle))
            .await
            .map_err(|_| timed_out())??;
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
                let mut body = String::new();
                while let Ok(Ok(Some(chunk))) = tokio::time::timeout(idle, resp.chunk()).await {
                    body.push_str(&String::from_utf8_lossy(&chunk));
                    if body.len() > 4096 {
                        break;
                    }
                }
                return Err(DownloadError::Status {
                    url: url.to_owned(),
                    status,
                    body,
                });
            }
        };
        let mut len = if status == 206 { have } else { 0 };
        loop {
            let chunk = tokio::time::timeout(idle, resp.chunk())
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| HttpError::Exchange {
                    addr: addr.clone(),
                    reason: format!("reading the body: {}", causes(&e)),
                })?;
            let Some(chunk) = chunk else { break };
            len += chunk.len() as u64;
            if len > max_bytes {
                return Err(DownloadError::TooLarge {
                    url: url.to_owned(),
                    max: max_bytes,
                });
            }
            file.write_all(&chunk).await.map_err(file_err)?;
        }
        file.flush().await.map_err(file_err)?;
        file.sync_all().await.map_err(file_err)?;
        Ok(len)
    }
}

/// [`Client::send`] with a client that trusts the system's CAs.
pub async fn send(req: Request<'_>, timeout: Duration) -> Result<Response, HttpError> {
    Client::new(&Trust::default())?.send(req, timeout).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_address_and_bad_ones_are_refused() {
        let (_, a) = address("http://127.0.0.1:8080/api/v1/x?y=1").unwrap();
        assert_eq!(a, "127.0.0.1:8080");
        assert_eq!(address("http://ctl.example").unwrap().1, "ctl.example:80");
        assert_eq!(
            address("https://ctl.example/").unwrap().1,
            "ctl.example:443"
        );
        assert!(address("ftp://x/").is_err());
        assert!(address("http://:80/").is_err());
        assert!(address("http://h:x/").is_err());
    }
}
