//! The web surface against a hostile client: sign-in limits per user and per address, no
//! open redirect, no cross-site form posts, no `text/plain` JSON, security headers, a
//! closed `/metrics`, upgraded password hashes, owner-only files, unforgeable log lines.
//! Requests are plain HTTP/1.1 from chosen loopback addresses to the real process.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::Controller;

/// A response: status, head, body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends one request from `from` with `headers` (each `Name: value`) and an optional form
/// or JSON body.
async fn send(
    from: [u8; 4],
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<(&str, &str)>,
) -> Answer {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((from, 0))).unwrap();
    let mut s = sock.connect(to).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if let Some((ct, b)) = body {
        use std::fmt::Write as _;
        let _ = write!(req, "Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len());
    }
    req.push_str("\r\n");
    if let Some((_, b)) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Answer {
        status: head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0),
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// These tests speak HTTP/1.1 over raw TCP from chosen loopback addresses to see every
/// header; TLS itself is tested in `https.rs`.
const PLAIN_HTTP: &str = "[http]\ntls = false\n";

fn form(user: &str, password: &str, next: &str) -> String {
    let enc = storefleet_controller::fmt::url_encode;
    format!(
        "user={}&password={}&next={}",
        enc(user),
        enc(password),
        enc(next)
    )
}

async fn login(ctl: &Controller, from: [u8; 4], user: &str, password: &str) -> Answer {
    let origin = format!("Origin: http://{}", ctl.http);
    send(
        from,
        ctl.http,
        "POST",
        "/login",
        &[origin],
        Some((
            "application/x-www-form-urlencoded",
            &form(user, password, "/"),
        )),
    )
    .await
}

fn admin_password(ctl: &Controller) -> String {
    std::fs::read_to_string(ctl.dir.path().join("state/admin-password"))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_limited_per_user_and_per_address() {
    let ctl = Controller::start_with(None, PLAIN_HTTP);
    let password = admin_password(&ctl);
    // Five wrong guesses at admin, from five addresses: each refused as wrong.
    for i in 0..5u8 {
        let a = login(&ctl, [127, 0, 2, 1 + i], "admin", "guess").await;
        assert_eq!(a.status, 401, "guess {i}: {}", a.body);
    }
    // Then admin waits, from anywhere, even with the right password.
    let a = login(&ctl, [127, 0, 2, 9], "admin", &password).await;
    assert_eq!(a.status, 429, "{}", a.body);
    let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=180).contains(&retry), "{retry}");
    assert!(a.body.contains("Too many failed attempts"));

    // One address trying many names: twenty failures, then that address waits.
    for i in 0..20 {
        let a = login(&ctl, [127, 0, 3, 1], &format!("nobody{i}"), "guess").await;
        assert_eq!(a.status, 401, "name {i}");
    }
    let a = login(&ctl, [127, 0, 3, 1], "nobody-else", "guess").await;
    assert_eq!(a.status, 429);
    let a = login(&ctl, [127, 0, 3, 2], "nobody-else", "guess").await;
    assert_eq!(a.status, 401, "another address is not held back");

    // Unknown and known names are refused alike.
    let known = login(&ctl, [127, 0, 4, 1], "nobody-at-all", "x").await;
    assert_eq!(known.status, 401);
    assert!(known.body.contains("Unknown user or wrong password."));

    // A name with a line break does not forge a log line.
    let a = login(&ctl, [127, 0, 4, 2], "x\nFORGED Sign-in ok user=admin", "x").await;
    assert_eq!(a.status, 401);
    let log = ctl.log();
    assert!(log.contains("FORGED"), "the attempt is logged");
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a forged line: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_open_redirect_no_cross_site_posts_and_security_headers() {
    let ctl = Controller::start_with(None, PLAIN_HTTP);
    let password = admin_password(&ctl);
    let own = format!("Origin: http://{}", ctl.http);
    let from = [127, 0, 0, 1];

    // The login goes back only to local pages.
    let body = form("admin", &password, "/\t/evil.example/");
    let a = send(
        from,
        ctl.http,
        "POST",
        "/login",
        std::slice::from_ref(&own),
        Some(("application/x-www-form-urlencoded", &body)),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some("/"));
    let cookie = a
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let session = format!("Cookie: {cookie}");

    // Another site posting a signed-in user's form: refused, and nothing happens.
    let evil = "Origin: http://evil.example".to_owned();
    let a = send(
        from,
        ctl.http,
        "POST",
        "/enroll",
        &[session.clone(), evil.clone()],
        Some(("application/x-www-form-urlencoded", "store=S1")),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("cross-site"), "{}", a.body);
    let a = send(
        from,
        ctl.http,
        "POST",
        "/logout",
        std::slice::from_ref(&session),
        None,
    )
    .await;
    assert_eq!(a.status, 403, "no Origin and no Referer: refused");
    let a = send(
        from,
        ctl.http,
        "POST",
        "/login",
        std::slice::from_ref(&evil),
        Some((
            "application/x-www-form-urlencoded",
            &form("admin", &password, "/"),
        )),
    )
    .await;
    assert_eq!(a.status, 403, "a cross-site sign-in");
    // The same session from its own pages still works.
    let referer = format!("Referer: http://{}/", ctl.http);
    let a = send(
        from,
        ctl.http,
        "GET",
        "/",
        std::slice::from_ref(&session),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "the session is alive: {} {}", a.head, a.body);
    crate::tickets::engineer(&ctl, "eve", &["general"], "north").await;
    // The field view frames its live strip, the strip may be framed by this site only, and
    // neither may be framed by another.
    let csp = |a: &Answer| {
        a.header("content-security-policy")
            .unwrap_or_default()
            .to_owned()
    };
    let a = send(
        from,
        ctl.http,
        "GET",
        "/field?engineer=eve",
        std::slice::from_ref(&session),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        csp(&a).contains("frame-src 'self'") && csp(&a).contains("frame-ancestors 'none'"),
        "{}",
        csp(&a)
    );
    assert_eq!(a.header("x-frame-options"), Some("DENY"));
    let a = send(
        from,
        ctl.http,
        "GET",
        "/field/live?engineer=eve",
        std::slice::from_ref(&session),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        csp(&a).contains("frame-ancestors 'self'") && !csp(&a).contains("frame-src"),
        "{}",
        csp(&a)
    );
    assert!(
        csp(&a).contains("default-src 'none'"),
        "still no script: {}",
        csp(&a)
    );
    assert_eq!(a.header("x-frame-options"), Some("SAMEORIGIN"));
    let a = send(
        from,
        ctl.http,
        "POST",
        "/logout",
        &[session.clone(), referer],
        None,
    )
    .await;
    assert_eq!(a.status, 303);

    // JSON only as JSON: a text/plain body (what a cross-site form can send) is refused.
    let bearer = format!("Authorization: Bearer {}", ctl.token);
    let a = send(
        from,
        ctl.http,
        "POST",
        "/api/v1/stores",
        std::slice::from_ref(&bearer),
        Some(("text/plain", r#"{"code":"S9","name":"x"}"#)),
    )
    .await;
    assert_eq!(a.status, 415, "{}", a.body);
    assert!(ctl.call("GET", "/api/v1/stores/S9", None, true).await.0 == 404);

    // Headers on pages and API answers alike.
    for path in ["/login", "/api/v1/health"] {
        let a = send(from, ctl.http, "GET", path, &[], None).await;
        let csp = a.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("referrer-policy"), Some("same-origin"));
    }

    // /metrics is closed by default.
    let a = send(from, ctl.http, "GET", "/metrics", &[], None).await;
    assert_eq!(a.status, 401);
    let a = send(from, ctl.http, "GET", "/metrics", &[bearer], None).await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("storefleet_http_connections_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_password_hashes_are_upgraded_and_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut ctl = Controller::start_with(None, PLAIN_HTTP);
    let state = ctl.dir.path().join("state");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    let config = ctl.config();
    if config.database.url.is_empty() {
        assert_eq!(mode(&state.join("controller.db")), 0o600);
    }

    // A user from an older controller, hashed with PBKDF2.
    ctl.kill();
    let salt = [9u8; 16];
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(100_000).unwrap(),
        &salt,
        b"an old password",
        &mut out,
    );
    let b64 = |b: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let old = format!("pbkdf2-sha256$100000${}${}", b64(&salt), b64(&out));
    let db = config.open_database().unwrap();
    db.write(move |c| {
        c.execute(
            "INSERT INTO users(name, pw_hash, created_at) VALUES ('veteran', ?1, 0)",
            storefleet_storage::args![old],
        )
    })
    .await
    .unwrap();
    drop(db);
    ctl.spawn();
    let a = login(&ctl, [127, 0, 0, 1], "veteran", "an old password").await;
    assert_eq!(a.status, 303, "{}", a.body);
    ctl.kill();
    let db = config.open_database().unwrap();
    let now = db
        .read(|c| {
            storefleet_storage::SqlExt::one(
                c,
                "SELECT pw_hash FROM users WHERE name = 'veteran'",
                &[],
            )?
            .unwrap()
            .text("pw_hash")
        })
        .await
        .unwrap();
    assert!(now.starts_with("argon2id$v=19$m=19456,t=2,p=1$"), "{now}");
}
